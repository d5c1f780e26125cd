package io.moe4j.kernel.gemm;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
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
}
