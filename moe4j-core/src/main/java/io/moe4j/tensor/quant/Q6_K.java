package io.moe4j.tensor.quant;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * GGML's {@code Q6_K}: super-blocks of 256 values in 16 sub-blocks of 16, 6-bit quants, one int8 scale per
 * sub-block and one fp16 factor per super-block.
 *
 * <pre>
 *   struct block_q6_K { uint8 ql[128]; uint8 qh[64]; int8 scales[16]; fp16 d; }   // 210 bytes, little-endian
 *   for each half h = 0, 1 (elements 128h ..), with L = ql + 64h, H = qh + 32h, l = 0..31:
 *     element 128h +      l :  low  nibble of L[l]      | bits 0-1 of H[l] << 4
 *     element 128h + 32 + l :  low  nibble of L[32 + l] | bits 2-3 of H[l] << 4
 *     element 128h + 64 + l :  high nibble of L[l]      | bits 4-5 of H[l] << 4
 *     element 128h + 96 + l :  high nibble of L[32 + l] | bits 6-7 of H[l] << 4
 *   value = (d·scales[e/16])·(q − 32)
 * </pre>
 *
 * <p>The quantizer is ggml's {@code quantize_row_q6_K_ref}: per sub-block {@code make_qx_quants} (19 candidate
 * scales around −32/max, each scored by the x²-weighted least-squares fit), then the 16 scales quantized to int8
 * against the largest one ({@code iscale = −128/max_scale}, so the largest lands on −128), then every value
 * re-quantized with the stored scales. Floats are rounded step by step as the C source writes them; see
 * {@link Q4_K} for the one caveat (compilers that contract into FMA).
 *
 * <p>Non-goals: the importance-matrix quantizer; speed.
 */
public final class Q6_K {
    private Q6_K() {}

    public static final int BLOCK = 256;
    public static final int BYTES = 210;
    /** Byte offsets inside a block. */
    public static final int QL = 0, QH = 128, SCALES = 192, D = 208;

    private static final float GROUP_MAX_EPS = 1e-15f;

    /** The 6-bit quant (0..63, before the −32) of element {@code e} (0..255) of the block at {@code b[off]}. */
    public static int quant(byte[] b, int off, int e) {
        int h = e >>> 7, r = e & 127, quarter = r >>> 5, l = r & 31;
        int lowByte = b[off + QL + 64 * h + (quarter & 1) * 32 + l] & 0xff;
        int low = (quarter & 2) == 0 ? lowByte & 0x0f : lowByte >>> 4;
        int high = ((b[off + QH + 32 * h + l] & 0xff) >>> (2 * quarter)) & 3;
        return low | high << 4;
    }

    /** Quantizes the 256 floats at {@code x[xOff]} into the 210-byte block {@code out[outOff..]}. */
    public static void quantizeBlock(float[] x, int xOff, byte[] out, int outOff) {
        int[] levels = new int[BLOCK];
        float[] scales = new float[16];
        float maxScale = 0f, maxAbsScale = 0f;
        for (int ib = 0; ib < 16; ib++) {
            float scale = makeQxQuants(16, 32, x, xOff + 16 * ib, levels, 16 * ib);
            scales[ib] = scale;
            float abs = Math.abs(scale);
            if (abs > maxAbsScale) {
                maxAbsScale = abs;
                maxScale = scale;
            }
        }
        java.util.Arrays.fill(out, outOff, outOff + BYTES, (byte) 0);
        if (maxAbsScale < GROUP_MAX_EPS) return; // all zero, d = +0
        float iscale = -128f / maxScale;
        short dBits = Fp16.encode(1 / iscale);
        Q4_K.putShort(out, outOff + D, dBits);
        for (int ib = 0; ib < 16; ib++) out[outOff + SCALES + ib] = (byte) Math.min(127, Q8_K.nearestInt(iscale * scales[ib]));
        float d = Fp16.decode(dBits);
        for (int j = 0; j < 16; j++) {
            float dj = d * out[outOff + SCALES + j];
            if (dj == 0f) continue; // keeps the search's levels, as ggml does
            for (int i = 0; i < 16; i++) {
                int l = Q8_K.nearestInt(x[xOff + 16 * j + i] / dj);
                levels[16 * j + i] = Math.max(-32, Math.min(31, l)) + 32;
            }
        }
        for (int h = 0; h < 2; h++) {
            int ql = outOff + QL + 64 * h, qh = outOff + QH + 32 * h, e = 128 * h;
            for (int l = 0; l < 32; l++) {
                int q1 = levels[e + l], q2 = levels[e + 32 + l], q3 = levels[e + 64 + l], q4 = levels[e + 96 + l];
                out[ql + l] = (byte) ((q1 & 0x0f) | (q3 & 0x0f) << 4);
                out[ql + 32 + l] = (byte) ((q2 & 0x0f) | (q4 & 0x0f) << 4);
                out[qh + l] = (byte) ((q1 >> 4) | (q2 >> 4) << 2 | (q3 >> 4) << 4 | (q4 >> 4) << 6);
            }
        }
    }

    /**
     * ggml's {@code make_qx_quants} with {@code rmse_type = 1} and no importance weights (weights x²): levels
     * {@code L + nmax} in [0, 2·nmax) at {@code levels[lo..]}, returns the scale (negative when the largest-magnitude
     * value is positive). An all-zero group (|max| < 1e-15) gets levels 0 — not nmax — and scale 0, as in ggml.
     */
    static float makeQxQuants(int n, int nmax, float[] x, int xo, int[] levels, int lo) {
        float max = 0f, amax = 0f;
        for (int i = 0; i < n; i++) {
            float ax = Math.abs(x[xo + i]);
            if (ax > amax) {
                amax = ax;
                max = x[xo + i];
            }
        }
        if (amax < GROUP_MAX_EPS) {
            for (int i = 0; i < n; i++) levels[lo + i] = 0;
            return 0f;
        }
        float iscale = -nmax / max;
        float sumlx = 0f, suml2 = 0f;
        for (int i = 0; i < n; i++) {
            float v = x[xo + i];
            int l = Math.max(-nmax, Math.min(nmax - 1, Q8_K.nearestInt(iscale * v)));
            levels[lo + i] = l + nmax;
            float w = v * v;
            sumlx += w * v * l;
            suml2 += w * l * l;
        }
        float scale = suml2 != 0f ? sumlx / suml2 : 0f;
        float best = scale * sumlx;
        for (int is = -9; is <= 9; is++) {
            if (is == 0) continue;
            iscale = -(nmax + 0.1f * is) / max;
            sumlx = suml2 = 0f;
            for (int i = 0; i < n; i++) {
                float v = x[xo + i];
                int l = Math.max(-nmax, Math.min(nmax - 1, Q8_K.nearestInt(iscale * v)));
                float w = v * v;
                sumlx += w * v * l;
                suml2 += w * l * l;
            }
            if (suml2 > 0 && sumlx * sumlx > best * suml2) {
                for (int i = 0; i < n; i++) {
                    int l = Q8_K.nearestInt(iscale * x[xo + i]);
                    levels[lo + i] = nmax + Math.max(-nmax, Math.min(nmax - 1, l));
                }
                scale = sumlx / suml2;
                best = scale * sumlx;
            }
        }
        return scale;
    }

    /** Quantizes {@code n} floats (a multiple of 256) into {@code n/256} blocks at {@code dst + dstByteOff}. */
    public static void quantize(float[] src, int srcOff, MemorySegment dst, long dstByteOff, int n) {
        Quant.checkBlocks("Q6_K", n, BLOCK);
        Quant.checkRange(src, srcOff, n, dst, dstByteOff, (long) n / BLOCK * BYTES);
        byte[] blk = new byte[BYTES];
        for (int b = 0; b < n / BLOCK; b++) {
            quantizeBlock(src, srcOff + b * BLOCK, blk, 0);
            MemorySegment.copy(blk, 0, dst, ValueLayout.JAVA_BYTE, dstByteOff + (long) b * BYTES, BYTES);
        }
    }

    /** Decodes {@code n/256} blocks at {@code src + srcByteOff} into {@code n} floats (ggml's dequantize_row_q6_K). */
    public static void dequantize(MemorySegment src, long srcByteOff, float[] dst, int dstOff, int n) {
        dequantize(src, srcByteOff, dst, dstOff, n, new byte[BYTES]);
    }

    /** {@link #dequantize(MemorySegment, long, float[], int, int)} with a caller's block buffer of ≥ BYTES bytes (hot loops). */
    public static void dequantize(MemorySegment src, long srcByteOff, float[] dst, int dstOff, int n, byte[] blk) {
        Quant.checkBlocks("Q6_K", n, BLOCK);
        Quant.checkRange(dst, dstOff, n, src, srcByteOff, (long) n / BLOCK * BYTES);
        for (int b = 0; b < n / BLOCK; b++) {
            MemorySegment.copy(src, ValueLayout.JAVA_BYTE, srcByteOff + (long) b * BYTES, blk, 0, BYTES);
            float d = Fp16.decode(Q4_K.getShort(blk, D));
            int o = dstOff + b * BLOCK;
            for (int e = 0; e < BLOCK; e++) dst[o + e] = d * blk[SCALES + e / 16] * (quant(blk, 0, e) - 32);
        }
    }
}
