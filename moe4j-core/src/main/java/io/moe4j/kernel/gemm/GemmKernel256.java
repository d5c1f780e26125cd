package io.moe4j.kernel.gemm;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
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
}
