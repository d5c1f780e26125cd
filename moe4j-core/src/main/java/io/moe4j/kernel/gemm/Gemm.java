package io.moe4j.kernel.gemm;

import io.moe4j.parallel.WorkerPool;

import java.lang.foreign.MemorySegment;

/**
 * Single-precision matrix multiply on row-major F32 data in memory segments.
 *
 * <pre>
 *   C (M×N) = op(A) (M×K) · op(B) (K×N)        [+ C if accumulate]
 *   op(A) = A      stored M×K, row stride lda ≥ K      (transA = false)
 *         = Aᵀ     A stored K×M, row stride lda ≥ M    (transA = true)
 *   op(B) = B      stored K×N, row stride ldb ≥ N      (transB = false)
 *         = Bᵀ     B stored N×K, row stride ldb ≥ K    (transB = true)
 * </pre>
 * Offsets and strides count floats. The three forms training needs: forward {@code Y = X·Wᵀ} ({@link #nt}),
 * input gradient {@code dX = dY·W} ({@link #nn}), weight gradient {@code dW += dYᵀ·X} ({@link #tn}).
 *
 * <p>Determinism: the result is bit-identical for any thread count (work is split over C tiles only; the K
 * reduction order is fixed). Implementations must not allocate per call on the hot path.
 *
 * <p>The pool's threads read and write the segments, so they must be accessible from any thread (global, auto or
 * shared arenas, or heap segments; not a confined arena). C must not overlap A or B. {@code k = 0} sets C to zero,
 * or leaves it unchanged when accumulating; {@code m = 0} or {@code n = 0} does nothing. Shapes, strides and
 * bounds are checked up front ({@link IllegalArgumentException}, {@link IndexOutOfBoundsException}).
 */
public interface Gemm {

    void sgemm(WorkerPool pool, boolean transA, boolean transB, int m, int n, int k,
               MemorySegment a, long aOff, int lda,
               MemorySegment b, long bOff, int ldb,
               MemorySegment c, long cOff, int ldc,
               boolean accumulate);

    /** C = A·Bᵀ (+C): A is M×K, B is N×K — a linear layer's forward with weights stored [out, in]. */
    default void nt(WorkerPool pool, int m, int n, int k, MemorySegment a, long aOff, int lda,
                    MemorySegment b, long bOff, int ldb, MemorySegment c, long cOff, int ldc, boolean accumulate) {
        sgemm(pool, false, true, m, n, k, a, aOff, lda, b, bOff, ldb, c, cOff, ldc, accumulate);
    }

    /** C = A·B (+C): A is M×K, B is K×N — a linear layer's input gradient. */
    default void nn(WorkerPool pool, int m, int n, int k, MemorySegment a, long aOff, int lda,
                    MemorySegment b, long bOff, int ldb, MemorySegment c, long cOff, int ldc, boolean accumulate) {
        sgemm(pool, false, false, m, n, k, a, aOff, lda, b, bOff, ldb, c, cOff, ldc, accumulate);
    }

    /** C = Aᵀ·B (+C): A is K×M, B is K×N — a linear layer's weight gradient. */
    default void tn(WorkerPool pool, int m, int n, int k, MemorySegment a, long aOff, int lda,
                    MemorySegment b, long bOff, int ldb, MemorySegment c, long cOff, int ldc, boolean accumulate) {
        sgemm(pool, true, false, m, n, k, a, aOff, lda, b, bOff, ldb, c, cOff, ldc, accumulate);
    }

    /**
     * A GEMM of the same implementation and results with its own packing buffers. Code that runs GEMMs inside
     * pool tasks keeps one per worker: concurrent calls on one shared instance are safe but all but one of them
     * allocate fresh buffers per call. Stateless implementations return themselves.
     */
    default Gemm fork() { return this; }

    /** A short name for logs and benchmark tables. */
    String name();
}
