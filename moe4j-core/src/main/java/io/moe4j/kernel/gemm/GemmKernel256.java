package io.moe4j.kernel.gemm;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * 4×16 microkernel for 256-bit vectors (AVX2: 16 ymm registers): 8 accumulators, 2 B vectors, 1 broadcast.
 *
 * <p>Why 4×16: measured with C2 restricted to AVX2 ({@code -XX:UseAVX=2}, 16 registers), in-cache, kc = 256:
 * 4×16 ≈ 90 GFLOP/s, 6×16 ≈ 47, 5×16 ≈ 40, 3×32 ≈ 47 — the larger tiles need every register and C2 spills
 * accumulators to the stack, halving the speed (the same was seen on Zen3).
 */
final class GemmKernel256 extends GemmKernel {
    // A static final species is what lets C2 turn the vector calls into single instructions; an instance field would not.
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_256;
    private static final ByteOrder NATIVE = ByteOrder.nativeOrder();
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
    static final int MR = 4, NR = 16;

    GemmKernel256() { super(MR, NR, S); }

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
            FloatVector b1 = FloatVector.fromArray(S, b, bi + 8);
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
        c01.add(FloatVector.fromMemorySegment(S, c, cOff + 32, NATIVE, addC)).intoMemorySegment(c, cOff + 32, NATIVE);
        c10.add(FloatVector.fromMemorySegment(S, c, cOff + ldc, NATIVE, addC)).intoMemorySegment(c, cOff + ldc, NATIVE);
        c11.add(FloatVector.fromMemorySegment(S, c, cOff + ldc + 32, NATIVE, addC)).intoMemorySegment(c, cOff + ldc + 32, NATIVE);
        c20.add(FloatVector.fromMemorySegment(S, c, cOff + 2 * ldc, NATIVE, addC)).intoMemorySegment(c, cOff + 2 * ldc, NATIVE);
        c21.add(FloatVector.fromMemorySegment(S, c, cOff + 2 * ldc + 32, NATIVE, addC)).intoMemorySegment(c, cOff + 2 * ldc + 32, NATIVE);
        c30.add(FloatVector.fromMemorySegment(S, c, cOff + 3 * ldc, NATIVE, addC)).intoMemorySegment(c, cOff + 3 * ldc, NATIVE);
        c31.add(FloatVector.fromMemorySegment(S, c, cOff + 3 * ldc + 32, NATIVE, addC)).intoMemorySegment(c, cOff + 3 * ldc + 32, NATIVE);
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
                FloatVector.fromMemorySegment(S, src, off + 32, NATIVE).intoArray(dst, o + 8);
            }
        }
    }

    // Interleave indices for selectFrom(a, b): ZIP_LO = a0 b0 a1 b1 ..., ZIP_HI = the upper halves likewise.
    private static final float[] ZIP_LO = {0, 8, 1, 9, 2, 10, 3, 11};
    private static final float[] ZIP_HI = {4, 12, 5, 13, 6, 14, 7, 15};

    @Override
    void packTransposed(MemorySegment src, long srcIndex, long ld, int kc, float[] dst, int d) {
        FloatVector zipLo = FloatVector.fromArray(S, ZIP_LO, 0), zipHi = FloatVector.fromArray(S, ZIP_HI, 0);
        for (int jb = 0; jb < NR; jb += 8) {
            long row = srcIndex + jb * ld;
            int p = 0;
            // 8x8 blocks: 8 row loads, 3 rounds of interleaving (row i with row i + 4) leave
            // the transpose, then 8 stores, one per step p. About 4x faster than element by element.
            for (; p + 8 <= kc; p += 8) {
                FloatVector x0_0 = FloatVector.fromMemorySegment(S, src, (row + 0 * ld + p) * 4, NATIVE);
                FloatVector x0_1 = FloatVector.fromMemorySegment(S, src, (row + 1 * ld + p) * 4, NATIVE);
                FloatVector x0_2 = FloatVector.fromMemorySegment(S, src, (row + 2 * ld + p) * 4, NATIVE);
                FloatVector x0_3 = FloatVector.fromMemorySegment(S, src, (row + 3 * ld + p) * 4, NATIVE);
                FloatVector x0_4 = FloatVector.fromMemorySegment(S, src, (row + 4 * ld + p) * 4, NATIVE);
                FloatVector x0_5 = FloatVector.fromMemorySegment(S, src, (row + 5 * ld + p) * 4, NATIVE);
                FloatVector x0_6 = FloatVector.fromMemorySegment(S, src, (row + 6 * ld + p) * 4, NATIVE);
                FloatVector x0_7 = FloatVector.fromMemorySegment(S, src, (row + 7 * ld + p) * 4, NATIVE);
                FloatVector x1_0 = zipLo.selectFrom(x0_0, x0_4), x1_1 = zipHi.selectFrom(x0_0, x0_4);
                FloatVector x1_2 = zipLo.selectFrom(x0_1, x0_5), x1_3 = zipHi.selectFrom(x0_1, x0_5);
                FloatVector x1_4 = zipLo.selectFrom(x0_2, x0_6), x1_5 = zipHi.selectFrom(x0_2, x0_6);
                FloatVector x1_6 = zipLo.selectFrom(x0_3, x0_7), x1_7 = zipHi.selectFrom(x0_3, x0_7);
                FloatVector x2_0 = zipLo.selectFrom(x1_0, x1_4), x2_1 = zipHi.selectFrom(x1_0, x1_4);
                FloatVector x2_2 = zipLo.selectFrom(x1_1, x1_5), x2_3 = zipHi.selectFrom(x1_1, x1_5);
                FloatVector x2_4 = zipLo.selectFrom(x1_2, x1_6), x2_5 = zipHi.selectFrom(x1_2, x1_6);
                FloatVector x2_6 = zipLo.selectFrom(x1_3, x1_7), x2_7 = zipHi.selectFrom(x1_3, x1_7);
                FloatVector x3_0 = zipLo.selectFrom(x2_0, x2_4), x3_1 = zipHi.selectFrom(x2_0, x2_4);
                FloatVector x3_2 = zipLo.selectFrom(x2_1, x2_5), x3_3 = zipHi.selectFrom(x2_1, x2_5);
                FloatVector x3_4 = zipLo.selectFrom(x2_2, x2_6), x3_5 = zipHi.selectFrom(x2_2, x2_6);
                FloatVector x3_6 = zipLo.selectFrom(x2_3, x2_7), x3_7 = zipHi.selectFrom(x2_3, x2_7);
                int o = d + p * NR + jb;
                x3_0.intoArray(dst, o);
                x3_1.intoArray(dst, o + 1 * NR);
                x3_2.intoArray(dst, o + 2 * NR);
                x3_3.intoArray(dst, o + 3 * NR);
                x3_4.intoArray(dst, o + 4 * NR);
                x3_5.intoArray(dst, o + 5 * NR);
                x3_6.intoArray(dst, o + 6 * NR);
                x3_7.intoArray(dst, o + 7 * NR);
            }
            for (; p < kc; p++) {
                for (int r = 0; r < 8; r++) dst[d + p * NR + jb + r] = src.getAtIndex(F, row + r * ld + p);
            }
        }
    }
}
