package io.moe4j.infer;

/**
 * Sees the router's decision for every token of every MoE layer, after expert skipping: which experts run for
 * the token and with which combine weights. Called on the engine's thread, in batch order, layer by layer; the
 * arrays are the engine's buffers, valid only during the call (copy what you keep). Used by {@link ExpertTrace}
 * (JSONL file) and {@link ExpertStats} (usage summary); {@link #both} combines two.
 */
@FunctionalInterface
public interface ExpertObserver {

    /**
     * @param layer    block index
     * @param slot     the token's sequence (cache slot)
     * @param position the token's position in its sequence
     * @param experts  chosen expert ids, best first, {@code count} of them
     * @param weights  their combine weights (as multiplied into the expert outputs)
     * @param selected how many the router chose before skipping ({@code count ≤ selected})
     */
    void onRouting(int layer, int slot, int position, int[] experts, float[] weights, int count, int selected);

    /** Calls {@code a} then {@code b}; either may be null. */
    static ExpertObserver both(ExpertObserver a, ExpertObserver b) {
        if (a == null) return b;
        if (b == null) return a;
        return (l, s, p, e, w, c, sel) -> {
            a.onRouting(l, s, p, e, w, c, sel);
            b.onRouting(l, s, p, e, w, c, sel);
        };
    }
}
