package io.moe4j.kernel.quant;

import io.moe4j.parallel.WorkerPool;
import io.moe4j.tensor.DType;
import io.moe4j.tensor.quant.Bf16;
import io.moe4j.tensor.quant.Fp16;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * The reference {@link QuantMatmul}: one plain loop per format, written to be read. It defines the arithmetic the
 * SIMD implementation must reproduce: activations converted as in {@link Activations}; for Q8_0 / Q4_0 weights
 * each block's integer dot is exact, then {@code sum += (float) sumi * (d_w * d_x)} in block order, exactly
 * ggml's scalar {@code ggml_vec_dot_q8_0_q8_0} / {@code ggml_vec_dot_q4_0_q8_0}; for float weights
 * {@code sum += w·x} in element order (products of two F16 or two BF16 values are exact in float).
 *
 * <p>Work is split over fixed chunks of output rows, so results do not depend on the thread count. The static
 * {@code dot*} methods are also the scalar tails of the SIMD kernels.
 *
 * <p>Non-goal: speed. This allocates a lambda per call; the SIMD path does not.
 */
public final class ScalarQuantMatmul implements QuantMatmul {
    private static final ValueLayout.OfShort SHORT_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
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
        int nb = k / 32;
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

    @Override
    public String name() { return "scalar"; }
}
