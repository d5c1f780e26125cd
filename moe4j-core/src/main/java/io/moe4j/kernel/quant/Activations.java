package io.moe4j.kernel.quant;

import io.moe4j.tensor.DType;
import io.moe4j.tensor.quant.Bf16;
import io.moe4j.tensor.quant.Fp16;
import io.moe4j.tensor.quant.Q8_0;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Per-call scratch: the N activation rows converted the way ggml's {@code vec_dot_type} converts them, once per
 * call, before any dot product. Buffers only grow, so a warmed-up caller allocates nothing.
 *
 * <ul>
 *   <li>F32 weights: {@link #xf} holds X as is; F16 / BF16 weights: X rounded to F16 / BF16 (kept as floats,
 *       the rounded values are exact in float).</li>
 *   <li>Q8_0 and Q4_0 weights: X quantized to Q8_0 with the reference quantizer; {@link #xq} holds the quants
 *       widened to shorts (what the SIMD multiply consumes), {@link #xd} the fp16-rounded block scales.</li>
 * </ul>
 *
 * <p>{@code pairedHalves} reorders each block's quants as {@code x0, x16, x1, x17, …}: the 512-bit Q4_0 kernel
 * unpacks a block's nibbles in that order (low nibble of byte j, then its high nibble).
 */
final class Activations {
    static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    float[] xf = new float[0];      // (N, K) converted activations, float weight types
    short[] xq = new short[0];      // (N, K) Q8_0 quants, quantized weight types
    float[] xd = new float[0];      // (N, K/32) Q8_0 block scales
    private float[][] rowBuf = new float[0][];   // (threads, K) one X row read from the segment, per worker
    private short[][] blockBuf = new short[0][]; // (threads, 32) one block before reordering, per worker

    /** Grows the buffers for an (n × k) X converted for {@code wType} by {@code threads} workers. */
    void ensure(DType wType, int n, int k, int threads) {
        long elems = (long) n * k;
        if (elems > Integer.MAX_VALUE - 16) throw new IllegalArgumentException("N·K = " + elems + " is too large");
        if (wType.isQuantized()) {
            if (xq.length < elems) xq = new short[(int) elems];
            if (xd.length < elems / 32) xd = new float[(int) (elems / 32)];
        } else if (xf.length < elems) {
            xf = new float[(int) elems];
        }
        if (rowBuf.length < threads) {
            rowBuf = new float[threads][];
            blockBuf = new short[threads][];
        }
        for (int t = 0; t < threads; t++) {
            if (rowBuf[t] == null || rowBuf[t].length < k) rowBuf[t] = new float[k];
            if (blockBuf[t] == null) blockBuf[t] = new short[Q8_0.BLOCK];
        }
    }

    /** Converts X row {@code i} (at float {@code xOff + i·ldx}) into row {@code i} of the scratch. */
    void convertRow(int worker, DType wType, boolean pairedHalves, MemorySegment x, long xOff, int ldx, int i, int k) {
        float[] row = rowBuf[worker];
        MemorySegment.copy(x, F32_LE, (xOff + (long) i * ldx) * 4, row, 0, k);
        int base = i * k;
        switch (wType) {
            case F32 -> System.arraycopy(row, 0, xf, base, k);
            case F16 -> { for (int j = 0; j < k; j++) xf[base + j] = Fp16.round(row[j]); }
            case BF16 -> { for (int j = 0; j < k; j++) xf[base + j] = Bf16.round(row[j]); }
            case Q8_0, Q4_0 -> {
                int nb = k / Q8_0.BLOCK;
                short[] block = blockBuf[worker];
                for (int b = 0; b < nb; b++) {
                    int q = base + b * Q8_0.BLOCK;
                    short d = pairedHalves ? Q8_0.quantizeBlock(row, b * Q8_0.BLOCK, block, 0)
                                           : Q8_0.quantizeBlock(row, b * Q8_0.BLOCK, xq, q);
                    if (pairedHalves) {
                        for (int j = 0; j < Q8_0.BLOCK / 2; j++) {
                            xq[q + 2 * j] = block[j];
                            xq[q + 2 * j + 1] = block[j + Q8_0.BLOCK / 2];
                        }
                    }
                    xd[i * nb + b] = Fp16.decode(d);
                }
            }
        }
    }
}
