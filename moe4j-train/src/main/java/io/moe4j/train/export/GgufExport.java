package io.moe4j.train.export;

import io.moe4j.gguf.GgufWriter;
import io.moe4j.gguf.GgmlType;
import io.moe4j.infer.tokenizer.GgufTokenizers;
import io.moe4j.moe.MoeConfig;
import io.moe4j.tokenizer.GgufVocab;
import io.moe4j.train.model.CausalLm;
import io.moe4j.train.model.ModelConfig;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;

/**
 * Writes a trained model as an F32 GGUF that llama.cpp runs (its {@link ExportFamily}'s architecture and tensor
 * names), with the tokenizer in the metadata. Quantize the result with {@code moe4j quantize}.
 *
 * <p>Names: {@code token_embd}, {@code blk.i.attn_norm|attn_q|attn_k|attn_v|attn_output|attn_q_norm|attn_k_norm|
 * ffn_norm}, dense {@code ffn_gate|ffn_up|ffn_down}, MoE {@code ffn_gate_inp}, {@code ffn_gate_exps|ffn_up_exps}
 * (E, f, d) and {@code ffn_down_exps} (E, d, f) — moe4j's stacked expert layout is already llama.cpp's — shared
 * expert {@code ffn_gate_shexp|ffn_up_shexp|ffn_down_shexp} and {@code ffn_gate_inp_shexp} (a vector),
 * {@code output_norm}, {@code output} (omitted when tied; llama and qwen3(moe) then reuse token_embd).
 * qwen2moe gets zero q/k/v biases (its loader expects them). Written atomically.
 */
public final class GgufExport {
    private GgufExport() {}

    /**
     * @throws IllegalArgumentException if the model maps to no family llama.cpp runs (the message lists why)
     */
    public static void write(CausalLm model, GgufVocab vocab, String name, Path out) throws IOException {
        ModelConfig c = model.config();
        ExportFamily.Match match = ExportFamily.of(c);
        if (!match.ok()) {
            throw new IllegalArgumentException("this model cannot be exported to GGUF for llama.cpp: "
                    + String.join("; ", match.reasons()) + ". Save it in moe4j's own format instead.");
        }
        if (vocab.tokens().size() != c.vocabSize()) {
            throw new IllegalArgumentException("the tokenizer has " + vocab.tokens().size() + " tokens, the model "
                    + c.vocabSize());
        }
        ExportFamily f = match.family();
        String a = f.ggufArch + ".";
        MoeConfig m = c.moe() == null || c.denseLayers() >= c.layers() ? null : c.moe();
        int d = c.dModel(), hd = c.headDim(), q = c.heads() * hd, kv = c.kvHeads() * hd;
        GgufWriter g = new GgufWriter()
                .putString("general.architecture", f.ggufArch)
                .putString("general.name", name)
                .putU32("general.file_type", 0)
                .putU32(a + "vocab_size", c.vocabSize())
                .putU32(a + "context_length", c.maxSeqLen())
                .putU32(a + "embedding_length", d)
                .putU32(a + "block_count", c.layers())
                .putU32(a + "feed_forward_length", m == null ? c.denseHidden() : m.expertHidden())
                .putU32(a + "attention.head_count", c.heads())
                .putU32(a + "attention.head_count_kv", c.kvHeads())
                .putU32(a + "attention.key_length", hd)
                .putU32(a + "attention.value_length", hd)
                .putU32(a + "rope.dimension_count", hd)
                .putF32(a + "rope.freq_base", (float) c.ropeTheta())
                .putF32(a + "attention.layer_norm_rms_epsilon", (float) c.normEps());
        if (m != null) {
            g.putU32(a + "expert_count", m.numExperts()).putU32(a + "expert_used_count", m.topK())
                    .putU32(a + "expert_feed_forward_length", m.expertHidden());
            if (m.sharedExperts() > 0) g.putU32(a + "expert_shared_feed_forward_length", m.sharedWidth());
        }
        GgufTokenizers.put(g, vocab);
        try (ParamIndex p = new ParamIndex(model)) {
            tensor(g, "token_embd.weight", p.data("tok_embd"), d, c.vocabSize());
            for (int i = 0; i < c.layers(); i++) {
                String b = "blk." + i + ".", s = "layers." + i + ".";
                tensor(g, b + "attn_norm.weight", p.data(s + "attn_norm"), d);
                MemorySegment wq = f.ggufNeox ? p.neoxRows(s + "attn.wq", c.heads(), hd, d) : p.data(s + "attn.wq");
                MemorySegment wk = f.ggufNeox ? p.neoxRows(s + "attn.wk", c.kvHeads(), hd, d) : p.data(s + "attn.wk");
                tensor(g, b + "attn_q.weight", wq, d, q);
                tensor(g, b + "attn_k.weight", wk, d, kv);
                tensor(g, b + "attn_v.weight", p.data(s + "attn.wv"), d, kv);
                if (f == ExportFamily.QWEN2_MOE) {
                    tensor(g, b + "attn_q.bias", p.zeros(q), q);
                    tensor(g, b + "attn_k.bias", p.zeros(kv), kv);
                    tensor(g, b + "attn_v.bias", p.zeros(kv), kv);
                }
                tensor(g, b + "attn_output.weight", p.data(s + "attn.wo"), q, d);
                if (c.qkNorm()) {
                    // per-head gains are permuted like the rows they scale
                    tensor(g, b + "attn_q_norm.weight", f.ggufNeox ? p.neoxRows(s + "attn.q_norm", 1, hd, 1) : p.data(s + "attn.q_norm"), hd);
                    tensor(g, b + "attn_k_norm.weight", f.ggufNeox ? p.neoxRows(s + "attn.k_norm", 1, hd, 1) : p.data(s + "attn.k_norm"), hd);
                }
                tensor(g, b + "ffn_norm.weight", p.data(s + "ffn_norm"), d);
                if (m == null) {
                    int h = c.denseHidden();
                    tensor(g, b + "ffn_gate.weight", p.data(s + "ffn.gate"), d, h);
                    tensor(g, b + "ffn_up.weight", p.data(s + "ffn.up"), d, h);
                    tensor(g, b + "ffn_down.weight", p.data(s + "ffn.down"), h, d);
                } else {
                    int e = m.numExperts(), ff = m.expertHidden();
                    String x = s + "moe.";
                    tensor(g, b + "ffn_gate_inp.weight", p.data(x + "router.weight"), d, e);
                    tensor(g, b + "ffn_gate_exps.weight", p.data(x + "experts.gate"), d, ff, e);
                    tensor(g, b + "ffn_up_exps.weight", p.data(x + "experts.up"), d, ff, e);
                    tensor(g, b + "ffn_down_exps.weight", p.data(x + "experts.down"), ff, d, e);
                    if (m.sharedExperts() > 0) {
                        int sw = m.sharedWidth();
                        tensor(g, b + "ffn_gate_shexp.weight", p.data(x + "shared.gate"), d, sw);
                        tensor(g, b + "ffn_up_shexp.weight", p.data(x + "shared.up"), d, sw);
                        tensor(g, b + "ffn_down_shexp.weight", p.data(x + "shared.down"), sw, d);
                        tensor(g, b + "ffn_gate_inp_shexp.weight", p.data(x + "shared_gate"), d);
                    }
                }
            }
            tensor(g, "output_norm.weight", p.data("output_norm"), d);
            if (!c.tiedEmbeddings()) tensor(g, "output.weight", p.data("output"), d, c.vocabSize());
            else if (f == ExportFamily.QWEN2_MOE) tensor(g, "output.weight", p.data("tok_embd"), d, c.vocabSize());
            g.write(out);
        }
    }

    /** Adds F32 data with GGUF dims {@code ne} (fastest first, i.e. moe4j's shape reversed). */
    private static void tensor(GgufWriter g, String name, MemorySegment data, long... ne) {
        long n = 1;
        for (long x : ne) n *= x;
        g.addTensor(name, GgmlType.F32, ne, data.asSlice(0, n * 4));
    }
}
