package io.moe4j.kernel.quant;

import io.moe4j.tensor.DType;
import io.moe4j.tensor.quant.Bf16;
import io.moe4j.tensor.quant.Fp16;
import io.moe4j.tensor.quant.Q8_0;
import io.moe4j.tensor.quant.Q8_K;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Per-call scratch: the N activation rows converted the way ggml's {@code vec_dot_type} converts them, once per
 * call, before any dot product. Buffers only grow, so a warmed-up caller allocates nothing.
 *
 * <ul>
 *   <li>F32 weights: {@link #xf} holds X as is; F16 / BF16 weights: X rounded to F16 / BF16 (kept as floats,
 *       the rounded values are exact in float). With {@code pairLanes = L > 0} (the SIMD kernels) F16 / BF16
 *       rows are in the <em>pair layout</em>: in each full group of 2L elements, the L even elements, then the L
 *       odd ones (the order in which {@link SimdDots} decodes two 16-bit weights per int lane); the last
 *       {@code K mod 2L} elements in order. F16 activations are then also multiplied by 2^112 (exact), which the
 *       SIMD decode leaves out of the weights.</li>
 *   <li>Q8_0 and Q4_0 weights: X quantized to Q8_0 as llama.cpp's x86 backend does
 *       ({@link Q8_0#quantizeBlockActivations}); {@link #xq} holds the quants
 *       widened to shorts (what the SIMD multiply consumes), {@link #xd} the fp16-rounded block scales.</li>
 * </ul>
 *
 * <p>{@code packQ4} also fills {@link #xp} and {@link #xc}, the layout of the SIMD Q4_0 kernel: per block, 16
 * ints P1 / P2 holding two activation terms each as {@code c + 65536·d}, so that 32-bit multiplies of the weight
 * bytes (and of the bytes shifted right by 4) by them leave the block's exact nibble products in the upper 16 bits
 * (see {@link #packQ4Block} and {@link SimdDots}), and 8 ints {@code 0x8000 − 65536·8·Σ} that subtract the nibbles'
 * offset of 8 (Σ = the four activations of the lane) and round the upper half out exactly.
 */
final class Activations {
    static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    float[] xf = new float[0];      // (N, K) converted activations, float weight types
    short[] xq = new short[0];      // (N, K) Q8_0 quants, quantized weight types
    float[] xd = new float[0];      // (N, K/32) Q8_0 block scales, or (N, K/256) Q8_K scales
    short[] xb = new short[0];      // (N, K/16) Q8_K bsums
    int[] xp = new int[0];          // (N, K/2) Q4_0 SIMD layout: quant pairs, see packQ4Block
    int[] xc = new int[0];          // (N, K/4) Q4_0 SIMD layout: per-lane offset corrections + rounding bias
    float[] xr = new float[0];      // (N, K) row-group kernels: Q8_0 quants as floats, or the Q4_0 form (fillRowGroup)
    float[] xs = new float[0];      // (N, K/32) row-group Q4_0 kernels: 8·Σ block quants
    private float[][] rowBuf = new float[0][];   // (threads, K) one X row read from the segment, per worker

    /** Grows the buffers for an (n × k) X converted for {@code wType} by {@code threads} workers. */
    void ensure(DType wType, int n, int k, int threads) {
        long elems = (long) n * k;
        if (elems > Integer.MAX_VALUE - 16) throw new IllegalArgumentException("N·K = " + elems + " is too large");
        if (wType.isQuantized()) {
            if (xq.length < elems) xq = new short[(int) elems];
            if (xd.length < elems / 32) xd = new float[(int) (elems / 32)];
            if (isKQuant(wType) && xb.length < elems / 16) xb = new short[(int) (elems / 16)];
            if (isRowGroup(wType) && xr.length < elems) {
                xr = new float[(int) elems];
                xs = new float[(int) (elems / 32)];
            }
            if (wType == DType.Q4_0 && xp.length < elems / 2) {
                xp = new int[(int) (elems / 2)];
                xc = new int[(int) (elems / 4)];
            }
        } else if (xf.length < elems) {
            xf = new float[(int) elems];
        }
        if (rowBuf.length < threads) rowBuf = new float[threads][];
        for (int t = 0; t < threads; t++) {
            if (rowBuf[t] == null || rowBuf[t].length < k) rowBuf[t] = new float[k];
        }
    }

    /**
     * Converts X row {@code i} (at float {@code xOff + i·ldx}) into row {@code i} of the scratch; F16 / BF16 in
     * the pair layout of {@code pairLanes} lanes if that is positive.
     */
    void convertRow(int worker, DType wType, boolean packQ4, int pairLanes, MemorySegment x, long xOff, int ldx, int i, int k) {
        float[] row = rowBuf[worker];
        MemorySegment.copy(x, F32_LE, (xOff + (long) i * ldx) * 4, row, 0, k);
        int base = i * k;
        switch (wType) {
            case F32 -> System.arraycopy(row, 0, xf, base, k);
            case F16, BF16 -> {
                boolean f16 = wType == DType.F16;
                float scale = f16 && pairLanes > 0 ? 0x1p112f : 1f;
                for (int j = 0; j < k; j++) row[j] = (f16 ? Fp16.round(row[j]) : Bf16.round(row[j])) * scale;
                if (pairLanes > 0) toPairLayout(row, xf, base, k, pairLanes);
                else System.arraycopy(row, 0, xf, base, k);
            }
            case Q8_0, Q4_0, Q8_0_R16, Q4_0_R16 -> {
                int nb = k / Q8_0.BLOCK;
                for (int b = 0; b < nb; b++) {
                    int q = base + b * Q8_0.BLOCK;
                    xd[i * nb + b] = Fp16.decode(Q8_0.quantizeBlockActivations(row, b * Q8_0.BLOCK, xq, q));
                    if (packQ4) packQ4Block(q);
                    if (isRowGroup(wType)) fillRowGroup(wType, q, i * nb + b);
                }
            }
            case Q4_K, Q6_K -> {
                int nb = k / Q8_K.BLOCK;
                for (int b = 0; b < nb; b++) {
                    int q = base + b * Q8_K.BLOCK;
                    xd[i * nb + b] = Q8_K.quantizeBlock(row, b * Q8_K.BLOCK, xq, q, xb, q / Q8_K.GROUP);
                }
            }
        }
    }

    /** The load-time row-group layouts ({@link RowGroupDots}). */
    static boolean isRowGroup(DType t) {
        return t == DType.Q8_0_R16 || t == DType.Q4_0_R16;
    }

    /**
     * The row-group kernels' form of the Q8_0 block at quant {@code q}: for Q8_0_R16 the 32 quants as floats; for
     * Q4_0_R16 {@code xr[q + j] = x_j}, {@code xr[q + 16 + j] = x_{j+16} − 16·x_j} (j < 16) and {@code xs[s] = 8·Σ x}
     * (see {@link RowGroupDots}). All exact small integers.
     */
    private void fillRowGroup(DType wType, int q, int s) {
        if (wType == DType.Q8_0_R16) {
            for (int j = 0; j < 32; j++) xr[q + j] = xq[q + j];
            return;
        }
        int sum = 0;
        for (int j = 0; j < 16; j++) {
            xr[q + j] = xq[q + j];
            xr[q + 16 + j] = xq[q + 16 + j] - 16 * xq[q + j];
            sum += xq[q + j] + xq[q + 16 + j];
        }
        xs[s] = 8 * sum;
    }

    /** Weight formats whose activations are Q8_K. */
    static boolean isKQuant(DType t) {
        return t == DType.Q4_K || t == DType.Q6_K;
    }

    /** Copies {@code src[0, k)} to {@code dst} at {@code base} in the pair layout of {@code lanes} lanes. */
    static void toPairLayout(float[] src, float[] dst, int base, int k, int lanes) {
        int g2 = 2 * lanes, full = k - k % g2;
        for (int g = 0; g < full; g += g2) {
            for (int p = 0; p < lanes; p++) {
                dst[base + g + p] = src[g + 2 * p];
                dst[base + g + lanes + p] = src[g + 2 * p + 1];
            }
        }
        System.arraycopy(src, full, dst, base + full, k - full);
    }

    /**
     * Packs the Q8_0 block at quant {@code q} (32 quants in {@link #xq}) for the SIMD Q4_0 kernel, which reads a
     * block's 16 nibble bytes zero-extended to 16 shorts, i.e. int lane m = {@code B0 + 65536·B1} with
     * {@code B0 = byte 2m = a + 16·h0} (a = element 2m, h0 = element 16 + 2m) and {@code B1 = byte 2m+1 = b + 16·h1}
     * (b = element 2m + 1, h1 = element 17 + 2m), and the same bytes shifted right by 4 per short,
     * {@code h0 + 65536·h1}. The two multipliers are
     * <pre>
     *   P1 = x[2m+1] + 65536·x[2m]
     *   P2 = (x[17+2m] − 16·x[2m+1]) + 65536·(x[16+2m] − 16·x[2m])
     * </pre>
     * so that the upper half of {@code lane·P1 + shifted·P2} is {@code a·x[2m] + b·x[2m+1] + h0·x[16+2m] +
     * h1·x[17+2m]} — the whole bytes' high nibbles multiplied by P1 are cancelled by P2's −16 terms, so the kernel
     * needs no nibble mask — and its lower half {@code a·x[2m+1] + h0·x[17+2m]} stays within ±3810. Each P2 half fits
     * a short (|x| ≤ 127: ±2159). {@link #xc}: {@code 0x8000 − 65536·8·Σ} (Σ = those four activations) subtracts the
     * nibbles' offset 8 and keeps the lower half in [0, 65536), so an arithmetic shift by 16 is exact.
     */
    private void packQ4Block(int q) {
        int p = q / 2, c = q / 4;
        for (int m = 0; m < 8; m++) {
            int a0 = xq[q + 2 * m], a1 = xq[q + 2 * m + 1], b0 = xq[q + 16 + 2 * m], b1 = xq[q + 17 + 2 * m];
            xp[p + m] = a1 + 65536 * a0;
            xp[p + 8 + m] = (b1 - 16 * a1) + 65536 * (b0 - 16 * a0);
            xc[c + m] = 0x8000 - 65536 * 8 * (a0 + a1 + b0 + b1);
        }
    }
}
