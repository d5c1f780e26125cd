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

    // Padding mask (spec §3.6 "HF masking"): MoeLayer compacts the real tokens of a masked batch, so this Routing
    // holds only them (tokens() of them, in position order); the groups below keep the original group boundaries.
    private final int[] realBefore; // (maxTokens+1) real tokens before original position i; valid when masked
    private int fullTokens;         // T of the batch, padding included
    private boolean masked;

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
        this.realBefore = new int[maxTokens + 1];
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
        fullTokens = t;
        masked = false;
    }

    /**
     * Starts the batch of the real tokens of a masked batch of {@code fullT} positions ({@code mask[i]} true = a
     * real token): {@link #tokens()} becomes their number, and the group methods map each original routing group
     * onto its real tokens.
     */
    public void reset(boolean[] mask, int fullT) {
        if (fullT < 0 || fullT > maxTokens) {
            throw new IllegalArgumentException("batch of " + fullT + " tokens exceeds the layer's maxTokens = " + maxTokens);
        }
        if (mask.length < fullT) {
            throw new IllegalArgumentException("mask has " + mask.length + " entries for a batch of " + fullT + " tokens");
        }
        realBefore[0] = 0;
        for (int i = 0; i < fullT; i++) realBefore[i + 1] = realBefore[i] + (mask[i] ? 1 : 0);
        reset(realBefore[fullT]);
        fullTokens = fullT;
        masked = true;
    }

    public int tokens() { return tokens; }

    /** T of the batch including masked (padding) tokens; equals {@link #tokens()} without a mask. */
    public int fullTokens() { return fullTokens; }

    /** True when the last reset carried a padding mask. */
    public boolean masked() { return masked; }

    // ---- Routing groups (a sequence, or a capacity group) of groupSize original positions; 0 = the whole batch.
    // Without a mask, group g is tokens [g·S, min((g+1)·S, T)); with one, the real tokens of those positions.

    private int groupLength(int groupSize) {
        return groupSize <= 0 || groupSize > fullTokens ? fullTokens : groupSize;
    }

    /** Number of groups (those that are all padding included; they have start == end). */
    public int groupCount(int groupSize) {
        int g = groupLength(groupSize);
        return g == 0 ? 0 : (fullTokens + g - 1) / g;
    }

    /** First routed token of group g. */
    public int groupStart(int groupSize, int g) {
        int o = g * groupLength(groupSize);
        return masked ? realBefore[o] : o;
    }

    /** End (exclusive) of group g's routed tokens. */
    public int groupEnd(int groupSize, int g) {
        int o = Math.min(fullTokens, (g + 1) * groupLength(groupSize));
        return masked ? realBefore[o] : o;
    }

    /** Positions of group g, padding included: capacity is computed from it (flaxformer, lingvo). */
    public int groupNominal(int groupSize, int g) {
        int l = groupLength(groupSize);
        return Math.min(fullTokens, (g + 1) * l) - g * l;
    }

    /** Groups with at least one routed token: losses averaged over groups divide by this. */
    public int activeGroups(int groupSize) {
        int n = 0;
        for (int g = 0, c = groupCount(groupSize); g < c; g++) if (groupEnd(groupSize, g) > groupStart(groupSize, g)) n++;
        return n;
    }

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
