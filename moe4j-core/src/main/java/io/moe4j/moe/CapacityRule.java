package io.moe4j.moe;

/**
 * Capacity per expert per group of S tokens (spec §3.5: the references disagree, so the formula is a choice).
 */
public enum CapacityRule {
    /** flaxformer (Switch, ST-MoE, Expert Choice): C = max(round(CF·S/E), 4); not multiplied by k. */
    FLAXFORMER,
    /** lingvo GShard: C = floor(CF·S/E), 4 if that is 0. */
    GSHARD,
    /** V-MoE: C = ceil(k·S·CF/E) rounded up to a multiple of 4. */
    VMOE,
    /** MegaBlocks dropping MoE: C = floor(CF·k·S/E). */
    MEGABLOCKS,
    /** A fixed capacity (HF Switch's expert_capacity). */
    FIXED;

    /** The capacity for S tokens, E experts, k choices, factor cf (or the fixed value). */
    public int capacity(int s, int e, int k, double cf, int fixed) {
        return switch (this) {
            case FLAXFORMER -> Math.max((int) Math.round(cf * s / e), 4);
            case GSHARD -> {
                int c = (int) Math.floor(s * cf / e);
                yield c == 0 ? 4 : c;
            }
            case VMOE -> {
                int c = (int) Math.ceil(k * s * cf / e);
                yield (c + 3) / 4 * 4;
            }
            case MEGABLOCKS -> (int) Math.floor(cf * k * s / e);
            case FIXED -> fixed;
        };
    }
}
