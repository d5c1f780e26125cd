package io.moe4j.kernel.gemm;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * 4×8 microkernel for 128-bit vectors (SSE, NEON): the 256-bit shape scaled down, so it fits 16 registers too.
 * Not tuned; it exists so that the SIMD path runs wherever the Vector API does.
 */
final class GemmKernel128 extends GemmKernel {
    // A static final species is what lets C2 turn the vector calls into single instructions; an instance field would not.
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_128;
    private static final ByteOrder NATIVE = ByteOrder.nativeOrder();
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
    static final int MR = 4, NR = 8;

    GemmKernel128() { super(MR, NR, S); }

    @Override
    void multiply(int kc, float[] a, int ai, float[] b, int bi, MemorySegment c, long cOff, long ldc, boolean add) {
        FloatVector c00 = FloatVector.zero(S), c01 = FloatVector.zero(S);
        FloatVector c10 = FloatVector.zero(S), c11 = FloatVector.zero(S);
        FloatVector c20 = FloatVector.zero(S), c21 = FloatVector.zero(S);
        FloatVector c30 = FloatVector.zero(S), c31 = FloatVector.zero(S);
        // One step of K: NR values of B times MR broadcast values of A into MR x NR accumulators (registers).
        // ai and bi advance linearly, so C2 proves the array indices in range once, before the loop.
        for (int p = 0; p < kc; p++, ai += MR, bi += NR) {
            FloatVector b0 = FloatVector.fromArray(S, b, bi);
            FloatVector b1 = FloatVector.fromArray(S, b, bi + 4);
            FloatVector a0 = FloatVector.broadcast(S, a[ai]);
            c00 = b0.fma(a0, c00); c01 = b1.fma(a0, c01);
            FloatVector a1 = FloatVector.broadcast(S, a[ai + 1]);
            c10 = b0.fma(a1, c10); c11 = b1.fma(a1, c11);
            FloatVector a2 = FloatVector.broadcast(S, a[ai + 2]);
            c20 = b0.fma(a2, c20); c21 = b1.fma(a2, c21);
            FloatVector a3 = FloatVector.broadcast(S, a[ai + 3]);
            c30 = b0.fma(a3, c30); c31 = b1.fma(a3, c31);
        }
        // Adding C through a masked load (all lanes or none) rather than branching: a vector value merged from two
        // branches makes C2 box it (measured 3x slower), and one store sequence instead of two keeps the method
        // small enough for C1's profiling tier, without which C2 may never be reached. acc + 0 and C + acc round
        // exactly like SimdGemm's edge path.
        VectorMask<Float> addC = VectorMask.fromLong(S, add ? -1L : 0L);
        c00.add(FloatVector.fromMemorySegment(S, c, cOff, NATIVE, addC)).intoMemorySegment(c, cOff, NATIVE);
        c01.add(FloatVector.fromMemorySegment(S, c, cOff + 16, NATIVE, addC)).intoMemorySegment(c, cOff + 16, NATIVE);
        c10.add(FloatVector.fromMemorySegment(S, c, cOff + ldc, NATIVE, addC)).intoMemorySegment(c, cOff + ldc, NATIVE);
        c11.add(FloatVector.fromMemorySegment(S, c, cOff + ldc + 16, NATIVE, addC)).intoMemorySegment(c, cOff + ldc + 16, NATIVE);
        c20.add(FloatVector.fromMemorySegment(S, c, cOff + 2 * ldc, NATIVE, addC)).intoMemorySegment(c, cOff + 2 * ldc, NATIVE);
        c21.add(FloatVector.fromMemorySegment(S, c, cOff + 2 * ldc + 16, NATIVE, addC)).intoMemorySegment(c, cOff + 2 * ldc + 16, NATIVE);
        c30.add(FloatVector.fromMemorySegment(S, c, cOff + 3 * ldc, NATIVE, addC)).intoMemorySegment(c, cOff + 3 * ldc, NATIVE);
        c31.add(FloatVector.fromMemorySegment(S, c, cOff + 3 * ldc + 16, NATIVE, addC)).intoMemorySegment(c, cOff + 3 * ldc + 16, NATIVE);
    }

    @Override
    void packRuns(MemorySegment src, long srcIndex, long ld, int kc, int panels, float[] dst, int d) {
        // Row by row across all panels: one contiguous run of storage per step p (a 128-byte run per row, as
        // panel by panel reads, defeats the prefetcher when rows are 4 KB apart).
        int stride = NR * kc;
        for (int p = 0; p < kc; p++, d += NR) {
            long off = (srcIndex + p * ld) * 4;
            for (int jp = 0, o = d; jp < panels; jp++, o += stride, off += NR * 4) {
                FloatVector.fromMemorySegment(S, src, off, NATIVE).intoArray(dst, o);
                FloatVector.fromMemorySegment(S, src, off + 16, NATIVE).intoArray(dst, o + 4);
            }
        }
    }

    // Interleave indices for selectFrom(a, b): ZIP_LO = a0 b0 a1 b1 ..., ZIP_HI = the upper halves likewise.
    private static final float[] ZIP_LO = {0, 4, 1, 5};
    private static final float[] ZIP_HI = {2, 6, 3, 7};

    @Override
    void packTransposed(MemorySegment src, long srcIndex, long ld, int kc, float[] dst, int d) {
        FloatVector zipLo = FloatVector.fromArray(S, ZIP_LO, 0), zipHi = FloatVector.fromArray(S, ZIP_HI, 0);
        for (int jb = 0; jb < NR; jb += 4) {
            long row = srcIndex + jb * ld;
            int p = 0;
            // 4x4 blocks: 4 row loads, 2 rounds of interleaving (row i with row i + 2) leave
            // the transpose, then 4 stores, one per step p. About 4x faster than element by element.
            for (; p + 4 <= kc; p += 4) {
                FloatVector x0_0 = FloatVector.fromMemorySegment(S, src, (row + 0 * ld + p) * 4, NATIVE);
                FloatVector x0_1 = FloatVector.fromMemorySegment(S, src, (row + 1 * ld + p) * 4, NATIVE);
                FloatVector x0_2 = FloatVector.fromMemorySegment(S, src, (row + 2 * ld + p) * 4, NATIVE);
                FloatVector x0_3 = FloatVector.fromMemorySegment(S, src, (row + 3 * ld + p) * 4, NATIVE);
                FloatVector x1_0 = zipLo.selectFrom(x0_0, x0_2), x1_1 = zipHi.selectFrom(x0_0, x0_2);
                FloatVector x1_2 = zipLo.selectFrom(x0_1, x0_3), x1_3 = zipHi.selectFrom(x0_1, x0_3);
                FloatVector x2_0 = zipLo.selectFrom(x1_0, x1_2), x2_1 = zipHi.selectFrom(x1_0, x1_2);
                FloatVector x2_2 = zipLo.selectFrom(x1_1, x1_3), x2_3 = zipHi.selectFrom(x1_1, x1_3);
                int o = d + p * NR + jb;
                x2_0.intoArray(dst, o);
                x2_1.intoArray(dst, o + 1 * NR);
                x2_2.intoArray(dst, o + 2 * NR);
                x2_3.intoArray(dst, o + 3 * NR);
            }
            for (; p < kc; p++) {
                for (int r = 0; r < 4; r++) dst[d + p * NR + jb + r] = src.getAtIndex(F, row + r * ld + p);
            }
        }
    }
}
