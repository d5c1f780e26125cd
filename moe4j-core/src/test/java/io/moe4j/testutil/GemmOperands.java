package io.moe4j.testutil;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

/**
 * Operands for a GEMM test: A, B and C with offsets and leading dimensions larger than the widths, filled with
 * random values, plus a float64 reference product.
 */
public final class GemmOperands {
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;

    public final boolean transA, transB;
    public final int m, n, k;
    public final MemorySegment a, b, c;
    public final long aOff, bOff, cOff;
    public final int lda, ldb, ldc;
    private final float[] cInitial;

    /**
     * @param heap {@code true} for segments over {@code float[]}, {@code false} for native memory from {@code arena}
     * @param pad  extra floats per row and before the first element (0 for tight packing)
     */
    public GemmOperands(Arena arena, boolean heap, boolean transA, boolean transB, int m, int n, int k, int pad,
                        long seed) {
        this.transA = transA; this.transB = transB;
        this.m = m; this.n = n; this.k = k;
        Random rnd = new Random(seed);
        int aRows = transA ? k : m, aCols = transA ? m : k;
        int bRows = transB ? n : k, bCols = transB ? k : n;
        lda = aCols + pad; ldb = bCols + pad + (pad > 0 ? 1 : 0); ldc = n + 2 * pad;
        aOff = pad; bOff = 2L * pad; cOff = 3L * pad;
        a = fill(arena, heap, aOff, aRows, lda, rnd);
        b = fill(arena, heap, bOff, bRows, ldb, rnd);
        c = fill(arena, heap, cOff, m, ldc, rnd);
        cInitial = toArray(c);
    }

    private static MemorySegment fill(Arena arena, boolean heap, long off, int rows, int ld, Random rnd) {
        long count = off + (long) rows * ld;
        MemorySegment s = heap ? MemorySegment.ofArray(new float[(int) count]) : arena.allocate(Math.max(4, count * 4), 64);
        for (long i = 0; i < count; i++) s.setAtIndex(F, i, rnd.nextFloat() * 2 - 1);
        return s;
    }

    public float opA(int i, int p) { return a.getAtIndex(F, transA ? aOff + (long) p * lda + i : aOff + (long) i * lda + p); }

    public float opB(int p, int j) { return b.getAtIndex(F, transB ? bOff + (long) j * ldb + p : bOff + (long) p * ldb + j); }

    public float c(int i, int j) { return c.getAtIndex(F, cOff + (long) i * ldc + j); }

    /** C as it was before any GEMM ran. */
    public float cInitial(int i, int j) { return cInitial[(int) (cOff + (long) i * ldc + j)]; }

    /** The expected C in float64: op(A)·op(B), plus the initial C when accumulating. */
    public double expected(int i, int j, boolean accumulate) {
        double sum = accumulate ? cInitial(i, j) : 0;
        for (int p = 0; p < k; p++) sum += (double) opA(i, p) * opB(p, j);
        return sum;
    }

    /** Restores C (the whole segment, padding included) to its initial contents. */
    public void resetC() { MemorySegment.copy(cInitial, 0, c, F, 0, cInitial.length); }

    /** Every float of the C segment (padding included), to compare bit patterns or check nothing else moved. */
    public float[] cSnapshot() { return toArray(c); }

    private static float[] toArray(MemorySegment s) {
        float[] out = new float[(int) (s.byteSize() / 4)];
        MemorySegment.copy(s, F, 0, out, 0, out.length);
        return out;
    }
}
