package io.moe4j.kernel.gemm;

import java.lang.foreign.MemorySegment;

/** Argument validation shared by GEMM implementations: shapes, strides and that every operand fits its segment. */
final class GemmChecks {
    private GemmChecks() {}

    static void check(boolean transA, boolean transB, int m, int n, int k,
                      MemorySegment a, long aOff, int lda, MemorySegment b, long bOff, int ldb,
                      MemorySegment c, long cOff, int ldc) {
        if (m < 0 || n < 0 || k < 0) throw new IllegalArgumentException("negative GEMM size m=" + m + " n=" + n + " k=" + k);
        int aRows = transA ? k : m, aCols = transA ? m : k;
        int bRows = transB ? n : k, bCols = transB ? k : n;
        fits("A", a, aOff, aRows, aCols, lda);
        fits("B", b, bOff, bRows, bCols, ldb);
        fits("C", c, cOff, m, n, ldc);
    }

    static void checkStacked(boolean transA, boolean transB, int m, int n, int k,
                             MemorySegment a, long aOff, int lda,
                             MemorySegment b, long bOff, MemorySegment b2, long b2Off, int bSplit, int ldb,
                             MemorySegment c, long cOff, MemorySegment c2, long c2Off, int cSplit, int ldc) {
        if (m < 0 || n < 0 || k < 0) throw new IllegalArgumentException("negative GEMM size m=" + m + " n=" + n + " k=" + k);
        if (bSplit < 0 || cSplit < 0) throw new IllegalArgumentException("negative split bSplit=" + bSplit + " cSplit=" + cSplit);
        int aRows = transA ? k : m, aCols = transA ? m : k;
        int bRows = transB ? n : k, bCols = transB ? k : n;
        fits("A", a, aOff, aRows, aCols, lda);
        int bs = Math.min(bSplit, bRows), cs = Math.min(cSplit, m);
        fits("B", b, bOff, bs, bCols, ldb);
        if (bRows > bs) fits("B2", b2, b2Off, bRows - bs, bCols, ldb);
        else if (ldb < bCols) throw new IllegalArgumentException("B: leading dimension " + ldb + " < columns " + bCols);
        fits("C", c, cOff, cs, n, ldc);
        if (m > cs) fits("C2", c2, c2Off, m - cs, n, ldc);
        else if (ldc < n) throw new IllegalArgumentException("C: leading dimension " + ldc + " < columns " + n);
    }

    private static void fits(String what, MemorySegment s, long off, int rows, int cols, int ld) {
        if (ld < cols) throw new IllegalArgumentException(what + ": leading dimension " + ld + " < columns " + cols);
        if (off < 0) throw new IllegalArgumentException(what + ": negative offset " + off);
        if (rows == 0 || cols == 0) return;
        long lastFloat = off + (long) (rows - 1) * ld + cols; // exclusive
        if (lastFloat * 4 > s.byteSize()) {
            throw new IndexOutOfBoundsException(what + ": " + rows + "×" + cols + " (ld " + ld + ", offset " + off
                    + ") needs " + lastFloat * 4 + " bytes, segment has " + s.byteSize());
        }
    }
}
