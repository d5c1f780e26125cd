package io.moe4j.moe.loss;

/**
 * Router z-loss (ST-MoE, spec §3.7): {@code L = coef · (1/T) Σ_t (logsumexp_e z_{t,e})²}, computed in double
 * with a max-shifted log-sum-exp. Gradient {@code ∂L/∂z_{t,e} = coef · (2/T) · lse_t · softmax(z_t)_e}.
 */
public final class ZLoss {
    private ZLoss() {}

    /** Returns L and accumulates ∂L/∂z into {@code dLogits} (when not null). Logits are T×E row-major. */
    public static double compute(float[] logits, int t, int e, double coef, float[] dLogits) {
        if (coef == 0 || t == 0) return 0;
        double sum = 0;
        for (int i = 0; i < t; i++) {
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < e; j++) max = Math.max(max, logits[i * e + j]);
            double s = 0;
            for (int j = 0; j < e; j++) s += Math.exp(logits[i * e + j] - max);
            double lse = max + Math.log(s);
            sum += lse * lse;
            if (dLogits != null) {
                double scale = coef * 2.0 / t * lse;
                for (int j = 0; j < e; j++) {
                    dLogits[i * e + j] += (float) (scale * Math.exp(logits[i * e + j] - lse));
                }
            }
        }
        return coef * sum / t;
    }
}
