package io.moe4j.kernel.gemm;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * 8×32 microkernel for 512-bit vectors (AVX-512: 32 zmm registers): 16 accumulators, 2 B vectors, 1 broadcast.
 *
 * <p>Why 8×32: measured in-cache on Zen4 with C2 (kc = 256, GFLOP/s, 1 thread, best of 4): 8×32 ≈ 112,
 * 12×32 ≈ 110, 14×32 ≈ 110, 4×64 ≈ 110, 6×64 ≈ 95, 8×48 ≈ 95. The 24-accumulator shapes gain nothing here, and
 * MR = 8 divides the MoE token counts (multiples of 8) with no wasted padding rows.
 */
final class GemmKernel512 extends GemmKernel {
    // A static final species is what lets C2 turn the vector calls into single instructions; an instance field would not.
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_512;
    private static final ByteOrder NATIVE = ByteOrder.nativeOrder();
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;
    static final int MR = 8, NR = 32;

    GemmKernel512() { super(MR, NR, S); }

    @Override
    void multiply(int kc, float[] a, int ai, float[] b, int bi, MemorySegment c, long cOff, long ldc, boolean add) {
        FloatVector c00 = FloatVector.zero(S), c01 = FloatVector.zero(S);
        FloatVector c10 = FloatVector.zero(S), c11 = FloatVector.zero(S);
        FloatVector c20 = FloatVector.zero(S), c21 = FloatVector.zero(S);
        FloatVector c30 = FloatVector.zero(S), c31 = FloatVector.zero(S);
        FloatVector c40 = FloatVector.zero(S), c41 = FloatVector.zero(S);
        FloatVector c50 = FloatVector.zero(S), c51 = FloatVector.zero(S);
        FloatVector c60 = FloatVector.zero(S), c61 = FloatVector.zero(S);
        FloatVector c70 = FloatVector.zero(S), c71 = FloatVector.zero(S);
        // One step of K: NR values of B times MR broadcast values of A into MR x NR accumulators (registers).
        // ai and bi advance linearly, so C2 proves the array indices in range once, before the loop.
        for (int p = 0; p < kc; p++, ai += MR, bi += NR) {
            FloatVector b0 = FloatVector.fromArray(S, b, bi);
            FloatVector b1 = FloatVector.fromArray(S, b, bi + 16);
            FloatVector a0 = FloatVector.broadcast(S, a[ai]);
            c00 = b0.fma(a0, c00); c01 = b1.fma(a0, c01);
            FloatVector a1 = FloatVector.broadcast(S, a[ai + 1]);
            c10 = b0.fma(a1, c10); c11 = b1.fma(a1, c11);
            FloatVector a2 = FloatVector.broadcast(S, a[ai + 2]);
            c20 = b0.fma(a2, c20); c21 = b1.fma(a2, c21);
            FloatVector a3 = FloatVector.broadcast(S, a[ai + 3]);
            c30 = b0.fma(a3, c30); c31 = b1.fma(a3, c31);
            FloatVector a4 = FloatVector.broadcast(S, a[ai + 4]);
            c40 = b0.fma(a4, c40); c41 = b1.fma(a4, c41);
            FloatVector a5 = FloatVector.broadcast(S, a[ai + 5]);
            c50 = b0.fma(a5, c50); c51 = b1.fma(a5, c51);
            FloatVector a6 = FloatVector.broadcast(S, a[ai + 6]);
            c60 = b0.fma(a6, c60); c61 = b1.fma(a6, c61);
            FloatVector a7 = FloatVector.broadcast(S, a[ai + 7]);
            c70 = b0.fma(a7, c70); c71 = b1.fma(a7, c71);
        }
        // Adding C through a masked load (all lanes or none) rather than branching: a vector value merged from two
        // branches makes C2 box it (measured 3x slower), and one store sequence instead of two keeps the method
        // small enough for C1's profiling tier, without which C2 may never be reached. acc + 0 and C + acc round
        // exactly like SimdGemm's edge path.
        VectorMask<Float> addC = VectorMask.fromLong(S, add ? -1L : 0L);
        c00.add(FloatVector.fromMemorySegment(S, c, cOff, NATIVE, addC)).intoMemorySegment(c, cOff, NATIVE);
        c01.add(FloatVector.fromMemorySegment(S, c, cOff + 64, NATIVE, addC)).intoMemorySegment(c, cOff + 64, NATIVE);
        c10.add(FloatVector.fromMemorySegment(S, c, cOff + ldc, NATIVE, addC)).intoMemorySegment(c, cOff + ldc, NATIVE);
        c11.add(FloatVector.fromMemorySegment(S, c, cOff + ldc + 64, NATIVE, addC)).intoMemorySegment(c, cOff + ldc + 64, NATIVE);
        c20.add(FloatVector.fromMemorySegment(S, c, cOff + 2 * ldc, NATIVE, addC)).intoMemorySegment(c, cOff + 2 * ldc, NATIVE);
        c21.add(FloatVector.fromMemorySegment(S, c, cOff + 2 * ldc + 64, NATIVE, addC)).intoMemorySegment(c, cOff + 2 * ldc + 64, NATIVE);
        c30.add(FloatVector.fromMemorySegment(S, c, cOff + 3 * ldc, NATIVE, addC)).intoMemorySegment(c, cOff + 3 * ldc, NATIVE);
        c31.add(FloatVector.fromMemorySegment(S, c, cOff + 3 * ldc + 64, NATIVE, addC)).intoMemorySegment(c, cOff + 3 * ldc + 64, NATIVE);
        c40.add(FloatVector.fromMemorySegment(S, c, cOff + 4 * ldc, NATIVE, addC)).intoMemorySegment(c, cOff + 4 * ldc, NATIVE);
        c41.add(FloatVector.fromMemorySegment(S, c, cOff + 4 * ldc + 64, NATIVE, addC)).intoMemorySegment(c, cOff + 4 * ldc + 64, NATIVE);
        c50.add(FloatVector.fromMemorySegment(S, c, cOff + 5 * ldc, NATIVE, addC)).intoMemorySegment(c, cOff + 5 * ldc, NATIVE);
        c51.add(FloatVector.fromMemorySegment(S, c, cOff + 5 * ldc + 64, NATIVE, addC)).intoMemorySegment(c, cOff + 5 * ldc + 64, NATIVE);
        c60.add(FloatVector.fromMemorySegment(S, c, cOff + 6 * ldc, NATIVE, addC)).intoMemorySegment(c, cOff + 6 * ldc, NATIVE);
        c61.add(FloatVector.fromMemorySegment(S, c, cOff + 6 * ldc + 64, NATIVE, addC)).intoMemorySegment(c, cOff + 6 * ldc + 64, NATIVE);
        c70.add(FloatVector.fromMemorySegment(S, c, cOff + 7 * ldc, NATIVE, addC)).intoMemorySegment(c, cOff + 7 * ldc, NATIVE);
        c71.add(FloatVector.fromMemorySegment(S, c, cOff + 7 * ldc + 64, NATIVE, addC)).intoMemorySegment(c, cOff + 7 * ldc + 64, NATIVE);
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
                FloatVector.fromMemorySegment(S, src, off + 64, NATIVE).intoArray(dst, o + 16);
            }
        }
    }

    // Interleave indices for selectFrom(a, b): ZIP_LO = a0 b0 a1 b1 ..., ZIP_HI = the upper halves likewise.
    private static final float[] ZIP_LO = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23};
    private static final float[] ZIP_HI = {8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};

    private static final VectorSpecies<Float> HALF = FloatVector.SPECIES_256; // MR = 8 floats

    @Override
    void packARows(MemorySegment src, long srcIndex, long ld, int kb, float[] dst, int d) {
        FloatVector zipLo = FloatVector.fromArray(S, ZIP_LO, 0), zipHi = FloatVector.fromArray(S, ZIP_HI, 0);
        int p = 0;
        // 8 rows x 16 steps: 3 rounds of interleaving (row i with row i + 4) leave vector q holding steps 2q and
        // 2q + 1 of all 8 rows, i.e. 128 consecutive floats of the packed panel.
        for (; p + 16 <= kb; p += 16) {
            FloatVector x0 = FloatVector.fromMemorySegment(S, src, (srcIndex + p) * 4, NATIVE);
            FloatVector x1 = FloatVector.fromMemorySegment(S, src, (srcIndex + ld + p) * 4, NATIVE);
            FloatVector x2 = FloatVector.fromMemorySegment(S, src, (srcIndex + 2 * ld + p) * 4, NATIVE);
            FloatVector x3 = FloatVector.fromMemorySegment(S, src, (srcIndex + 3 * ld + p) * 4, NATIVE);
            FloatVector x4 = FloatVector.fromMemorySegment(S, src, (srcIndex + 4 * ld + p) * 4, NATIVE);
            FloatVector x5 = FloatVector.fromMemorySegment(S, src, (srcIndex + 5 * ld + p) * 4, NATIVE);
            FloatVector x6 = FloatVector.fromMemorySegment(S, src, (srcIndex + 6 * ld + p) * 4, NATIVE);
            FloatVector x7 = FloatVector.fromMemorySegment(S, src, (srcIndex + 7 * ld + p) * 4, NATIVE);
            FloatVector y0 = zipLo.selectFrom(x0, x4), y1 = zipHi.selectFrom(x0, x4);
            FloatVector y2 = zipLo.selectFrom(x1, x5), y3 = zipHi.selectFrom(x1, x5);
            FloatVector y4 = zipLo.selectFrom(x2, x6), y5 = zipHi.selectFrom(x2, x6);
            FloatVector y6 = zipLo.selectFrom(x3, x7), y7 = zipHi.selectFrom(x3, x7);
            FloatVector z0 = zipLo.selectFrom(y0, y4), z1 = zipHi.selectFrom(y0, y4);
            FloatVector z2 = zipLo.selectFrom(y1, y5), z3 = zipHi.selectFrom(y1, y5);
            FloatVector z4 = zipLo.selectFrom(y2, y6), z5 = zipHi.selectFrom(y2, y6);
            FloatVector z6 = zipLo.selectFrom(y3, y7), z7 = zipHi.selectFrom(y3, y7);
            int o = d + p * MR;
            zipLo.selectFrom(z0, z4).intoArray(dst, o);
            zipHi.selectFrom(z0, z4).intoArray(dst, o + 16);
            zipLo.selectFrom(z1, z5).intoArray(dst, o + 32);
            zipHi.selectFrom(z1, z5).intoArray(dst, o + 48);
            zipLo.selectFrom(z2, z6).intoArray(dst, o + 64);
            zipHi.selectFrom(z2, z6).intoArray(dst, o + 80);
            zipLo.selectFrom(z3, z7).intoArray(dst, o + 96);
            zipHi.selectFrom(z3, z7).intoArray(dst, o + 112);
        }
        for (; p < kb; p++) {
            for (int r = 0; r < MR; r++) dst[d + p * MR + r] = src.getAtIndex(F, srcIndex + r * ld + p);
        }
    }

    @Override
    void packAColumns(MemorySegment src, long srcIndex, long ld, int kb, int panels, float[] dst, int d, int stride) {
        for (int p = 0; p < kb; p++, d += MR) {
            long off = (srcIndex + p * ld) * 4;
            for (int ip = 0, o = d; ip < panels; ip++, o += stride, off += MR * 4) {
                FloatVector.fromMemorySegment(HALF, src, off, NATIVE).intoArray(dst, o);
            }
        }
    }

    @Override
    void packTransposed(MemorySegment src, long srcIndex, long ld, int kc, float[] dst, int d) {
        FloatVector zipLo = FloatVector.fromArray(S, ZIP_LO, 0), zipHi = FloatVector.fromArray(S, ZIP_HI, 0);
        for (int jb = 0; jb < NR; jb += 16) {
            long row = srcIndex + jb * ld;
            int p = 0;
            // 16x16 blocks: 16 row loads, 4 rounds of interleaving (row i with row i + 8) leave
            // the transpose, then 16 stores, one per step p. About 4x faster than element by element.
            for (; p + 16 <= kc; p += 16) {
                FloatVector x0_0 = FloatVector.fromMemorySegment(S, src, (row + 0 * ld + p) * 4, NATIVE);
                FloatVector x0_1 = FloatVector.fromMemorySegment(S, src, (row + 1 * ld + p) * 4, NATIVE);
                FloatVector x0_2 = FloatVector.fromMemorySegment(S, src, (row + 2 * ld + p) * 4, NATIVE);
                FloatVector x0_3 = FloatVector.fromMemorySegment(S, src, (row + 3 * ld + p) * 4, NATIVE);
                FloatVector x0_4 = FloatVector.fromMemorySegment(S, src, (row + 4 * ld + p) * 4, NATIVE);
                FloatVector x0_5 = FloatVector.fromMemorySegment(S, src, (row + 5 * ld + p) * 4, NATIVE);
                FloatVector x0_6 = FloatVector.fromMemorySegment(S, src, (row + 6 * ld + p) * 4, NATIVE);
                FloatVector x0_7 = FloatVector.fromMemorySegment(S, src, (row + 7 * ld + p) * 4, NATIVE);
                FloatVector x0_8 = FloatVector.fromMemorySegment(S, src, (row + 8 * ld + p) * 4, NATIVE);
                FloatVector x0_9 = FloatVector.fromMemorySegment(S, src, (row + 9 * ld + p) * 4, NATIVE);
                FloatVector x0_10 = FloatVector.fromMemorySegment(S, src, (row + 10 * ld + p) * 4, NATIVE);
                FloatVector x0_11 = FloatVector.fromMemorySegment(S, src, (row + 11 * ld + p) * 4, NATIVE);
                FloatVector x0_12 = FloatVector.fromMemorySegment(S, src, (row + 12 * ld + p) * 4, NATIVE);
                FloatVector x0_13 = FloatVector.fromMemorySegment(S, src, (row + 13 * ld + p) * 4, NATIVE);
                FloatVector x0_14 = FloatVector.fromMemorySegment(S, src, (row + 14 * ld + p) * 4, NATIVE);
                FloatVector x0_15 = FloatVector.fromMemorySegment(S, src, (row + 15 * ld + p) * 4, NATIVE);
                FloatVector x1_0 = zipLo.selectFrom(x0_0, x0_8), x1_1 = zipHi.selectFrom(x0_0, x0_8);
                FloatVector x1_2 = zipLo.selectFrom(x0_1, x0_9), x1_3 = zipHi.selectFrom(x0_1, x0_9);
                FloatVector x1_4 = zipLo.selectFrom(x0_2, x0_10), x1_5 = zipHi.selectFrom(x0_2, x0_10);
                FloatVector x1_6 = zipLo.selectFrom(x0_3, x0_11), x1_7 = zipHi.selectFrom(x0_3, x0_11);
                FloatVector x1_8 = zipLo.selectFrom(x0_4, x0_12), x1_9 = zipHi.selectFrom(x0_4, x0_12);
                FloatVector x1_10 = zipLo.selectFrom(x0_5, x0_13), x1_11 = zipHi.selectFrom(x0_5, x0_13);
                FloatVector x1_12 = zipLo.selectFrom(x0_6, x0_14), x1_13 = zipHi.selectFrom(x0_6, x0_14);
                FloatVector x1_14 = zipLo.selectFrom(x0_7, x0_15), x1_15 = zipHi.selectFrom(x0_7, x0_15);
                FloatVector x2_0 = zipLo.selectFrom(x1_0, x1_8), x2_1 = zipHi.selectFrom(x1_0, x1_8);
                FloatVector x2_2 = zipLo.selectFrom(x1_1, x1_9), x2_3 = zipHi.selectFrom(x1_1, x1_9);
                FloatVector x2_4 = zipLo.selectFrom(x1_2, x1_10), x2_5 = zipHi.selectFrom(x1_2, x1_10);
                FloatVector x2_6 = zipLo.selectFrom(x1_3, x1_11), x2_7 = zipHi.selectFrom(x1_3, x1_11);
                FloatVector x2_8 = zipLo.selectFrom(x1_4, x1_12), x2_9 = zipHi.selectFrom(x1_4, x1_12);
                FloatVector x2_10 = zipLo.selectFrom(x1_5, x1_13), x2_11 = zipHi.selectFrom(x1_5, x1_13);
                FloatVector x2_12 = zipLo.selectFrom(x1_6, x1_14), x2_13 = zipHi.selectFrom(x1_6, x1_14);
                FloatVector x2_14 = zipLo.selectFrom(x1_7, x1_15), x2_15 = zipHi.selectFrom(x1_7, x1_15);
                FloatVector x3_0 = zipLo.selectFrom(x2_0, x2_8), x3_1 = zipHi.selectFrom(x2_0, x2_8);
                FloatVector x3_2 = zipLo.selectFrom(x2_1, x2_9), x3_3 = zipHi.selectFrom(x2_1, x2_9);
                FloatVector x3_4 = zipLo.selectFrom(x2_2, x2_10), x3_5 = zipHi.selectFrom(x2_2, x2_10);
                FloatVector x3_6 = zipLo.selectFrom(x2_3, x2_11), x3_7 = zipHi.selectFrom(x2_3, x2_11);
                FloatVector x3_8 = zipLo.selectFrom(x2_4, x2_12), x3_9 = zipHi.selectFrom(x2_4, x2_12);
                FloatVector x3_10 = zipLo.selectFrom(x2_5, x2_13), x3_11 = zipHi.selectFrom(x2_5, x2_13);
                FloatVector x3_12 = zipLo.selectFrom(x2_6, x2_14), x3_13 = zipHi.selectFrom(x2_6, x2_14);
                FloatVector x3_14 = zipLo.selectFrom(x2_7, x2_15), x3_15 = zipHi.selectFrom(x2_7, x2_15);
                FloatVector x4_0 = zipLo.selectFrom(x3_0, x3_8), x4_1 = zipHi.selectFrom(x3_0, x3_8);
                FloatVector x4_2 = zipLo.selectFrom(x3_1, x3_9), x4_3 = zipHi.selectFrom(x3_1, x3_9);
                FloatVector x4_4 = zipLo.selectFrom(x3_2, x3_10), x4_5 = zipHi.selectFrom(x3_2, x3_10);
                FloatVector x4_6 = zipLo.selectFrom(x3_3, x3_11), x4_7 = zipHi.selectFrom(x3_3, x3_11);
                FloatVector x4_8 = zipLo.selectFrom(x3_4, x3_12), x4_9 = zipHi.selectFrom(x3_4, x3_12);
                FloatVector x4_10 = zipLo.selectFrom(x3_5, x3_13), x4_11 = zipHi.selectFrom(x3_5, x3_13);
                FloatVector x4_12 = zipLo.selectFrom(x3_6, x3_14), x4_13 = zipHi.selectFrom(x3_6, x3_14);
                FloatVector x4_14 = zipLo.selectFrom(x3_7, x3_15), x4_15 = zipHi.selectFrom(x3_7, x3_15);
                int o = d + p * NR + jb;
                x4_0.intoArray(dst, o);
                x4_1.intoArray(dst, o + 1 * NR);
                x4_2.intoArray(dst, o + 2 * NR);
                x4_3.intoArray(dst, o + 3 * NR);
                x4_4.intoArray(dst, o + 4 * NR);
                x4_5.intoArray(dst, o + 5 * NR);
                x4_6.intoArray(dst, o + 6 * NR);
                x4_7.intoArray(dst, o + 7 * NR);
                x4_8.intoArray(dst, o + 8 * NR);
                x4_9.intoArray(dst, o + 9 * NR);
                x4_10.intoArray(dst, o + 10 * NR);
                x4_11.intoArray(dst, o + 11 * NR);
                x4_12.intoArray(dst, o + 12 * NR);
                x4_13.intoArray(dst, o + 13 * NR);
                x4_14.intoArray(dst, o + 14 * NR);
                x4_15.intoArray(dst, o + 15 * NR);
            }
            for (; p < kc; p++) {
                for (int r = 0; r < 16; r++) dst[d + p * NR + jb + r] = src.getAtIndex(F, row + r * ld + p);
            }
        }
    }
}
