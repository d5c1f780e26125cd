package io.moe4j.kernel;

import jdk.incubator.vector.FloatVector;

/**
 * Deterministic horizontal sums for the SIMD kernels.
 *
 * <p>Why not {@code reduceLanes(VectorOperators.ADD)}: its float summation order is unspecified, and HotSpot uses a
 * different order when the caller is C2-compiled than in the interpreter or C1 — measured here: the same dot and
 * softmax loop gave different bits under {@code -Xbatch} than under default tiering. Results then depended on JIT
 * timing, so training reruns and resumes were not bit-identical. Summing the lanes in index order through a small
 * array gives one answer in every execution mode (escape analysis keeps the array off the heap).
 */
public final class Lanes {
    private Lanes() {}

    /** Σ lanes, left to right. */
    public static float sum(FloatVector v) {
        float[] t = new float[v.length()];
        v.intoArray(t, 0);
        float s = 0f;
        for (float x : t) s += x;
        return s;
    }
}
