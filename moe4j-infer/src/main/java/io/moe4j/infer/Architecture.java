package io.moe4j.infer;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/**
 * The decoder-only architectures moe4j runs, under llama.cpp's names ({@code general.architecture}), described as
 * data: which parts a block has and how its routing behaves. The forward pass reads these flags; it never asks
 * "which architecture is this".
 *
 * <p>Semantics read from llama.cpp at the peer's commit (de3ff815, {@code src/models/*.cpp},
 * {@code llama_model_rope_type}, {@code build_moe_ffn}):
 * <ul>
 *   <li>{@code llama}: RoPE on adjacent pairs; with experts (Mixtral) softmax → top-k → renormalised weights.</li>
 *   <li>{@code qwen2}: NEOX RoPE (pairs i, i+d/2), q/k/v biases.</li>
 *   <li>{@code qwen2moe}: qwen2 attention; top-k weights <em>not</em> renormalised; a shared expert whose output
 *       is multiplied by {@code sigmoid(ffn_gate_inp_shexp · h)}.</li>
 *   <li>{@code qwen3}/{@code qwen3moe}: NEOX RoPE, RMS norm of each head of Q and K ({@code attn_q_norm} /
 *       {@code attn_k_norm} of head_dim) before RoPE; qwen3moe renormalises (hard-coded in llama.cpp).</li>
 *   <li>{@code olmoe}: NEOX RoPE, RMS norm over the whole Q and K width before the head split; no renormalisation.</li>
 *   <li>{@code granite} / {@code granitemoe}: llama attention and Mixtral routing plus four scales from metadata: embeddings ×
 *       {@code embedding_scale}, each branch × {@code residual_scale} before its residual add, attention scale
 *       {@code attention.scale} instead of 1/√d, logits ÷ {@code logit_scale}; optional ungated shared expert.</li>
 *   <li>{@code deepseek2}: multi-head latent attention in llama.cpp's absorbed form ({@code attn_k_b} /
 *       {@code attn_v_b}; the cache holds one latent row per position), RoPE on adjacent pairs of the rotary part
 *       only; leading dense blocks; routed experts gated by softmax or sigmoid (+ {@code exp_probs_b} selection
 *       bias, expert groups, {@code expert_weights_norm} / {@code expert_weights_scale} from metadata) plus
 *       ungated shared experts. YaRN context scaling (all released DeepSeek-V2/V3 checkpoints) is not supported yet.</li>
 * </ul>
 */
public enum Architecture {
    //          gguf name     neox   qkNorm               experts              renorm  sharedGate  granite  mla
    LLAMA("llama", false, QkNorm.NONE, ExpertsRule.OPTIONAL, true, false, false, false),
    QWEN2("qwen2", true, QkNorm.NONE, ExpertsRule.NONE, false, false, false, false),
    QWEN2MOE("qwen2moe", true, QkNorm.NONE, ExpertsRule.REQUIRED, false, true, false, false),
    QWEN3("qwen3", true, QkNorm.PER_HEAD, ExpertsRule.NONE, false, false, false, false),
    QWEN3MOE("qwen3moe", true, QkNorm.PER_HEAD, ExpertsRule.REQUIRED, true, false, false, false),
    OLMOE("olmoe", true, QkNorm.FULL_WIDTH, ExpertsRule.REQUIRED, false, false, false, false),
    GRANITE("granite", false, QkNorm.NONE, ExpertsRule.OPTIONAL, true, false, true, false),
    GRANITEMOE("granitemoe", false, QkNorm.NONE, ExpertsRule.OPTIONAL, true, false, true, false),
    /** renormalisation, gating (softmax / sigmoid + selection bias), groups and scale come from metadata */
    DEEPSEEK2("deepseek2", false, QkNorm.NONE, ExpertsRule.REQUIRED, false, false, false, true);

    /** Where Q and K are RMS-normalised before RoPE. */
    public enum QkNorm {
        NONE,
        /** one weight of head_dim, applied to each head separately (qwen3) */
        PER_HEAD,
        /** one weight of the whole Q (or K) width, applied before the head split (olmoe) */
        FULL_WIDTH
    }

    /** Whether blocks have routed experts. */
    public enum ExpertsRule { NONE, OPTIONAL, REQUIRED }

    private final String ggufName;
    private final boolean neoxRope;
    private final QkNorm qkNorm;
    private final ExpertsRule experts;
    private final boolean renormTopK;
    private final boolean sharedExpertGated;
    private final boolean graniteScales;
    private final boolean mla;

    Architecture(String ggufName, boolean neoxRope, QkNorm qkNorm, ExpertsRule experts, boolean renormTopK,
                 boolean sharedExpertGated, boolean graniteScales, boolean mla) {
        this.ggufName = ggufName;
        this.neoxRope = neoxRope;
        this.qkNorm = qkNorm;
        this.experts = experts;
        this.renormTopK = renormTopK;
        this.sharedExpertGated = sharedExpertGated;
        this.graniteScales = graniteScales;
        this.mla = mla;
    }

    /** llama.cpp's name, the value of {@code general.architecture}. */
    public String ggufName() { return ggufName; }
    /** RoPE pairs (i, i + d/2) instead of (2i, 2i+1). */
    public boolean neoxRope() { return neoxRope; }
    public QkNorm qkNorm() { return qkNorm; }
    public ExpertsRule experts() { return experts; }
    /** Top-k router weights divided by their sum (Mixtral) or used as the softmax left them (Qwen2-MoE, OLMoE). */
    public boolean renormTopK() { return renormTopK; }
    /** A shared expert gated by {@code sigmoid(ffn_gate_inp_shexp · h)} that every token uses. */
    public boolean sharedExpertGated() { return sharedExpertGated; }
    /** Granite's embedding / residual / attention / logit scales are read from metadata. */
    public boolean graniteScales() { return graniteScales; }
    /** Multi-head latent attention (DeepSeek-V2 family) and DeepSeek's routing keys. */
    public boolean mla() { return mla; }

    /** The architecture named {@code name} in a GGUF file, or a {@link ModelFormatException} listing the supported ones. */
    public static Architecture of(String name, String file) {
        if (name == null) throw new ModelFormatException(file + ": no general.architecture in the metadata");
        for (Architecture a : values()) if (a.ggufName.equals(name)) return a;
        throw new ModelFormatException(file + ": unsupported architecture '" + name + "' (moe4j runs "
                + Arrays.stream(values()).map(Architecture::ggufName).collect(Collectors.joining(", ")) + ")");
    }

    @Override
    public String toString() { return ggufName.toLowerCase(Locale.ROOT); }
}
