package io.moe4j.kernel.row;

import java.lang.foreign.MemorySegment;

/**
 * Argument validation shared by the {@link RowOps} implementations: lengths, offsets, and that every operand lies
 * inside its segment or array. Each check is O(1) except {@link #rowIndices}, which is O(count) against the
 * O(count·d) work of the gather/scatter it guards. Failures throw {@link IllegalArgumentException} naming the
 * operand, so a caller's indexing bug reads as such instead of as a bare out-of-bounds access deep in a loop.
 *
 * <p>Non-goal: detecting illegal aliasing (overlapping but unequal operands); the methods document what may alias.
 */
final class RowChecks {
    private RowChecks() {}

    static void length(String what, int n) {
        if (n < 0) throw new IllegalArgumentException(what + " must be >= 0, got " + n);
    }

    static void positive(String what, int n) {
        if (n < 1) throw new IllegalArgumentException(what + " must be >= 1, got " + n);
    }

    /** {@code n} floats from float offset {@code off} lie inside {@code s}. */
    static void fits(String what, MemorySegment s, long off, long n) {
        if (s == null) throw new IllegalArgumentException(what + " is null");
        if (off < 0) throw new IllegalArgumentException(what + ": negative offset " + off);
        if ((off + n) * Float.BYTES > s.byteSize()) {
            throw new IllegalArgumentException(what + ": " + n + " floats at offset " + off + " need "
                    + (off + n) * Float.BYTES + " bytes, segment has " + s.byteSize());
        }
    }

    /** {@code rows} rows of {@code d} floats, {@code ld} floats apart, from float offset {@code off} fit in {@code s}. */
    static void fitsRows(String what, MemorySegment s, long off, long rows, int d, int ld) {
        if (ld < d) throw new IllegalArgumentException(what + ": leading dimension " + ld + " < row length " + d);
        fits(what, s, off, rows == 0 || d == 0 ? 0 : (rows - 1) * ld + d);
    }

    static void fits(String what, float[] a, int off, int n) {
        if (a == null) throw new IllegalArgumentException(what + " is null");
        if (off < 0 || off > a.length - n) {
            throw new IllegalArgumentException(what + ": " + n + " elements at offset " + off + " exceed length " + a.length);
        }
    }

    static void fits(String what, int[] a, int off, int n) {
        if (a == null) throw new IllegalArgumentException(what + " is null");
        if (off < 0 || off > a.length - n) {
            throw new IllegalArgumentException(what + ": " + n + " elements at offset " + off + " exceed length " + a.length);
        }
    }

    /**
     * {@code rows[rowsOff..rowsOff+count)} are valid row indices of the matrix at {@code (s, off, ld)} with rows of
     * {@code d} floats.
     */
    static void rowIndices(String what, int[] rows, int rowsOff, int count, MemorySegment s, long off, int d, int ld) {
        fits("rows", rows, rowsOff, count);
        if (ld < d) throw new IllegalArgumentException(what + ": leading dimension " + ld + " < row length " + d);
        int max = -1;
        for (int i = 0; i < count; i++) {
            int r = rows[rowsOff + i];
            if (r < 0) throw new IllegalArgumentException("rows[" + (rowsOff + i) + "] = " + r + " is negative");
            max = Math.max(max, r);
        }
        if (max >= 0) fitsRows(what + " (row " + max + ")", s, off, max + 1L, d, ld);
    }

    // ---------------------------------------------------------------- per-method checks shared by both implementations

    /** n ≥ 0 floats at each named (segment, offset) operand. */
    static void vectors(int n, String a, MemorySegment as, long aOff, String b, MemorySegment bs, long bOff) {
        length("n", n);
        fits(a, as, aOff, n);
        fits(b, bs, bOff, n);
    }

    static void vectors(int n, String a, MemorySegment as, long aOff, String b, MemorySegment bs, long bOff,
                        String c, MemorySegment cs, long cOff) {
        vectors(n, a, as, aOff, b, bs, bOff);
        fits(c, cs, cOff, n);
    }

    static void vectors(int n, String a, MemorySegment as, long aOff, String b, MemorySegment bs, long bOff,
                        String c, MemorySegment cs, long cOff, String d, MemorySegment ds, long dOff) {
        vectors(n, a, as, aOff, b, bs, bOff, c, cs, cOff);
        fits(d, ds, dOff, n);
    }

    static void vectors(int n, String a, MemorySegment as, long aOff, String b, MemorySegment bs, long bOff,
                        String c, MemorySegment cs, long cOff, String d, MemorySegment ds, long dOff,
                        String e, MemorySegment es, long eOff) {
        vectors(n, a, as, aOff, b, bs, bOff, c, cs, cOff, d, ds, dOff);
        fits(e, es, eOff, n);
    }

    static void rope(int nHeads, int headDim, int rotDim, MemorySegment x, long xOff, float[] cos, float[] sin, int tab) {
        length("nHeads", nHeads);
        length("headDim", headDim);
        if (rotDim < 0 || rotDim > headDim || (rotDim & 1) != 0) {
            throw new IllegalArgumentException("rotDim must be even and in [0, headDim = " + headDim + "], got " + rotDim);
        }
        fits("x", x, xOff, (long) nHeads * headDim);
        fits("cos", cos, tab, rotDim / 2);
        fits("sin", sin, tab, rotDim / 2);
    }

    static void topK(int n, int k, MemorySegment x, long xOff, int[] idx, int idxOff, float[] vals, int valsOff) {
        length("n", n);
        if (k < 0 || k > n) throw new IllegalArgumentException("k must be in [0, n = " + n + "], got " + k);
        fits("x", x, xOff, n);
        fits("idx", idx, idxOff, k);
        if (vals != null) fits("vals", vals, valsOff, k);
    }

    /** Shared by gather, scatter-add and its backward: count rows of d floats indexed by rows[]. */
    static void indexedRows(int count, int d, String indexedName, MemorySegment indexed, long indexedOff, int ldIndexed,
                            int[] rows, int rowsOff, String denseName, MemorySegment dense, long denseOff, int ldDense) {
        length("count", count);
        length("d", d);
        rowIndices(indexedName, rows, rowsOff, count, indexed, indexedOff, d, ldIndexed);
        fitsRows(denseName, dense, denseOff, count, d, ldDense);
    }

    static void scatterAdd(int count, int d, MemorySegment src, long srcOff, int ldSrc, int[] rows, int rowsOff,
                           float[] weights, int weightsOff, MemorySegment dst, long dstOff, int ldDst) {
        indexedRows(count, d, "dst", dst, dstOff, ldDst, rows, rowsOff, "src", src, srcOff, ldSrc);
        if (weights != null) fits("weights", weights, weightsOff, count);
    }

    static void scatterAddBackward(int count, int d, MemorySegment dDst, long dDstOff, int ldDDst, int[] rows, int rowsOff,
                                   float[] weights, int weightsOff, MemorySegment src, long srcOff, int ldSrc,
                                   MemorySegment dSrc, long dSrcOff, int ldDSrc, float[] dWeights, int dWeightsOff) {
        indexedRows(count, d, "dDst", dDst, dDstOff, ldDDst, rows, rowsOff, "dSrc", dSrc, dSrcOff, ldDSrc);
        if (weights != null) fits("weights", weights, weightsOff, count);
        if (dWeights != null) {
            fits("dWeights", dWeights, dWeightsOff, count);
            fitsRows("src", src, srcOff, count, d, ldSrc);
        }
    }
}
