package io.moe4j.moe;

import java.util.Arrays;

/**
 * The router's decision for one batch of T tokens: per token up to {@code slots} (expert, weight) pairs.
 *
 * <p>Slot {@code s = t·slots + r} holds rank r of token t: {@code expert[s]} (−1 = empty), {@code weight[s]}
 * (the combine weight, 0 when dropped) and {@code kept[s]} (false when empty or dropped by capacity).
 * Token-choice routers fill ranks in descending score order; routers with a variable number of experts per token
 * (top-p, ReMoE, expert choice) leave trailing slots empty.
 *
 * <p>Also holds what the backward pass and the metrics need: router logits and scores (T×E), assignment counts
 * before ({@code assigned}) and after ({@code load}) capacity, and this batch's auxiliary loss values.
 * Preallocated for {@code maxTokens}; {@link #reset(int)} starts a new batch without allocating.
 */
public final class Routing {
    public final int numExperts;
    public final int slots;
    public final int maxTokens;

    private int tokens;

    /** (maxTokens·slots) expert id per slot, −1 = empty. */
    public final int[] expert;
    /** (maxTokens·slots) combine weight per slot. */
    public final float[] weight;
    /** (maxTokens·slots) true if the assignment is computed. */
    public final boolean[] kept;
    /** (maxTokens·E) router logits. */
    public final float[] logits;
    /** (maxTokens·E) router scores (probabilities for softmax routers, σ for sigmoid, ReLU outputs for ReMoE). */
    public final float[] scores;
    /** (E) assignments per expert before capacity dropping. */
    public final int[] assigned;
    /** (E) kept assignments per expert. */
    public final int[] load;

    /** Balance-loss value of this batch (coefficient included). */
    public double balanceLoss;
    /** z-loss value of this batch (coefficient included). */
    public double zLoss;
    /** Other router-specific auxiliary losses (coefficient included), e.g. entropy or L1 terms. */
    public double otherLoss;

    public Routing(int numExperts, int slots, int maxTokens) {
        this.numExperts = numExperts;
        this.slots = slots;
        this.maxTokens = maxTokens;
        this.expert = new int[maxTokens * slots];
        this.weight = new float[maxTokens * slots];
        this.kept = new boolean[maxTokens * slots];
        this.logits = new float[maxTokens * numExperts];
        this.scores = new float[maxTokens * numExperts];
        this.assigned = new int[numExperts];
        this.load = new int[numExperts];
    }

    /** Starts a batch of {@code t} tokens: all slots empty, counts and losses zero. */
    public void reset(int t) {
        if (t < 0 || t > maxTokens) {
            throw new IllegalArgumentException("batch of " + t + " tokens exceeds the layer's maxTokens = " + maxTokens);
        }
        tokens = t;
        Arrays.fill(expert, 0, t * slots, -1);
        Arrays.fill(weight, 0, t * slots, 0f);
        Arrays.fill(kept, 0, t * slots, false);
        Arrays.fill(assigned, 0);
        Arrays.fill(load, 0);
        balanceLoss = 0;
        zLoss = 0;
        otherLoss = 0;
    }

    public int tokens() { return tokens; }

    /** Records an assignment (kept until capacity says otherwise). */
    public void assign(int token, int rank, int e, float w) {
        int s = token * slots + rank;
        expert[s] = e;
        weight[s] = w;
        kept[s] = true;
        assigned[e]++;
        load[e]++;
    }

    /** Drops slot s (capacity): weight 0, not computed. */
    public void drop(int s) {
        if (kept[s]) {
            kept[s] = false;
            load[expert[s]]--;
            weight[s] = 0f;
        }
    }

    /** Number of kept assignments. */
    public int keptAssignments() {
        int n = 0;
        for (int c : load) n += c;
        return n;
    }

    /** Number of assignments before dropping. */
    public int totalAssignments() {
        int n = 0;
        for (int c : assigned) n += c;
        return n;
    }

    /** Total auxiliary loss of this batch. */
    public double auxLoss() { return balanceLoss + zLoss + otherLoss; }
}
