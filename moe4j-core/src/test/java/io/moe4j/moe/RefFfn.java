package io.moe4j.moe;

/** Double-precision reference expert FFNs for tests (independent of the kernels). */
public final class RefFfn {
    private RefFfn() {}

    public static double silu(double v) { return v / (1 + Math.exp(-v)); }

    public static double geluTanh(double v) {
        return 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));
    }

    /** Exact GELU x·Φ(x) through {@link #erf} — independent of the kernel's erfc fit. */
    public static double geluErf(double v) { return 0.5 * v * (1 + erf(v / Math.sqrt(2))); }

    /**
     * erf in double: Maclaurin series for |x| ≤ 3 (cancellation costs at most ~4 digits there), beyond it the
     * continued fraction erfc(x) = e^{−x²}/√π · 1/(x + ½/(x + 1/(x + 3⁄2/(x + …)))), evaluated bottom-up.
     */
    public static double erf(double x) {
        double a = Math.abs(x);
        if (a <= 3) {
            double term = x, sum = x;
            for (int n = 1; n < 200 && Math.abs(term) > 1e-18; n++) {
                term *= -x * x / n;
                sum += term / (2 * n + 1);
            }
            return 2 / Math.sqrt(Math.PI) * sum;
        }
        double cf = a;
        for (int k = 100; k >= 1; k--) cf = a + (k / 2.0) / cf;
        double erfc = Math.exp(-a * a) / Math.sqrt(Math.PI) / cf;
        return Math.signum(x) * (1 - erfc);
    }

    /** FFN of expert e on x[xo..xo+d): weights stacked (E, f, d) for gate/up, (E, d, f) for down. */
    public static double[] ffn(ExpertType type, float[] x, int xo, int d, int f, float[] gate, float[] up, float[] down, int e) {
        return ffn(type, x, xo, d, f, d, gate, up, down, e);
    }

    /** As above with a down projection to {@code dOut} outputs: down is (E, dOut, f). */
    public static double[] ffn(ExpertType type, float[] x, int xo, int d, int f, int dOut, float[] gate, float[] up,
                               float[] down, int e) {
        double[] a = new double[f];
        for (int i = 0; i < f; i++) {
            double h = 0, u = 0;
            for (int j = 0; j < d; j++) {
                if (gate != null) h += gate[e * f * d + i * d + j] * x[xo + j];
                u += up[e * f * d + i * d + j] * x[xo + j];
            }
            a[i] = switch (type) {
                case SWIGLU -> silu(h) * u;
                case GEGLU -> geluTanh(h) * u;
                case MLP_RELU -> Math.max(0, u);
                case MLP_GELU -> geluTanh(u);
                case MLP_GELU_ERF -> geluErf(u);
            };
        }
        double[] y = new double[dOut];
        for (int j = 0; j < dOut; j++) for (int i = 0; i < f; i++) y[j] += down[e * dOut * f + j * f + i] * a[i];
        return y;
    }

    /**
     * Asserts y (T, d) equals the dense mixture Σ_e softmax(x·W_rᵀ)_e · FFN_e(x) of a SwiGLU layer, computed in
     * double from the layer's own parameters (spec §5.8.1: k = E, expert choice with C = S, top-p with p = 1).
     */
    static void assertDenseMixture(MoeLayer layer, float[] xs, java.lang.foreign.MemorySegment y, int t) {
        MoeConfig c = layer.config();
        int d = c.dModel(), f = c.expertHidden(), e = c.numExperts();
        ExpertBank b = layer.experts();
        float[] wr = layer.router().params().get(0).toArray();
        float[] gate = b.gate().toArray(), up = b.up().toArray(), down = b.down().toArray();
        for (int i = 0; i < t; i++) {
            double[] z = new double[e];
            for (int k = 0; k < e; k++) for (int j = 0; j < d; j++) z[k] += wr[k * d + j] * xs[i * d + j];
            double[] p = MoeLayerTest.softmax(z);
            double[] ref = new double[d];
            for (int k = 0; k < e; k++) {
                double[] fk = ffn(ExpertType.SWIGLU, xs, i * d, d, f, gate, up, down, k);
                for (int j = 0; j < d; j++) ref[j] += p[k] * fk[j];
            }
            for (int j = 0; j < d; j++) {
                org.assertj.core.api.Assertions.assertThat((double) io.moe4j.nn.F32.get(y, (long) i * d + j))
                        .as("token %d dim %d", i, j).isCloseTo(ref[j], org.assertj.core.api.Assertions.within(1e-5));
            }
        }
    }
}
