package io.moe4j.moe.variant;

import io.moe4j.nn.F32;
import io.moe4j.nn.Param;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;

/** Small helpers shared by the variant layers' tests. */
final class TestData {
    private TestData() {}

    static float[] randn(SplittableRandom rng, int n, double std) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) (std * Param.gaussian(rng));
        return v;
    }

    static MemorySegment seg(Arena arena, float[] v) {
        MemorySegment s = F32.alloc(arena, v.length);
        F32.copyIn(v, s, 0);
        return s;
    }

    static double[] softmax(double[] z) {
        double max = Double.NEGATIVE_INFINITY, sum = 0;
        for (double v : z) max = Math.max(max, v);
        double[] p = new double[z.length];
        for (int i = 0; i < z.length; i++) sum += p[i] = Math.exp(z[i] - max);
        for (int i = 0; i < z.length; i++) p[i] /= sum;
        return p;
    }

    /** Row i of x (d wide) times Wᵀ, W stored (rows, d). */
    /** softmax of each of t rows of e values, as floats. */
    static float[] softmaxRows(float[] z, int t, int e) {
        float[] out = new float[t * e];
        for (int i = 0; i < t; i++) {
            double[] row = new double[e];
            for (int j = 0; j < e; j++) row[j] = z[i * e + j];
            double[] p = softmax(row);
            for (int j = 0; j < e; j++) out[i * e + j] = (float) p[j];
        }
        return out;
    }

    static double[] linear(float[] w, int rows, float[] x, int i, int d) {
        double[] z = new double[rows];
        for (int r = 0; r < rows; r++) for (int j = 0; j < d; j++) z[r] += (double) w[r * d + j] * x[i * d + j];
        return z;
    }

    /** Σ r ⊙ y in double. */
    static double dot(float[] r, MemorySegment y, long off) {
        double s = 0;
        for (int i = 0; i < r.length; i++) s += (double) r[i] * F32.get(y, off + i);
        return s;
    }
}
