package io.moe4j.moe.loss;

/**
 * Switch-style load-balancing losses: one formula, several normalisations (spec §3.6).
 *
 * <pre>
 *   L = coef · N · Σ_e F_e · P_e,     P_e = (1/T) Σ_t π_{t,e}   (differentiable),   F_e = count_e / (T·k')
 * </pre>
 * {@code π} is the router distribution over all E experts (softmax for most routers; s/Σs for DeepSeek-V3's
 * sequence-wise loss); {@code count_e} counts assignments <em>before</em> capacity dropping. The variants
 * differ in what is counted and in k' — and so by a factor k in value, which is why coefficients are not
 * portable between them. Computed per group (sequence) of tokens and averaged over groups by
 * {@link io.moe4j.moe.router.RouterLosses}.
 */
public enum BalanceLoss {
    /** No balance loss. */
    NONE,
    /** Switch / GShard / V-MoE "gshard loss": top-1 choices only, k' = 1. Value 1 at balance. */
    SWITCH,
    /** HF {@code load_balancing_loss_func} / flaxformer top-k: every selected expert, k' = 1. Value k at balance. */
    HF,
    /**
     * MegaBlocks / Megatron / DeepSeek expert-level and DeepSeek-V3 sequence-wise: every selected expert,
     * k' = k. Value 1 at balance.
     */
    MEGABLOCKS;

    /**
     * The loss of one group of {@code t} tokens, accumulating {@code ∂L/∂π} into {@code dProbs} (when not null).
     *
     * @param probs   π, rows {@code off .. off+t} of E values (row-major, index (off+i)·E + j)
     * @param top1    top-1 expert of token i at {@code top1[i]} (used by {@link #SWITCH}; may be null otherwise)
     * @param counts  assignments per expert over these t tokens (ignored by {@link #SWITCH})
     * @param k       experts per token (k' for MEGABLOCKS)
     * @return the loss value including {@code coef}
     */
    public double compute(float[] probs, int off, int t, int e, int[] top1, int[] counts, int k, double coef,
                          float[] dProbs) {
        return compute(probs, off, t, e, top1, counts, k, coef, null, dProbs);
    }

    /**
     * The same with a weight per expert, {@code L = coef · N · Σ_e η_e · F_e · P_e} ({@code eta == null}: all 1).
     * MoE++'s heterogeneous loss weights its zero-computation experts by τ this way (see
     * {@link io.moe4j.moe.router.MoePlusPlusRouter}).
     */
    public double compute(float[] probs, int off, int t, int e, int[] top1, int[] counts, int k, double coef,
                          double[] eta, float[] dProbs) {
        if (this == NONE || coef == 0 || t == 0) return 0;
        double[] f = new double[e];
        switch (this) {
            case SWITCH -> {
                for (int i = 0; i < t; i++) f[top1[i]] += 1.0 / t;
            }
            case HF -> {
                for (int j = 0; j < e; j++) f[j] = counts[j] / (double) t;
            }
            case MEGABLOCKS -> {
                for (int j = 0; j < e; j++) f[j] = counts[j] / ((double) t * k);
            }
            default -> throw new AssertionError(this);
        }
        double[] p = new double[e];
        for (int i = 0; i < t; i++) for (int j = 0; j < e; j++) p[j] += probs[(off + i) * e + j];
        if (eta != null) for (int j = 0; j < e; j++) f[j] *= eta[j];
        double loss = 0;
        for (int j = 0; j < e; j++) loss += f[j] * p[j] / t;
        loss *= coef * e;
        if (dProbs != null) {
            // ∂L/∂π_{t,e} = coef · E · η_e · F_e / T, the same for every token of the group.
            for (int j = 0; j < e; j++) {
                float g = (float) (coef * e * f[j] / t);
                if (g == 0) continue;
                for (int i = 0; i < t; i++) dProbs[(off + i) * e + j] += g;
            }
        }
        return loss;
    }
}
