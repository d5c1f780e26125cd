package io.moe4j.kernel.row;

import java.lang.foreign.MemorySegment;

/**
 * The exact GELU, {@code gelu(x) = x·Φ(x)} with {@code Φ(x) = ½·erfc(−x/√2)} (PyTorch {@code nn.GELU()},
 * HF {@code "gelu"}), and its derivative {@code Φ(x) + x·φ(x)}. The MLP experts of MoLE (spec §3.1, §4.16) use it;
 * {@link RowOps#gelu} is the tanh approximation, which differs by up to ~5e-4 — enough to matter when a checkpoint
 * trained with one is run with the other.
 *
 * <p>Scalar, in double, rounded to float: Java has no {@code erf}, so {@code erfc} is the Chebyshev-fitted
 * formula of Numerical Recipes (fractional error below 1.2e-7 everywhere, i.e. about one float ulp). It costs one
 * {@code exp} per element; at expert widths this is small next to the two GEMMs around it, which is why no vector
 * version exists yet. Same conventions as {@link RowOps}: offsets count floats, the backward accumulates into dx.
 */
public final class ErfGelu {
    private ErfGelu() {}

    private static final double INV_SQRT2 = 0.7071067811865476;
    private static final double INV_SQRT_2PI = 0.3989422804014327;

    /** erfc(z), fractional error < 1.2e-7 (Numerical Recipes, 2nd ed., §6.2 {@code erfcc}). */
    public static double erfc(double z) {
        double a = Math.abs(z);
        double t = 1.0 / (1.0 + 0.5 * a);
        double r = t * Math.exp(-a * a - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418
                + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587
                + t * (-0.82215223 + t * 0.17087277)))))))));
        return z >= 0 ? r : 2.0 - r;
    }

    /** Φ(x), the standard normal CDF. */
    public static double cdf(double x) { return 0.5 * erfc(-x * INV_SQRT2); }

    public static float gelu(float x) { return (float) (x * cdf(x)); }

    /** d gelu / dx = Φ(x) + x·φ(x). */
    public static float geluGrad(float x) {
        double v = x;
        return (float) (cdf(v) + v * INV_SQRT_2PI * Math.exp(-0.5 * v * v));
    }

    /** out[i] = gelu(x[i]) for i in [0, n); in place allowed. */
    public static void forward(int n, MemorySegment x, long xOff, MemorySegment out, long outOff) {
        RowChecks.vectors(n, "x", x, xOff, "out", out, outOff);
        for (int i = 0; i < n; i++) {
            ScalarRowOps.set(out, outOff, i, gelu(ScalarRowOps.get(x, xOff, i)));
        }
    }

    /** dx[i] += dout[i]·gelu'(x[i]). */
    public static void backward(int n, MemorySegment x, long xOff, MemorySegment dout, long doutOff,
                                MemorySegment dx, long dxOff) {
        RowChecks.vectors(n, "x", x, xOff, "dout", dout, doutOff, "dx", dx, dxOff);
        for (int i = 0; i < n; i++) {
            float g = ScalarRowOps.get(dout, doutOff, i) * geluGrad(ScalarRowOps.get(x, xOff, i));
            ScalarRowOps.set(dx, dxOff, i, ScalarRowOps.get(dx, dxOff, i) + g);
        }
    }
}
