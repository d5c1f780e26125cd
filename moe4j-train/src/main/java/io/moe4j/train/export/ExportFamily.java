package io.moe4j.train.export;

import io.moe4j.moe.ExpertType;
import io.moe4j.moe.MoeConfig;
import io.moe4j.train.model.ModelConfig;

import java.util.ArrayList;
import java.util.List;

/**
 * Which public model family a trained moe4j model is, if any: the mapping that lets llama.cpp and Hugging Face
 * transformers run it. A model maps to a family only when every piece of its computation means the same there;
 * otherwise {@link #reasons} says what does not fit and the model is saved in moe4j's own schema
 * ({@link Moe4jModelFile}).
 *
 * <table>
 *   <tr><th>family</th><th>GGUF arch</th><th>HF model_type</th><th>what it takes</th></tr>
 *   <tr><td>LLAMA</td><td>llama</td><td>llama</td><td>dense SwiGLU, no q/k norm</td></tr>
 *   <tr><td>MIXTRAL</td><td>llama (+experts)</td><td>mixtral</td><td>softmax top-k renormalised, no shared experts, no q/k norm</td></tr>
 *   <tr><td>QWEN3</td><td>qwen3</td><td>qwen3</td><td>dense, per-head q/k norm</td></tr>
 *   <tr><td>QWEN3_MOE</td><td>qwen3moe</td><td>qwen3_moe</td><td>softmax top-k renormalised, per-head q/k norm, no shared experts</td></tr>
 *   <tr><td>QWEN2_MOE</td><td>qwen2moe</td><td>qwen2_moe</td><td>softmax top-k NOT renormalised, one sigmoid-gated shared expert, untied head, H·hd = d</td></tr>
 * </table>
 * All need: every block the same kind (llama.cpp's llama/qwen loaders have no leading dense blocks), SwiGLU experts,
 * routed scale 1, no MoE++ special experts, dropless routing at inference.
 */
public enum ExportFamily {
    LLAMA("llama", "llama", false), MIXTRAL("llama", "mixtral", false), QWEN3("qwen3", "qwen3", true),
    QWEN3_MOE("qwen3moe", "qwen3_moe", true), QWEN2_MOE("qwen2moe", "qwen2_moe", true);

    /** llama.cpp's general.architecture. */
    public final String ggufArch;
    /** Hugging Face config.json model_type. */
    public final String hfModelType;
    /**
     * True when the engine rotates NEOX pairs (i, i + hd/2): moe4j rotates adjacent pairs (2i, 2i+1), so q/k rows are
     * permuted on export. llama GGUF uses adjacent pairs itself; HF checkpoints always use NEOX (rotate_half).
     */
    public final boolean ggufNeox;

    ExportFamily(String ggufArch, String hfModelType, boolean ggufNeox) {
        this.ggufArch = ggufArch;
        this.hfModelType = hfModelType;
        this.ggufNeox = ggufNeox;
    }

    /** The family of {@code c}, or the reasons it has none. */
    public record Match(ExportFamily family, List<String> reasons) {
        public boolean ok() { return family != null; }
    }

    public static Match of(ModelConfig c) {
        List<String> why = new ArrayList<>();
        boolean dense = c.moe() == null || c.denseLayers() >= c.layers();
        if (dense) return new Match(c.qkNorm() ? QWEN3 : LLAMA, why);
        if (c.denseLayers() > 0) why.add("leading dense blocks (denseLayers = " + c.denseLayers() + ")");
        MoeConfig m = c.moe();
        if (!m.router().equals("softmax-topk") && !m.router().equals("switch")) {
            why.add("router " + m.router() + " (the families route with softmax top-k)");
        }
        if (m.expertType() != ExpertType.SWIGLU) why.add("expert type " + m.expertType());
        if (m.routedScale() != 1f) why.add("routed scale " + m.routedScale());
        if (m.specialExperts() > 0) why.add("MoE++ zero/copy/constant experts");
        if (m.expertGateRank() > 0) why.add("factorised expert gates");
        ExportFamily f;
        if (m.normalizeTopK()) {
            if (m.sharedExperts() > 0) why.add("shared experts with renormalised top-k (no family has both)");
            f = c.qkNorm() ? QWEN3_MOE : MIXTRAL;
        } else {
            f = QWEN2_MOE;
            if (c.qkNorm()) why.add("q/k norm without top-k renormalisation");
            if (m.sharedExperts() == 0 || !m.sharedGate()) why.add("qwen2_moe needs a sigmoid-gated shared expert");
            if (c.tiedEmbeddings()) why.add("qwen2moe needs its own output matrix (untied)");
            if (c.heads() * c.headDim() != c.dModel()) why.add("qwen2moe needs heads·headDim = dModel");
        }
        return why.isEmpty() ? new Match(f, why) : new Match(null, why);
    }
}
