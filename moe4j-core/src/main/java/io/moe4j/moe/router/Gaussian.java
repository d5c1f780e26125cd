package io.moe4j.moe.router;

/**
 * The error function and the standard normal CDF in double, for the noisy-gating load estimate (spec §4.1, Φ) —
 * the JDK has no erf.
 *
 * <p>erf(x) for |x| &lt; 2.5 by the all-positive series {@code erf(x) = 2/√π · e^{−x²} · Σ_n 2ⁿ x^{2n+1} / (1·3···(2n+1))}
 * (no cancellation, so relative accuracy ~1e-16); erfc(x) for x ≥ 2.5 by Laplace's continued fraction
 * {@code erfc(x) = e^{−x²}/√π · 1/(x + ½/(x + 1/(x + 3/2/(x + …))))}, evaluated bottom-up at a fixed depth that
 * is exact to double precision from x = 2.5 on. Not a hot path: called T·E times per training forward.
 * Non-goal: speed (a rational approximation would be faster; the accuracy is what the gradient checks need).
 */
public final class Gaussian {
    private Gaussian() {}

    private static final double TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);
    private static final double INV_SQRT_PI = 1 / Math.sqrt(Math.PI);
    private static final double SQRT2 = Math.sqrt(2);
    private static final double SPLIT = 2.5;
    private static final int FRACTION_DEPTH = 80;

    public static double erf(double x) {
        if (Double.isNaN(x)) return x;
        double a = Math.abs(x);
        double r = a < SPLIT ? series(a) : 1 - fraction(a);
        return x < 0 ? -r : r;
    }

    /** 1 − erf(x), accurate in the upper tail. */
    public static double erfc(double x) {
        if (Double.isNaN(x)) return x;
        if (x >= SPLIT) return fraction(x);
        if (x <= -SPLIT) return 2 - fraction(-x);
        return 1 - erf(x);
    }

    /** Φ(u) = P(N(0,1) ≤ u) = ½·erfc(−u/√2). */
    public static double cdf(double u) { return 0.5 * erfc(-u / SQRT2); }

    /** φ(u), the standard normal density. */
    public static double pdf(double u) { return Math.exp(-0.5 * u * u) * INV_SQRT_PI / SQRT2; }

    private static double series(double x) {
        double x2 = x * x, term = x, sum = x;
        for (int n = 1; n < 200; n++) {
            term *= 2 * x2 / (2 * n + 1);
            sum += term;
            if (term < sum * 1e-17) break;
        }
        return TWO_OVER_SQRT_PI * Math.exp(-x2) * sum;
    }

    private static double fraction(double x) {
        double f = x;
        for (int n = FRACTION_DEPTH; n >= 1; n--) f = x + 0.5 * n / f;
        return Math.exp(-x * x) * INV_SQRT_PI / f;
    }
}
