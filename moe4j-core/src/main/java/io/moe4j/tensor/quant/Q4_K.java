package io.moe4j.tensor.quant;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * GGML's {@code Q4_K}: super-blocks of 256 values in 8 sub-blocks of 32, each with its own 6-bit scale and
 * 6-bit min, themselves scaled by two fp16 super-block factors.
 *
 * <pre>
 *   struct block_q4_K { fp16 d; fp16 dmin; uint8 scales[12]; uint8 qs[128]; }   // 144 bytes, little-endian
 *   sub-block j (0..7): scale sc_j and min m_j, 6 bits each, packed in scales[12] (see {@link #scale}):
 *     j < 4:  sc = scales[j] & 63,                              m = scales[j+4] & 63
 *     j ≥ 4:  sc = (scales[j+4] & 15) | (scales[j-4] >> 6) << 4,  m = (scales[j+4] >> 4) | (scales[j] >> 6) << 4
 *   element 64c + l      (c = 0..3, l = 0..31) = low  nibble of qs[32c + l]   (sub-block 2c)
 *   element 64c + 32 + l                       = high nibble of qs[32c + l]   (sub-block 2c + 1)
 *   value = (d·sc_j)·q − dmin·m_j
 * </pre>
 *
 * <p>The quantizer is ggml's {@code quantize_row_q4_K_ref}: per sub-block an iterative search for a (scale, min)
 * pair minimising the weighted squared error ({@code make_qkx2_quants}: 21 candidate scales, least squares for
 * each), then the 8 scales and 8 mins quantized to 6 bits against their maxima, then every value re-quantized
 * with the stored (rounded) scales. Float operations are replicated one by one in the order the C source writes
 * them, each rounded to float (Java's float arithmetic is IEEE binary32, like x86-64 SSE). ggml builds that let
 * the C compiler contract {@code a*b + c} into an FMA (GCC's default {@code -ffp-contract=fast} with
 * {@code -march=native}, or any aarch64 build) round differently in the last bit of the search sums and can
 * then pick a different candidate for a rare sub-block; our bytes equal a build with {@code -ffp-contract=off}.
 *
 * <p>Non-goals: the importance-matrix quantizer ({@code quantize_row_q4_K_impl}); speed (runs at load/save time).
 */
public final class Q4_K {
    private Q4_K() {}

    public static final int BLOCK = 256;
    public static final int BYTES = 144;
    /** Byte offsets inside a block. */
    public static final int D = 0, DMIN = 2, SCALES = 4, QS = 16;

    /** The 6-bit scale of sub-block {@code j} (0..7) from the 12 packed bytes at {@code scales[off]}. */
    public static int scale(byte[] scales, int off, int j) {
        return j < 4 ? scales[off + j] & 63
                : (scales[off + j + 4] & 0x0f) | ((scales[off + j - 4] & 0xff) >>> 6) << 4;
    }

    /** The 6-bit min of sub-block {@code j} (0..7) from the 12 packed bytes at {@code scales[off]}. */
    public static int min(byte[] scales, int off, int j) {
        return j < 4 ? scales[off + j + 4] & 63
                : ((scales[off + j + 4] & 0xff) >>> 4) | ((scales[off + j] & 0xff) >>> 6) << 4;
    }

    /** Quantizes the 256 floats at {@code x[xOff]} into the 144-byte block {@code out[outOff..]}. */
    public static void quantizeBlock(float[] x, int xOff, byte[] out, int outOff) {
        int[] levels = new int[BLOCK];
        float[] scales = new float[8], mins = new float[8], weights = new float[32], theMin = new float[1];
        float maxScale = 0f, maxMin = 0f;
        for (int j = 0; j < 8; j++) {
            int o = xOff + 32 * j;
            float sumX2 = 0f;
            for (int l = 0; l < 32; l++) sumX2 += x[o + l] * x[o + l];
            float avX = (float) Math.sqrt(sumX2 / 32f); // sqrtf: correctly rounded, so equal to the double root rounded
            for (int l = 0; l < 32; l++) weights[l] = avX + Math.abs(x[o + l]);
            scales[j] = makeQkx2Quants(32, 15, x, o, weights, levels, 32 * j, theMin, -1f, 0.1f, 20);
            mins[j] = theMin[0];
            if (scales[j] > maxScale) maxScale = scales[j];
            if (mins[j] > maxMin) maxMin = mins[j];
        }
        float invScale = maxScale > 0 ? 63f / maxScale : 0f;
        float invMin = maxMin > 0 ? 63f / maxMin : 0f;
        java.util.Arrays.fill(out, outOff, outOff + BYTES, (byte) 0);
        int sc0 = outOff + SCALES;
        for (int j = 0; j < 8; j++) {
            int ls = Math.min(63, Q8_K.nearestInt(invScale * scales[j]) & 0xff); // (uint8_t) then MIN(63, ·)
            int lm = Math.min(63, Q8_K.nearestInt(invMin * mins[j]) & 0xff);
            if (j < 4) {
                out[sc0 + j] = (byte) ls;
                out[sc0 + j + 4] = (byte) lm;
            } else {
                out[sc0 + j + 4] = (byte) ((ls & 0x0f) | (lm & 0x0f) << 4);
                out[sc0 + j - 4] |= (byte) ((ls >>> 4) << 6);
                out[sc0 + j] |= (byte) ((lm >>> 4) << 6);
            }
        }
        short dBits = Fp16.encode(maxScale / 63f), dminBits = Fp16.encode(maxMin / 63f);
        putShort(out, outOff + D, dBits);
        putShort(out, outOff + DMIN, dminBits);
        float d = Fp16.decode(dBits), dmin = Fp16.decode(dminBits);
        for (int j = 0; j < 8; j++) {
            float dj = d * scale(out, sc0, j);
            if (dj == 0f) continue; // keeps the search's levels, as ggml does
            float mj = dmin * min(out, sc0, j);
            for (int l = 0; l < 32; l++) {
                int q = Q8_K.nearestInt((x[xOff + 32 * j + l] + mj) / dj);
                levels[32 * j + l] = Math.max(0, Math.min(15, q));
            }
        }
        for (int c = 0; c < 4; c++) {
            for (int l = 0; l < 32; l++) {
                out[outOff + QS + 32 * c + l] = (byte) (levels[64 * c + l] | levels[64 * c + 32 + l] << 4);
            }
        }
    }

    /**
     * ggml's {@code make_qkx2_quants} with {@code use_mad = false}: levels in [0, nmax] for {@code n} values at
     * {@code x[xo]} under {@code value ≈ scale·L − theMin}; returns the scale, writes the min (≥ 0) to
     * {@code theMin[0]} and the levels to {@code levels[lo..]}. Tries {@code iscale = (rmin + rdelta·is + nmax) /
     * (max − min)} for is = 0..nstep, solves weighted least squares for scale and min at each, keeps the best.
     */
    static float makeQkx2Quants(int n, int nmax, float[] x, int xo, float[] weights, int[] levels, int lo,
                                float[] theMin, float rmin, float rdelta, int nstep) {
        float min = x[xo], max = x[xo];
        float sumW = weights[0];
        float sumX = sumW * x[xo];
        for (int i = 1; i < n; i++) {
            float v = x[xo + i];
            if (v < min) min = v;
            if (v > max) max = v;
            float w = weights[i];
            sumW += w;
            sumX += w * v;
        }
        if (min > 0) min = 0;
        if (max == min) {
            for (int i = 0; i < n; i++) levels[lo + i] = 0;
            theMin[0] = -min;
            return 0f;
        }
        float iscale = nmax / (max - min);
        float scale = 1 / iscale;
        float bestError = 0f;
        for (int i = 0; i < n; i++) {
            int l = Math.max(0, Math.min(nmax, Q8_K.nearestInt(iscale * (x[xo + i] - min))));
            levels[lo + i] = l;
            float diff = scale * l + min - x[xo + i];
            bestError += weights[i] * (diff * diff);
        }
        int[] aux = new int[n];
        for (int is = 0; is <= nstep; is++) {
            iscale = (rmin + rdelta * is + nmax) / (max - min);
            float sumL = 0f, sumL2 = 0f, sumXL = 0f;
            for (int i = 0; i < n; i++) {
                int l = Math.max(0, Math.min(nmax, Q8_K.nearestInt(iscale * (x[xo + i] - min))));
                aux[i] = l;
                float w = weights[i];
                sumL += w * l;
                sumL2 += w * l * l;
                sumXL += w * l * x[xo + i];
            }
            float det = sumW * sumL2 - sumL * sumL;
            if (det > 0) {
                float thisScale = (sumW * sumXL - sumX * sumL) / det;
                float thisMin = (sumL2 * sumX - sumL * sumXL) / det;
                if (thisMin > 0) {
                    thisMin = 0;
                    thisScale = sumXL / sumL2;
                }
                float curError = 0f;
                for (int i = 0; i < n; i++) {
                    float diff = thisScale * aux[i] + thisMin - x[xo + i];
                    curError += weights[i] * (diff * diff);
                }
                if (curError < bestError) {
                    System.arraycopy(aux, 0, levels, lo, n);
                    bestError = curError;
                    scale = thisScale;
                    min = thisMin;
                }
            }
        }
        theMin[0] = -min;
        return scale;
    }

    /** Quantizes {@code n} floats (a multiple of 256) into {@code n/256} blocks at {@code dst + dstByteOff}. */
    public static void quantize(float[] src, int srcOff, MemorySegment dst, long dstByteOff, int n) {
        Quant.checkBlocks("Q4_K", n, BLOCK);
        Quant.checkRange(src, srcOff, n, dst, dstByteOff, (long) n / BLOCK * BYTES);
        byte[] blk = new byte[BYTES];
        for (int b = 0; b < n / BLOCK; b++) {
            quantizeBlock(src, srcOff + b * BLOCK, blk, 0);
            MemorySegment.copy(blk, 0, dst, ValueLayout.JAVA_BYTE, dstByteOff + (long) b * BYTES, BYTES);
        }
    }

    /** Decodes {@code n/256} blocks at {@code src + srcByteOff} into {@code n} floats (ggml's dequantize_row_q4_K). */
    public static void dequantize(MemorySegment src, long srcByteOff, float[] dst, int dstOff, int n) {
        dequantize(src, srcByteOff, dst, dstOff, n, new byte[BYTES]);
    }

    /** {@link #dequantize(MemorySegment, long, float[], int, int)} with a caller's block buffer of ≥ BYTES bytes (hot loops). */
    public static void dequantize(MemorySegment src, long srcByteOff, float[] dst, int dstOff, int n, byte[] blk) {
        Quant.checkBlocks("Q4_K", n, BLOCK);
        Quant.checkRange(dst, dstOff, n, src, srcByteOff, (long) n / BLOCK * BYTES);
        for (int b = 0; b < n / BLOCK; b++) {
            MemorySegment.copy(src, ValueLayout.JAVA_BYTE, srcByteOff + (long) b * BYTES, blk, 0, BYTES);
            float d = Fp16.decode(getShort(blk, D)), dmin = Fp16.decode(getShort(blk, DMIN));
            int o = dstOff + b * BLOCK;
            for (int c = 0; c < 4; c++) {
                float d1 = d * scale(blk, SCALES, 2 * c), m1 = dmin * min(blk, SCALES, 2 * c);
                float d2 = d * scale(blk, SCALES, 2 * c + 1), m2 = dmin * min(blk, SCALES, 2 * c + 1);
                for (int l = 0; l < 32; l++) {
                    int q = blk[QS + 32 * c + l] & 0xff;
                    dst[o + 64 * c + l] = d1 * (q & 0x0f) - m1;
                    dst[o + 64 * c + 32 + l] = d2 * (q >>> 4) - m2;
                }
            }
        }
    }

    static short getShort(byte[] b, int off) {
        return (short) ((b[off] & 0xff) | b[off + 1] << 8);
    }

    static void putShort(byte[] b, int off, short v) {
        b[off] = (byte) v;
        b[off + 1] = (byte) (v >> 8);
    }
}
