package io.moe4j.moe;

/**
 * Capacity-limited dispatch (spec §3.5): each expert keeps at most C assignments; all rank-0 choices claim slots
 * before rank-1 choices, and within a rank tokens go in position order or by Batch Prioritized Routing (highest
 * top-1 weight first, stable). Dropped assignments get weight 0; a token whose assignments all drop produces 0
 * and the residual carries it.
 *
 * <p>Discrete: no gradient flows through the decision (spec §3.9 rule 1). Preallocated for maxTokens.
 */
public final class CapacityPlanner {
    private final int[] order;
    private final int[] used;
    private final Integer[] boxed;

    public CapacityPlanner(int numExperts, int maxTokens) {
        this.order = new int[maxTokens];
        this.used = new int[numExperts];
        this.boxed = new Integer[maxTokens];
    }

    private static float priority(Routing r, int token) {
        int e = r.expert[token * r.slots];
        return e < 0 ? Float.NEGATIVE_INFINITY : r.scores[token * r.numExperts + e];
    }

    /**
     * Applies capacity per routing group of {@code groupSize} positions (0 = the whole batch; the last group may be
     * shorter and gets the capacity of its own size, computed by {@code capacityOf}). With a padding mask the
     * capacity comes from the group's positions, padding included (flaxformer, lingvo), while only real tokens
     * claim slots.
     */
    public void apply(Routing r, int groupSize, java.util.function.IntUnaryOperator capacityOf, PriorityOrder priority) {
        for (int g = 0, n = r.groupCount(groupSize); g < n; g++) {
            int start = r.groupStart(groupSize, g), end = r.groupEnd(groupSize, g);
            if (end > start) applyGroup(r, start, end - start, capacityOf.applyAsInt(r.groupNominal(groupSize, g)), priority);
        }
    }

    /** Drops the assignments of {@code r} that exceed {@code capacity} per expert (one group: all tokens). */
    public void apply(Routing r, int capacity, PriorityOrder priority) {
        applyGroup(r, 0, r.tokens(), capacity, priority);
    }

    private void applyGroup(Routing r, int start, int t, int capacity, PriorityOrder priority) {
        int slots = r.slots;
        for (int i = 0; i < t; i++) order[i] = start + i;
        if (priority == PriorityOrder.BATCH_PRIORITY) {
            // Stable sort by descending priority = the router score of the token's top-1 expert (flaxformer,
            // V-MoE). Boxed sort: BPR is a training/encoder feature; T log T is negligible next to the GEMMs.
            for (int i = 0; i < t; i++) boxed[i] = start + i;
            java.util.Arrays.sort(boxed, 0, t, (a, b) -> Float.compare(priority(r, b), priority(r, a)));
            for (int i = 0; i < t; i++) order[i] = boxed[i];
        }
        java.util.Arrays.fill(used, 0);
        for (int rank = 0; rank < slots; rank++) {
            for (int i = 0; i < t; i++) {
                int s = order[i] * slots + rank;
                int e = r.expert[s];
                if (e < 0 || !r.kept[s]) continue;
                if (used[e] < capacity) used[e]++;
                else r.drop(s);
            }
        }
    }
}
