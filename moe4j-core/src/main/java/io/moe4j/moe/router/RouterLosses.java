package io.moe4j.moe.router;

import io.moe4j.moe.Routing;
import io.moe4j.moe.loss.BalanceLoss;

import java.util.Arrays;

/**
 * Applies a {@link BalanceLoss} per group of tokens (a sequence for DeepSeek's sequence-wise loss, a routing group
 * for Switch/flaxformer; the whole batch when groupSize = 0) and averages over groups. Counts are taken from the
 * routing's slots before capacity dropping. Scratch arrays are preallocated per router.
 */
public final class RouterLosses {
    private final int e;
    private final int[] counts;
    private final int[] top1;

    public RouterLosses(int numExperts, int maxTokens) {
        this.e = numExperts;
        this.counts = new int[numExperts];
        this.top1 = new int[maxTokens];
    }

    /**
     * @param pi      router distribution π, T×E
     * @param k       experts per token used in the normalisation
     * @param dPi     gradient accumulator for π (null: value only)
     */
    public double balance(BalanceLoss kind, Routing r, float[] pi, int t, int k, double coef, int groupSize, float[] dPi) {
        return balance(kind, r, r.expert, r.slots, pi, t, k, coef, groupSize, null, dPi);
    }

    /** With a weight per expert η (null = all 1): {@code L = coef·N·Σ_e η_e F_e P_e} per group (MoE++ τ). */
    public double balance(BalanceLoss kind, Routing r, float[] pi, int t, int k, double coef, int groupSize,
                          double[] eta, float[] dPi) {
        return balance(kind, r, r.expert, r.slots, pi, t, k, coef, groupSize, eta, dPi);
    }

    /**
     * The same over an explicit indicator: token i chose {@code expert[i·slots + s]} (−1 = empty slot). Used when
     * the loss counts something other than the routing decision (DeepSeek-V3's unbiased top-k). The groups are
     * {@code r}'s (with a padding mask: the real tokens of each group, and groups of padding only are skipped —
     * HF's masked means).
     */
    public double balance(BalanceLoss kind, Routing r, int[] expert, int slots, float[] pi, int t, int k, double coef,
                          int groupSize, float[] dPi) {
        return balance(kind, r, expert, slots, pi, t, k, coef, groupSize, null, dPi);
    }

    private double balance(BalanceLoss kind, Routing r, int[] expert, int slots, float[] pi, int t, int k, double coef,
                           int groupSize, double[] eta, float[] dPi) {
        if (kind == BalanceLoss.NONE || coef == 0 || t == 0) return 0;
        int groups = r.activeGroups(groupSize);
        double total = 0;
        for (int gi = 0, gn = r.groupCount(groupSize); gi < gn; gi++) {
            int start = r.groupStart(groupSize, gi), n = r.groupEnd(groupSize, gi) - start;
            if (n == 0) continue;
            Arrays.fill(counts, 0);
            for (int i = 0; i < n; i++) {
                int tok = start + i;
                top1[i] = expert[tok * slots];
                for (int s = 0; s < slots; s++) {
                    int ex = expert[tok * slots + s];
                    if (ex >= 0) counts[ex]++;
                }
            }
            total += kind.compute(pi, start, n, e, top1, counts, k, coef / groups, eta, dPi);
        }
        return total;
    }
}
