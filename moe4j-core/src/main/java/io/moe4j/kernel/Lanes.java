package io.moe4j.kernel;

import jdk.incubator.vector.FloatVector;

/**
 * Deterministic horizontal sums for the SIMD kernels.
 *
 * <p>Why not {@code reduceLanes(VectorOperators.ADD)}: its float summation order is unspecified, and HotSpot uses a
 * different order when the caller is C2-compiled than in the interpreter or C1 — measured here: the same dot and
 * softmax loop gave different bits under {@code -Xbatch} than under default tiering. Results then depended on JIT
 * timing, so training reruns and resumes were not bit-identical. Summing the lanes in index order through a small
 * gives one answer in every execution mode.
 */
public final class Lanes {
    private Lanes() {}

    /**
     * Σ lanes, left to right. Lane by lane rather than through a float[]: the array escaped into the vector store
     * intrinsic and was allocated on every call (JFR: 5 GB a minute in a training run, from dot/softmax/rmsnorm).
     * {@code lane(i)} is a switch over constant-index extracts, so no path allocates and the order is the same.
     */
    public static float sum(FloatVector v) {
        float s = 0f;
        for (int i = 0, n = v.length(); i < n; i++) s += v.lane(i);
        return s;
    }
}
