package io.moe4j.moe;

/** How assignments reach experts (spec §3.4, §3.5). */
public enum DispatchMode {
    /** Every assignment is computed (Mixtral, Qwen, OLMoE, DeepSeek, MegaBlocks dMoE). */
    DROPLESS,
    /** Each expert takes at most C assignments per batch; the rest are dropped (residual carries the token). */
    CAPACITY
}
