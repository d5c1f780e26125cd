package io.moe4j.train.model;

import io.moe4j.kernel.Kernels;
import io.moe4j.moe.MoeConfig;
import io.moe4j.moe.MoeLayer;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;

import java.lang.foreign.Arena;

/**
 * Parameter counts of a {@link ModelConfig}: {@code total} (everything trained) and {@code active} (what one token
 * touches in a forward: embeddings and LM head, every norm, attention, dense FFNs, and per MoE layer the router,
 * the shared experts, MoE++ special experts and k routed experts). The trainer sizes the matched dense baseline
 * on {@code active}.
 *
 * <p>The MoE layer's own parameter list is the source of truth (routers differ: noisy top-k has a noise matrix,
 * MoE++ a two-layer gate, ...): one layer is built at maxTokens = 1 in a throwaway arena and its parameters are
 * counted; k = moe.topK (the nominal k for routers with a variable number of experts per token).
 *
 * @param total       all trainable parameters
 * @param active      parameters used per token
 * @param perExpert   parameters of one routed FFN expert (0 for a dense model)
 */
public record ParamCounts(long total, long active, long perExpert) {

    public static ParamCounts of(ModelConfig c) {
        MoeTransformer.validate(c);
        long d = c.dModel(), hd = c.headDim();
        long embed = (long) c.vocabSize() * d * (c.tiedEmbeddings() ? 1 : 2);
        long attn = d * hd * (2L * c.heads() + 2L * c.kvHeads()) + (c.qkNorm() ? 2 * hd : 0);
        long perLayer = 2 * d + attn;
        long dense = 3 * d * c.denseHidden();
        int moeLayers = c.layers() - c.denseLayers();
        long total = embed + d + c.layers() * perLayer + c.denseLayers() * dense;
        long active = total;
        long perExpert = 0;
        if (moeLayers > 0) {
            MoeConfig mc = c.moe().toBuilder().maxTokens(1).layerIndex(c.denseLayers()).build();
            long moeTotal = 0, experts = 0;
            try (Arena arena = Arena.ofConfined(); WorkerPool pool = new WorkerPool(1)) {
                MoeLayer layer = new MoeLayer(mc, arena, Kernels.scalar(), pool);
                for (Param p : layer.params()) moeTotal += p.numel();
                for (Param p : layer.experts().params()) experts += p.numel();
            }
            int nFfn = mc.ffnExperts();
            perExpert = experts / nFfn;
            int k = Math.min(mc.topK(), nFfn);
            total += moeLayers * moeTotal;
            active += moeLayers * (moeTotal - (long) (nFfn - k) * perExpert);
        }
        return new ParamCounts(total, active, perExpert);
    }
}
