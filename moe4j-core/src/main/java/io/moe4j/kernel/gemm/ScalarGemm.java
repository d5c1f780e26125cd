package io.moe4j.kernel.gemm;

import io.moe4j.parallel.WorkerPool;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Reference SGEMM: the textbook triple loop, one output element at a time, K summed in order 0..K-1 in F32.
 * Readable ground truth for tests; parallel over rows of C so tests on big shapes stay bearable.
 */
public final class ScalarGemm implements Gemm {
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.nativeOrder());

    @Override
    public void sgemm(WorkerPool pool, boolean transA, boolean transB, int m, int n, int k,
                      MemorySegment a, long aOff, int lda, MemorySegment b, long bOff, int ldb,
                      MemorySegment c, long cOff, int ldc, boolean accumulate) {
        GemmChecks.check(transA, transB, m, n, k, a, aOff, lda, b, bOff, ldb, c, cOff, ldc);
        pool.parallelFor(m, (i, worker) -> {
            for (int j = 0; j < n; j++) {
                float sum = 0f;
                for (int p = 0; p < k; p++) {
                    long ai = transA ? aOff + (long) p * lda + i : aOff + (long) i * lda + p;
                    long bi = transB ? bOff + (long) j * ldb + p : bOff + (long) p * ldb + j;
                    sum += a.getAtIndex(F, ai) * b.getAtIndex(F, bi);
                }
                long ci = cOff + (long) i * ldc + j;
                c.setAtIndex(F, ci, accumulate ? c.getAtIndex(F, ci) + sum : sum);
            }
        });
    }

    @Override
    public String name() { return "scalar"; }
}
