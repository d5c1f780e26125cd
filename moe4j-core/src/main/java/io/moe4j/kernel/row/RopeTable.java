package io.moe4j.kernel.row;

/**
 * Precomputed cosines and sines for rotary position embeddings, laid out for {@link RowOps#rope}: for position
 * {@code pos} and pair {@code i} (0 ≤ i &lt; rotDim/2) the angle is
 * {@code pos · base^(−2i/rotDim) / freqFactors[i]}, computed in double and rounded to float once, stored at
 * {@code cos()[offset(pos) + i]} and {@code sin()[offset(pos) + i]}.
 *
 * <p>{@code freqFactors} is the frequency-scaling hook: it divides each pair's frequency, which is what llama.cpp's
 * {@code rope_freqs} tensor does (llama3 long-context scaling ships as such a tensor), and {@link #linear} builds
 * the all-equal case (linear position interpolation: pos/scale). Null means no scaling.
 *
 * <p>Cost: 2 · maxPos · rotDim/2 floats (4 MiB for 4096 positions × rotDim 128). Immutable after construction;
 * the arrays are exposed without copying for the hot path, so callers must not write to them.
 *
 * <p>Non-goals: YaRN's attention-magnitude factor and NTK-by-parts ramps (they can be expressed by building
 * {@code freqFactors} plus scaling q/k outside this table); partial rotation is {@code rotDim < headDim}, chosen
 * at the call to {@code rope}.
 */
public final class RopeTable {
    private final int maxPos;
    private final int rotDim;
    private final double base;
    private final float[] cos; // (maxPos, rotDim/2)
    private final float[] sin; // (maxPos, rotDim/2)

    /** Unscaled RoPE for positions [0, maxPos), rotDim rotated dims per head, frequency base (e.g. 10000). */
    public RopeTable(int maxPos, int rotDim, double base) {
        this(maxPos, rotDim, base, null);
    }

    /**
     * RoPE with per-pair frequency divisors {@code freqFactors} (length rotDim/2, each &gt; 0), or null for none.
     */
    public RopeTable(int maxPos, int rotDim, double base, float[] freqFactors) {
        if (maxPos < 0) throw new IllegalArgumentException("maxPos must be >= 0, got " + maxPos);
        if (rotDim < 0 || (rotDim & 1) != 0) throw new IllegalArgumentException("rotDim must be even and >= 0, got " + rotDim);
        if (!(base > 0)) throw new IllegalArgumentException("base must be > 0, got " + base);
        int half = rotDim / 2;
        if (freqFactors != null) {
            if (freqFactors.length != half) {
                throw new IllegalArgumentException("freqFactors needs rotDim/2 = " + half + " entries, got " + freqFactors.length);
            }
            for (int i = 0; i < half; i++) {
                if (!(freqFactors[i] > 0)) throw new IllegalArgumentException("freqFactors[" + i + "] = " + freqFactors[i] + " must be > 0");
            }
        }
        long size = (long) maxPos * half;
        if (size > Integer.MAX_VALUE - 8) throw new IllegalArgumentException("table of " + size + " entries is too large");
        this.maxPos = maxPos;
        this.rotDim = rotDim;
        this.base = base;
        this.cos = new float[(int) size];
        this.sin = new float[(int) size];
        double[] freq = new double[half];
        for (int i = 0; i < half; i++) {
            freq[i] = Math.pow(base, -2.0 * i / rotDim) / (freqFactors == null ? 1.0 : freqFactors[i]);
        }
        for (int p = 0; p < maxPos; p++) {
            for (int i = 0; i < half; i++) {
                double angle = p * freq[i];
                cos[p * half + i] = (float) Math.cos(angle);
                sin[p * half + i] = (float) Math.sin(angle);
            }
        }
    }

    /** Linear position interpolation: angles of position pos/scale (scale ≥ 1 stretches the context). */
    public static RopeTable linear(int maxPos, int rotDim, double base, float scale) {
        float[] f = new float[rotDim / 2];
        java.util.Arrays.fill(f, scale);
        return new RopeTable(maxPos, rotDim, base, f);
    }

    /** The {@code tab} argument of {@link RowOps#rope} for position {@code pos}. */
    public int offset(int pos) {
        if (pos < 0 || pos >= maxPos) throw new IllegalArgumentException("position " + pos + " outside [0, " + maxPos + ")");
        return pos * (rotDim / 2);
    }

    /** Cosines, (maxPos, rotDim/2) row-major. Shared, not copied: do not modify. */
    public float[] cos() { return cos; }

    /** Sines, (maxPos, rotDim/2) row-major. Shared, not copied: do not modify. */
    public float[] sin() { return sin; }

    public int maxPos() { return maxPos; }
    public int rotDim() { return rotDim; }
    public double base() { return base; }
}
