package io.moe4j.kernel.quant;

import io.moe4j.tensor.quant.RowGroups;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * 512-bit kernels for the row-group layouts {@link io.moe4j.tensor.DType#Q8_0_R16} / {@code Q4_0_R16}
 * ({@link RowGroups}): 16 weight rows per float vector, one lane per row, so a kernel's accumulators are its output
 * rows and there is no horizontal sum.
 *
 * <pre>
 *   per block b (32 elements), per group of 16 rows:
 *     Q8_0: acc(16) = Σ_j float(q[j][0..16)) · x_j                    (x_j = activation quant j, as a float)
 *     Q4_0: acc(16) = Σ_j float(B_j)·x_j + float(B_j >>> 4)·(x_{j+16} − 16·x_j) − 8·Σ x
 *           (B_j = byte j: low nibble + 16·high nibble, so this is Σ (lo−8)·x_j + (hi−8)·x_{j+16}, no nibble mask)
 *     y(16) += acc · (d_w(16) · d_x)
 * </pre>
 * Every product and partial sum above is an integer below 2^24 (|q·x| ≤ 128·127 and 16 of them per accumulator;
 * Q4_0: ≤ 255·127 and 15·2159), so {@code acc} is the block's exact integer dot whatever the summation order, and
 * {@code y += acc·(d_w·d_x)} in block order is {@link ScalarQuantMatmul}'s {@code sum += sumi·(d_w·d_x)} — the
 * results are bit-identical to the scalar reference on the original Q8_0 / Q4_0 rows, for any N and any kernel
 * variant below. The activations come from {@link Activations} ({@code xr}, {@code xs}).
 *
 * <p>Each kernel is one flat method with no vector-typed helpers: C2 gives up inlining past
 * NodeCountInliningCutoff, and a vector crossing a call that is not inlined is boxed (see {@link SimdDots}).
 * Variants: two groups × one activation row (decode; the broadcasts are shared by 32 rows), one group × one, two or
 * four activation rows (the weight widening is shared by the rows).
 */
final class RowGroupDots {
    private RowGroupDots() {}

    /** True when the CPU's preferred float vector has 16 lanes: the only width these kernels are written for. */
    static final boolean SUPPORTED = FloatVector.SPECIES_PREFERRED.length() == 16;

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_512;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_512;
    private static final VectorSpecies<Byte> B = ByteVector.SPECIES_128;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final int Q8 = 576, Q4 = 320; // unit bytes (RowGroups)

    // ------------------------------------------------------------------------------------------------ Q8_0_R16

    /** Groups at {@code u0} and {@code u1} (each {@code nb} units) · activation row at {@code xo}: out[o..o+32). */
    static void q8Pair(MemorySegment w, long u0, long u1, int nb, float[] xr, int xo, float[] xd, int xdo, float[] out, int o) {
        FloatVector t0 = FloatVector.zero(F), t1 = t0;
        for (int b = 0; b < nb; b++) {
            long p = u0 + (long) Q8 * b + 64, q = u1 + (long) Q8 * b + 64;
            int xb = xo + 32 * b;
            FloatVector a0 = FloatVector.zero(F), a1 = a0, c0 = a0, c1 = a0;
            for (int j = 0; j < 32; j += 2) {
                FloatVector x0 = FloatVector.broadcast(F, xr[xb + j]), x1 = FloatVector.broadcast(F, xr[xb + j + 1]);
                a0 = ((FloatVector) ByteVector.fromMemorySegment(B, w, p + 16L * j, LE).convertShape(VectorOperators.B2F, F, 0)).fma(x0, a0);
                a1 = ((FloatVector) ByteVector.fromMemorySegment(B, w, p + 16L * j + 16, LE).convertShape(VectorOperators.B2F, F, 0)).fma(x1, a1);
                c0 = ((FloatVector) ByteVector.fromMemorySegment(B, w, q + 16L * j, LE).convertShape(VectorOperators.B2F, F, 0)).fma(x0, c0);
                c1 = ((FloatVector) ByteVector.fromMemorySegment(B, w, q + 16L * j + 16, LE).convertShape(VectorOperators.B2F, F, 0)).fma(x1, c1);
            }
            float dx = xd[xdo + b];
            t0 = t0.add(a0.add(a1).mul(FloatVector.fromMemorySegment(F, w, p - 64, LE).mul(dx)));
            t1 = t1.add(c0.add(c1).mul(FloatVector.fromMemorySegment(F, w, q - 64, LE).mul(dx)));
        }
        t0.intoArray(out, o);
        t1.intoArray(out, o + 16);
    }

    /** One group at {@code u} · activation row at {@code xo}: out[o..o+16). */
    static void q8One(MemorySegment w, long u, int nb, float[] xr, int xo, float[] xd, int xdo, float[] out, int o) {
        FloatVector t0 = FloatVector.zero(F);
        for (int b = 0; b < nb; b++) {
            long p = u + (long) Q8 * b + 64;
            int xb = xo + 32 * b;
            FloatVector a0 = FloatVector.zero(F), a1 = a0;
            for (int j = 0; j < 32; j += 2) {
                a0 = ((FloatVector) ByteVector.fromMemorySegment(B, w, p + 16L * j, LE).convertShape(VectorOperators.B2F, F, 0))
                        .fma(FloatVector.broadcast(F, xr[xb + j]), a0);
                a1 = ((FloatVector) ByteVector.fromMemorySegment(B, w, p + 16L * j + 16, LE).convertShape(VectorOperators.B2F, F, 0))
                        .fma(FloatVector.broadcast(F, xr[xb + j + 1]), a1);
            }
            t0 = t0.add(a0.add(a1).mul(FloatVector.fromMemorySegment(F, w, p - 64, LE).mul(xd[xdo + b])));
        }
        t0.intoArray(out, o);
    }

    /**
     * One group · two activation rows ({@code xo}, {@code xo + k}; scales {@code xdo}, {@code xdo + nb}):
     * out[o..o+16) and out[o+16..o+32).
     */
    static void q8Two(MemorySegment w, long u, int nb, int k, float[] xr, int xo, float[] xd, int xdo, float[] out, int o) {
        FloatVector t0 = FloatVector.zero(F), t1 = t0;
        for (int b = 0; b < nb; b++) {
            long p = u + (long) Q8 * b + 64;
            int xb = xo + 32 * b, yb = xb + k;
            FloatVector a0 = FloatVector.zero(F), a1 = a0, c0 = a0, c1 = a0;
            for (int j = 0; j < 32; j += 2) {
                FloatVector v0 = (FloatVector) ByteVector.fromMemorySegment(B, w, p + 16L * j, LE).convertShape(VectorOperators.B2F, F, 0);
                FloatVector v1 = (FloatVector) ByteVector.fromMemorySegment(B, w, p + 16L * j + 16, LE).convertShape(VectorOperators.B2F, F, 0);
                a0 = v0.fma(FloatVector.broadcast(F, xr[xb + j]), a0);
                a1 = v1.fma(FloatVector.broadcast(F, xr[xb + j + 1]), a1);
                c0 = v0.fma(FloatVector.broadcast(F, xr[yb + j]), c0);
                c1 = v1.fma(FloatVector.broadcast(F, xr[yb + j + 1]), c1);
            }
            FloatVector d = FloatVector.fromMemorySegment(F, w, p - 64, LE);
            t0 = t0.add(a0.add(a1).mul(d.mul(xd[xdo + b])));
            t1 = t1.add(c0.add(c1).mul(d.mul(xd[xdo + nb + b])));
        }
        t0.intoArray(out, o);
        t1.intoArray(out, o + 16);
    }

    /** One group · four activation rows ({@code xo + t·k}): out[o + 16t .. o + 16t + 16). */
    static void q8Four(MemorySegment w, long u, int nb, int k, float[] xr, int xo, float[] xd, int xdo, float[] out, int o) {
        FloatVector t0 = FloatVector.zero(F), t1 = t0, t2 = t0, t3 = t0;
        for (int b = 0; b < nb; b++) {
            long p = u + (long) Q8 * b + 64;
            int x0 = xo + 32 * b, x1 = x0 + k, x2 = x1 + k, x3 = x2 + k;
            FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
            for (int j = 0; j < 32; j++) {
                FloatVector v = (FloatVector) ByteVector.fromMemorySegment(B, w, p + 16L * j, LE).convertShape(VectorOperators.B2F, F, 0);
                a0 = v.fma(FloatVector.broadcast(F, xr[x0 + j]), a0);
                a1 = v.fma(FloatVector.broadcast(F, xr[x1 + j]), a1);
                a2 = v.fma(FloatVector.broadcast(F, xr[x2 + j]), a2);
                a3 = v.fma(FloatVector.broadcast(F, xr[x3 + j]), a3);
            }
            FloatVector d = FloatVector.fromMemorySegment(F, w, p - 64, LE);
            int db = xdo + b;
            t0 = t0.add(a0.mul(d.mul(xd[db])));
            t1 = t1.add(a1.mul(d.mul(xd[db + nb])));
            t2 = t2.add(a2.mul(d.mul(xd[db + 2 * nb])));
            t3 = t3.add(a3.mul(d.mul(xd[db + 3 * nb])));
        }
        t0.intoArray(out, o);
        t1.intoArray(out, o + 16);
        t2.intoArray(out, o + 32);
        t3.intoArray(out, o + 48);
    }

    // ------------------------------------------------------------------------------------------------ Q4_0_R16
    //
    // Activations in Activations' Q4 row-group form: per block, xr[0..16) = x_j, xr[16..32) = x_{j+16} − 16·x_j,
    // and xs[b] = 8·Σ_j x_j.

    /** As {@link #q8Pair} for Q4_0_R16. */
    static void q4Pair(MemorySegment w, long u0, long u1, int nb, float[] xr, int xo, float[] xd, float[] xs, int xdo,
                       float[] out, int o) {
        FloatVector t0 = FloatVector.zero(F), t1 = t0;
        for (int b = 0; b < nb; b++) {
            long p = u0 + (long) Q4 * b + 64, q = u1 + (long) Q4 * b + 64;
            int xb = xo + 32 * b;
            FloatVector a0 = FloatVector.zero(F), a1 = a0, c0 = a0, c1 = a0;
            for (int j = 0; j < 16; j++) {
                FloatVector xl = FloatVector.broadcast(F, xr[xb + j]), xh = FloatVector.broadcast(F, xr[xb + 16 + j]);
                IntVector v = (IntVector) ByteVector.fromMemorySegment(B, w, p + 16L * j, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                IntVector s = (IntVector) ByteVector.fromMemorySegment(B, w, q + 16L * j, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                a0 = ((FloatVector) v.convert(VectorOperators.I2F, 0)).fma(xl, a0);
                a1 = ((FloatVector) v.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0)).fma(xh, a1);
                c0 = ((FloatVector) s.convert(VectorOperators.I2F, 0)).fma(xl, c0);
                c1 = ((FloatVector) s.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0)).fma(xh, c1);
            }
            float dx = xd[xdo + b], off = xs[xdo + b];
            t0 = t0.add(a0.add(a1).sub(off).mul(FloatVector.fromMemorySegment(F, w, p - 64, LE).mul(dx)));
            t1 = t1.add(c0.add(c1).sub(off).mul(FloatVector.fromMemorySegment(F, w, q - 64, LE).mul(dx)));
        }
        t0.intoArray(out, o);
        t1.intoArray(out, o + 16);
    }

    /** As {@link #q8One} for Q4_0_R16. */
    static void q4One(MemorySegment w, long u, int nb, float[] xr, int xo, float[] xd, float[] xs, int xdo, float[] out, int o) {
        FloatVector t0 = FloatVector.zero(F);
        for (int b = 0; b < nb; b++) {
            long p = u + (long) Q4 * b + 64;
            int xb = xo + 32 * b;
            FloatVector a0 = FloatVector.zero(F), a1 = a0;
            for (int j = 0; j < 16; j++) {
                IntVector v = (IntVector) ByteVector.fromMemorySegment(B, w, p + 16L * j, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                a0 = ((FloatVector) v.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F, xr[xb + j]), a0);
                a1 = ((FloatVector) v.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0))
                        .fma(FloatVector.broadcast(F, xr[xb + 16 + j]), a1);
            }
            t0 = t0.add(a0.add(a1).sub(xs[xdo + b]).mul(FloatVector.fromMemorySegment(F, w, p - 64, LE).mul(xd[xdo + b])));
        }
        t0.intoArray(out, o);
    }

    /** As {@link #q8Two} for Q4_0_R16. */
    static void q4Two(MemorySegment w, long u, int nb, int k, float[] xr, int xo, float[] xd, float[] xs, int xdo,
                      float[] out, int o) {
        FloatVector t0 = FloatVector.zero(F), t1 = t0;
        for (int b = 0; b < nb; b++) {
            long p = u + (long) Q4 * b + 64;
            int xb = xo + 32 * b, yb = xb + k;
            FloatVector a0 = FloatVector.zero(F), a1 = a0, c0 = a0, c1 = a0;
            for (int j = 0; j < 16; j++) {
                IntVector v = (IntVector) ByteVector.fromMemorySegment(B, w, p + 16L * j, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                FloatVector lo = (FloatVector) v.convert(VectorOperators.I2F, 0);
                FloatVector hi = (FloatVector) v.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0);
                a0 = lo.fma(FloatVector.broadcast(F, xr[xb + j]), a0);
                a1 = hi.fma(FloatVector.broadcast(F, xr[xb + 16 + j]), a1);
                c0 = lo.fma(FloatVector.broadcast(F, xr[yb + j]), c0);
                c1 = hi.fma(FloatVector.broadcast(F, xr[yb + 16 + j]), c1);
            }
            FloatVector d = FloatVector.fromMemorySegment(F, w, p - 64, LE);
            int db = xdo + b;
            t0 = t0.add(a0.add(a1).sub(xs[db]).mul(d.mul(xd[db])));
            t1 = t1.add(c0.add(c1).sub(xs[db + nb]).mul(d.mul(xd[db + nb])));
        }
        t0.intoArray(out, o);
        t1.intoArray(out, o + 16);
    }

    /** As {@link #q8Four} for Q4_0_R16. */
    static void q4Four(MemorySegment w, long u, int nb, int k, float[] xr, int xo, float[] xd, float[] xs, int xdo,
                       float[] out, int o) {
        FloatVector t0 = FloatVector.zero(F), t1 = t0, t2 = t0, t3 = t0;
        for (int b = 0; b < nb; b++) {
            long p = u + (long) Q4 * b + 64;
            int x0 = xo + 32 * b, x1 = x0 + k, x2 = x1 + k, x3 = x2 + k;
            FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
            for (int j = 0; j < 16; j++) {
                IntVector v = (IntVector) ByteVector.fromMemorySegment(B, w, p + 16L * j, LE).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                FloatVector lo = (FloatVector) v.convert(VectorOperators.I2F, 0);
                FloatVector hi = (FloatVector) v.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0);
                a0 = hi.fma(FloatVector.broadcast(F, xr[x0 + 16 + j]), lo.fma(FloatVector.broadcast(F, xr[x0 + j]), a0));
                a1 = hi.fma(FloatVector.broadcast(F, xr[x1 + 16 + j]), lo.fma(FloatVector.broadcast(F, xr[x1 + j]), a1));
                a2 = hi.fma(FloatVector.broadcast(F, xr[x2 + 16 + j]), lo.fma(FloatVector.broadcast(F, xr[x2 + j]), a2));
                a3 = hi.fma(FloatVector.broadcast(F, xr[x3 + 16 + j]), lo.fma(FloatVector.broadcast(F, xr[x3 + j]), a3));
            }
            FloatVector d = FloatVector.fromMemorySegment(F, w, p - 64, LE);
            int db = xdo + b;
            t0 = t0.add(a0.sub(xs[db]).mul(d.mul(xd[db])));
            t1 = t1.add(a1.sub(xs[db + nb]).mul(d.mul(xd[db + nb])));
            t2 = t2.add(a2.sub(xs[db + 2 * nb]).mul(d.mul(xd[db + 2 * nb])));
            t3 = t3.add(a3.sub(xs[db + 3 * nb]).mul(d.mul(xd[db + 3 * nb])));
        }
        t0.intoArray(out, o);
        t1.intoArray(out, o + 16);
        t2.intoArray(out, o + 32);
        t3.intoArray(out, o + 48);
    }
}
