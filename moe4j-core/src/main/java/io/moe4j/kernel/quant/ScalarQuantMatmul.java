package io.moe4j.kernel.quant;

import io.moe4j.parallel.WorkerPool;
import io.moe4j.tensor.DType;
import io.moe4j.tensor.quant.Bf16;
import io.moe4j.tensor.quant.Fp16;
import io.moe4j.tensor.quant.RowGroups;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * The reference {@link QuantMatmul}: one plain loop per format, written to be read. It defines the arithmetic the
 * SIMD implementation must reproduce: activations converted as in {@link Activations}; for Q8_0 / Q4_0 weights
 * each block's integer dot is exact, then {@code sum += (float) sumi * (d_w * d_x)} in block order, exactly
 * ggml's scalar {@code ggml_vec_dot_q8_0_q8_0} / {@code ggml_vec_dot_q4_0_q8_0}; for float weights
 * {@code sum += w·x} in element order (products of two F16 or two BF16 values are exact in float); for Q4_K /
 * Q6_K weights (Q8_K activations) exactly ggml's {@code ggml_vec_dot_q4_K_q8_K_generic} /
 * {@code ggml_vec_dot_q6_K_q8_K_generic}: exact integer sums in eight lanes (lane = element mod 8), each lane
 * scaled by {@code d_w·d_x} into its own float accumulator per super-block, Q4_K's min term
 * {@code dmin_w·d_x·Σ bsums·m} subtracted from a running sum per super-block, the eight lanes added at the end.
 *
 * <p>Work is split over fixed chunks of output rows, so results do not depend on the thread count. The static
 * {@code dot*} methods are also the scalar tails of the SIMD kernels.
 *
 * <p>Non-goal: speed. This allocates a lambda per call; the SIMD path does not.
 */
public final class ScalarQuantMatmul implements QuantMatmul {
    private static final ValueLayout.OfShort SHORT_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt INT_LE = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int ROW_CHUNK = 16;

    private final ThreadLocal<Activations> scratch = ThreadLocal.withInitial(Activations::new);

    @Override
    public void matmul(WorkerPool pool, DType wType, MemorySegment w, long wOff, int rows, int k,
                       MemorySegment x, long xOff, int ldx, int n, MemorySegment y, long yOff, int ldy, boolean accumulate) {
        QuantChecks.check(wType, w, wOff, rows, k, x, xOff, ldx, n, y, yOff, ldy);
        if (rows == 0 || n == 0) return;
        Activations a = scratch.get();
        a.ensure(wType, n, k, pool.threads());
        pool.parallelFor(n, (i, worker) -> a.convertRow(worker, wType, false, 0, x, xOff, ldx, i, k));
        long rowBytes = wType.byteSize(k);
        int nb = k / wType.blockSize();
        pool.parallelRanges(rows, ROW_CHUNK, (from, to, worker) -> {
            for (int r = from; r < to; r++) {
                long wr = wOff + r * rowBytes;
                for (int i = 0; i < n; i++) {
                    float v = switch (wType) {
                        case F32 -> dotF32(w, wr, a.xf, i * k, k);
                        case F16 -> dotF16(w, wr, a.xf, i * k, k);
                        case BF16 -> dotBf16(w, wr, a.xf, i * k, k);
                        case Q8_0 -> dotQ8_0(w, wr, nb, a.xq, i * k, a.xd, i * nb);
                        case Q4_0 -> dotQ4_0(w, wr, nb, a.xq, i * k, a.xd, i * nb);
                        case Q8_0_R16, Q4_0_R16 -> dotRowGroup(wType, w, wOff, r, nb, a.xq, i * k, a.xd, i * nb);
                        case Q4_K -> dotQ4_K(w, wr, nb, a.xq, i * k, a.xd, i * nb, a.xb, i * k / 16);
                        case Q6_K -> dotQ6_K(w, wr, nb, a.xq, i * k, a.xd, i * nb, a.xb, i * k / 16);
                    };
                    long yAt = (yOff + (long) i * ldy + r) * 4;
                    if (accumulate) v += y.get(Activations.F32_LE, yAt);
                    y.set(Activations.F32_LE, yAt, v);
                }
            }
        });
    }

    /** Σ w[j]·x[xo+j] over {@code len} F32 weights at byte {@code off}. */
    static float dotF32(MemorySegment w, long off, float[] x, int xo, int len) {
        float sum = 0f;
        for (int j = 0; j < len; j++) sum += w.get(Activations.F32_LE, off + 4L * j) * x[xo + j];
        return sum;
    }

    /** Σ w[j]·x[xo+j] over {@code len} F16 weights at byte {@code off}. */
    static float dotF16(MemorySegment w, long off, float[] x, int xo, int len) {
        float sum = 0f;
        for (int j = 0; j < len; j++) sum += Fp16.decode(w.get(SHORT_LE, off + 2L * j)) * x[xo + j];
        return sum;
    }

    /** Σ w[j]·x[xo+j] over {@code len} BF16 weights at byte {@code off}. */
    static float dotBf16(MemorySegment w, long off, float[] x, int xo, int len) {
        float sum = 0f;
        for (int j = 0; j < len; j++) sum += Bf16.decode(w.get(SHORT_LE, off + 2L * j)) * x[xo + j];
        return sum;
    }

    /** {@code nb} Q8_0 weight blocks at byte {@code off} · Q8_0 activations ({@code xq}, scales {@code xd}). */
    static float dotQ8_0(MemorySegment w, long off, int nb, short[] xq, int xo, float[] xd, int xdo) {
        float sum = 0f;
        for (int b = 0; b < nb; b++) {
            long blk = off + 34L * b;
            int sumi = 0;
            for (int j = 0; j < 32; j++) sumi += w.get(ValueLayout.JAVA_BYTE, blk + 2 + j) * xq[xo + 32 * b + j];
            sum += sumi * (Fp16.decode(w.get(SHORT_LE, blk)) * xd[xdo + b]);
        }
        return sum;
    }

    /**
     * Row {@code row} of a row-group matrix ({@link RowGroups}) starting at byte {@code matOff} · Q8_0 activations:
     * the arithmetic of {@link #dotQ8_0} / {@link #dotQ4_0} on the row's original blocks (same bits).
     */
    static float dotRowGroup(DType t, MemorySegment w, long matOff, int row, int nb, short[] xq, int xo, float[] xd, int xdo) {
        int unit = RowGroups.unitBytes(t), r = row % RowGroups.ROWS;
        long g = (long) (row / RowGroups.ROWS) * nb;
        float sum = 0f;
        for (int b = 0; b < nb; b++) {
            long u = matOff + (g + b) * unit, q = u + 64 + r;
            int x0 = xo + 32 * b;
            int sumi = 0;
            if (t == DType.Q8_0_R16) {
                for (int j = 0; j < 32; j++) sumi += w.get(ValueLayout.JAVA_BYTE, q + 16L * j) * xq[x0 + j];
            } else {
                for (int j = 0; j < 16; j++) {
                    int v = w.get(ValueLayout.JAVA_BYTE, q + 16L * j) & 0xff;
                    sumi += ((v & 0x0f) - 8) * xq[x0 + j] + ((v >>> 4) - 8) * xq[x0 + j + 16];
                }
            }
            sum += sumi * (w.get(F32_LE, u + 4L * r) * xd[xdo + b]);
        }
        return sum;
    }

    /** {@code nb} Q4_0 weight blocks at byte {@code off} · Q8_0 activations ({@code xq}, scales {@code xd}). */
    static float dotQ4_0(MemorySegment w, long off, int nb, short[] xq, int xo, float[] xd, int xdo) {
        float sum = 0f;
        for (int b = 0; b < nb; b++) {
            long blk = off + 18L * b;
            int x0 = xo + 32 * b;
            int sumi = 0;
            for (int j = 0; j < 16; j++) {
                int q = w.get(ValueLayout.JAVA_BYTE, blk + 2 + j) & 0xff;
                sumi += ((q & 0x0f) - 8) * xq[x0 + j] + ((q >>> 4) - 8) * xq[x0 + j + 16];
            }
            sum += sumi * (Fp16.decode(w.get(SHORT_LE, blk)) * xd[xdo + b]);
        }
        return sum;
    }

    /**
     * {@code nb} Q4_K weight super-blocks at byte {@code off} · Q8_K activations (quants {@code xq}, scales
     * {@code xd}, bsums {@code xb}), in ggml's generic order (see the class comment).
     */
    static float dotQ4_K(MemorySegment w, long off, int nb, short[] xq, int xo, float[] xd, int xdo, short[] xb, int xbo) {
        int[] aux32 = new int[8];
        float[] sums = new float[8];
        float sumf = 0f;
        for (int b = 0; b < nb; b++) {
            long blk = off + 144L * b;
            int x0 = xo + 256 * b, b0 = xbo + 16 * b;
            long sc = q4kScales(w, blk + 4), mn = q4kMins(w, blk + 4);
            int sumiMins = 0;
            for (int g = 0; g < 16; g++) sumiMins += xb[b0 + g] * sixBits(mn, g / 2);
            java.util.Arrays.fill(aux32, 0);
            for (int j = 0; j < 8; j++) {
                int scale = sixBits(sc, j);
                long qs = blk + 16 + 32 * (j / 2);
                int shift = 4 * (j % 2); // even sub-blocks: low nibbles, odd: high nibbles of the same 32 bytes
                for (int e = 0; e < 32; e++) {
                    int q = (w.get(ValueLayout.JAVA_BYTE, qs + e) & 0xff) >>> shift & 0x0f;
                    aux32[e % 8] += scale * (q * xq[x0 + 32 * j + e]);
                }
            }
            float d = Fp16.decode(w.get(SHORT_LE, blk)) * xd[xdo + b];
            for (int l = 0; l < 8; l++) sums[l] += d * aux32[l];
            float dmin = Fp16.decode(w.get(SHORT_LE, blk + 2)) * xd[xdo + b];
            sumf -= dmin * sumiMins;
        }
        for (int l = 0; l < 8; l++) sumf += sums[l];
        return sumf;
    }

    /** {@code nb} Q6_K weight super-blocks at byte {@code off} · Q8_K activations, in ggml's generic order. */
    static float dotQ6_K(MemorySegment w, long off, int nb, short[] xq, int xo, float[] xd, int xdo, short[] xb, int xbo) {
        int[] aux32 = new int[8];
        float[] sums = new float[8];
        for (int b = 0; b < nb; b++) {
            long blk = off + 210L * b;
            int x0 = xo + 256 * b;
            java.util.Arrays.fill(aux32, 0);
            for (int e = 0; e < 256; e++) {
                int h = e >>> 7, quarter = (e >>> 5) & 3, l = e & 31;
                int lowByte = w.get(ValueLayout.JAVA_BYTE, blk + 64 * h + 32 * (quarter & 1) + l) & 0xff;
                int low = (quarter & 2) == 0 ? lowByte & 0x0f : lowByte >>> 4;
                int high = (w.get(ValueLayout.JAVA_BYTE, blk + 128 + 32 * h + l) & 0xff) >>> (2 * quarter) & 3;
                int q = (low | high << 4) - 32;
                aux32[e % 8] += w.get(ValueLayout.JAVA_BYTE, blk + 192 + e / 16) * (q * xq[x0 + e]);
            }
            float d = Fp16.decode(w.get(SHORT_LE, blk + 208)) * xd[xdo + b];
            for (int l = 0; l < 8; l++) sums[l] += d * aux32[l];
        }
        float sumf = 0f;
        for (int l = 0; l < 8; l++) sumf += sums[l];
        return sumf;
    }

    /**
     * The eight 6-bit Q4_K scales from the 12 packed bytes at {@code at}, one per byte of the result (sub-block j
     * in bits 8j..8j+7): ggml's {@code utmp} unpacking, equal to {@code get_scale_min_k4}.
     */
    static long q4kScales(MemorySegment w, long at) {
        int u0 = w.get(INT_LE, at), u2 = w.get(INT_LE, at + 8);
        int lo = u0 & 0x3f3f3f3f;
        int hi = (u2 & 0x0f0f0f0f) | ((u0 >>> 6) & 0x03030303) << 4;
        return (lo & 0xffffffffL) | (long) hi << 32;
    }

    /** The eight 6-bit Q4_K mins, laid out as {@link #q4kScales}. */
    static long q4kMins(MemorySegment w, long at) {
        int u1 = w.get(INT_LE, at + 4), u2 = w.get(INT_LE, at + 8);
        int lo = u1 & 0x3f3f3f3f;
        int hi = ((u2 >>> 4) & 0x0f0f0f0f) | ((u1 >>> 6) & 0x03030303) << 4;
        return (lo & 0xffffffffL) | (long) hi << 32;
    }

    /** Byte {@code j} of a {@link #q4kScales} / {@link #q4kMins} result. */
    static int sixBits(long packed, int j) {
        return (int) (packed >>> (8 * j)) & 0xff;
    }

    @Override
    public String name() { return "scalar"; }
}
