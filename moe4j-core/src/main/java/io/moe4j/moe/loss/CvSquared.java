package io.moe4j.moe.loss;

/**
 * Squared coefficient of variation, the balance measure of the importance and load losses (spec §4.1; also the
 * V-MoE losses of §4.10), exactly as tensor2tensor's {@code cv_squared}:
 *
 * <pre>
 *   N = n + 1e-10,  mean = Σv / N,  var = Σ(v − mean)² / N   (population variance),  CV² = var / (mean² + 1e-10)
 * </pre>
 * The epsilons make an all-zero vector give 0 instead of NaN. CV² of a constant vector is 0; CV²([2,1,1,0]) = 0.5.
 */
public final class CvSquared {
    private CvSquared() {}

    public static final double EPS = 1e-10;

    /** CV² of v[0..n). */
    public static double value(double[] v, int n) {
        return valueAndGradient(v, n, 0, null);
    }

    /**
     * CV² of v[0..n); when {@code dv} is not null, adds {@code scale · ∂CV²/∂v_i} to dv[i]:
     * <pre>
     *   ∂var/∂v_i = (2/N)·((v_i − mean) − Σ_j (v_j − mean)/N)
     *   ∂CV²/∂v_i = ∂var/∂v_i / (mean² + ε) − var · 2·mean / (N · (mean² + ε)²)
     * </pre>
     */
    public static double valueAndGradient(double[] v, int n, double scale, double[] dv) {
        double size = n + EPS;
        double sum = 0;
        for (int i = 0; i < n; i++) sum += v[i];
        double mean = sum / size;
        double var = 0, dev = 0;
        for (int i = 0; i < n; i++) {
            double a = v[i] - mean;
            var += a * a;
            dev += a;
        }
        var /= size;
        double den = mean * mean + EPS;
        double cv = var / den;
        if (dv != null && scale != 0) {
            double meanTerm = var * 2 * mean / (size * den * den);
            for (int i = 0; i < n; i++) {
                double dVar = 2 / size * ((v[i] - mean) - dev / size);
                dv[i] += scale * (dVar / den - meanTerm);
            }
        }
        return cv;
    }
}
