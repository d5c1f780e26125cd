package io.moe4j.moe;

/**
 * The expert FFN variants (spec §3.1). Gated variants have three matrices (gate, up, down), plain MLPs two
 * (up, down).
 */
public enum ExpertType {
    /** down · (silu(gate·x) ⊙ up·x) — Mixtral, Qwen, OLMoE, DeepSeek, DBRX. */
    SWIGLU(true),
    /** down · (gelu_tanh(gate·x) ⊙ up·x) — Grok-1. */
    GEGLU(true),
    /** down · relu(up·x) — Switch v1. */
    MLP_RELU(false),
    /** down · gelu_tanh(up·x). */
    MLP_GELU(false),
    /** down · gelu(up·x) with the exact erf GELU — MoLE experts and shared FFN (spec §3.1, §4.16). */
    MLP_GELU_ERF(false);

    private final boolean gated;

    ExpertType(boolean gated) { this.gated = gated; }

    public boolean gated() { return gated; }
}
