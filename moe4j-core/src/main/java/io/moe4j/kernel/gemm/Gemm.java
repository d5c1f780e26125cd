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
     * {@link #sgemm} with B and C each stored in two pieces, stacked along their storage rows — the fused gate|up
     * projection of gated experts without copying two weight tensors into one:
     * <pre>
     *   B storage row r (n if transB, else k):  r &lt; bSplit ? b[bOff + r·ldb ..] : b2[b2Off + (r − bSplit)·ldb ..]
     *   C row i:                               i &lt; cSplit ? c[cOff + i·ldc ..] : c2[c2Off + (i − cSplit)·ldc ..]
     * </pre>
     * e.g. forward [H|U] = X·[W_gate; W_up]ᵀ (NT, bSplit = f), input gradient dX = [dH|dU]·[W_gate; W_up] (NN,
     * bSplit = f along K), weight gradients [dW_gate; dW_up] += [dH|dU]ᵀ·X (TN, cSplit = f). A split at or past the
     * end uses only the first piece (then b2/c2 may be anything). Same results as the equivalent unsplit calls:
     * bit-identical for a split along N or M; along K (NN/TN with transB false), the K blocks of one call differ
     * from two accumulating calls unless the split falls on a K block boundary (see the implementation).
     *
     * <p>This default splits the product into plain {@link #sgemm} calls (the reference); implementations may do
     * it in one pass.
     */
    default void sgemmStacked(WorkerPool pool, boolean transA, boolean transB, int m, int n, int k,
                              MemorySegment a, long aOff, int lda,
                              MemorySegment b, long bOff, MemorySegment b2, long b2Off, int bSplit, int ldb,
                              MemorySegment c, long cOff, MemorySegment c2, long c2Off, int cSplit, int ldc,
                              boolean accumulate) {
        GemmChecks.checkStacked(transA, transB, m, n, k, a, aOff, lda, b, bOff, b2, b2Off, bSplit, ldb,
                c, cOff, c2, c2Off, cSplit, ldc);
        int cs = Math.min(cSplit, m);
        // rows of C (and of op(A)) in two parts
        for (int part = 0; part < 2; part++) {
            int i0 = part == 0 ? 0 : cs, rows = part == 0 ? cs : m - cs;
            if (rows == 0) continue;
            long ao = transA ? aOff + i0 : aOff + (long) i0 * lda;
            MemorySegment cp = part == 0 ? c : c2;
            long co = part == 0 ? cOff : c2Off;
            if (transB) {
                // B's storage rows are columns of C
                int bs = Math.min(bSplit, n);
                if (bs > 0) sgemm(pool, transA, true, rows, bs, k, a, ao, lda, b, bOff, ldb, cp, co, ldc, accumulate);
                if (n > bs) sgemm(pool, transA, true, rows, n - bs, k, a, ao, lda, b2, b2Off, ldb, cp, co + bs, ldc, accumulate);
            } else {
                // B's storage rows are steps of K: the second piece accumulates onto the first
                int bs = Math.min(bSplit, k);
                if (bs > 0 || k == 0) sgemm(pool, transA, false, rows, n, bs, a, ao, lda, b, bOff, ldb, cp, co, ldc, accumulate);
                if (k > bs) {
                    long ak = transA ? ao + (long) bs * lda : ao + bs;
                    sgemm(pool, transA, false, rows, n, k - bs, a, ak, lda, b2, b2Off, ldb, cp, co, ldc, accumulate || bs > 0);
                }
            }
        }
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
