package io.moe4j.kernel.gemm;

import io.moe4j.parallel.WorkerPool;

import java.lang.foreign.MemorySegment;

/** PLACEHOLDER in the skeleton commit: replaced by the GEMM work. */
public final class SimdGemm implements Gemm {
    private final ScalarGemm ref = new ScalarGemm();

    @Override
    public void sgemm(WorkerPool pool, boolean transA, boolean transB, int m, int n, int k,
                      MemorySegment a, long aOff, int lda, MemorySegment b, long bOff, int ldb,
                      MemorySegment c, long cOff, int ldc, boolean accumulate) {
        ref.sgemm(pool, transA, transB, m, n, k, a, aOff, lda, b, bOff, ldb, c, cOff, ldc, accumulate);
    }

    @Override
    public String name() { return "simd"; }
}
