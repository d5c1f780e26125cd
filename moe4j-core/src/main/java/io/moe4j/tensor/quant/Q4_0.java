package io.moe4j.tensor.quant;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * GGML's {@code Q4_0}: blocks of 32 values, 4 bits each, sharing one scale.
 *
 * <pre>
 *   struct block_q4_0 { fp16 d; uint8 qs[16]; }    // 18 bytes, little-endian
 *   element j      (0..15) = low  nibble of qs[j]
 *   element j + 16 (0..15) = high nibble of qs[j]
 *   value = (q - 8) * d
 * </pre>
 *
 * <p>The quantizer is ggml's {@code quantize_row_q4_0_ref}, bit for bit: take the value {@code max} with the
 * largest magnitude, keeping its sign; {@code d = max / -8}, {@code id = 1/d} (0 for an all-zero block);
 * {@code q = min(15, (int8)(x*id + 8.5f))} (truncation); {@code d} stored as fp16. The sign trick maps the
 * extreme value to q = 0, i.e. −8·d, so the asymmetric range [−8, 7] is used on the side that needs it.
 */
public final class Q4_0 {
    private Q4_0() {}

    public static final int BLOCK = 32;
    public static final int BYTES = 18;

    /**
     * Quantizes the 32 floats at {@code x[xOff]} into the 16 packed bytes {@code qs[qsOff..qsOff+15]} and returns
     * the block scale {@code d} as fp16 bits.
     */
    public static short quantizeBlock(float[] x, int xOff, byte[] qs, int qsOff) {
        float amax = 0f, max = 0f;
        for (int j = 0; j < BLOCK; j++) {
            float v = x[xOff + j];
            if (amax < Math.abs(v)) {
                amax = Math.abs(v);
                max = v;
            }
        }
        float d = max / -8f;
        float id = d != 0f ? 1f / d : 0f;
        for (int j = 0; j < BLOCK / 2; j++) {
            int lo = nibble(x[xOff + j] * id);
            int hi = nibble(x[xOff + BLOCK / 2 + j] * id);
            qs[qsOff + j] = (byte) (lo | hi << 4);
        }
        return Fp16.encode(d);
    }

    /** {@code MIN(15, (int8_t)(v + 8.5f))}: v·id lies in [−8, 8], so the truncated value is in [0, 16]. */
    private static int nibble(float v) {
        return Math.min(15, (byte) (int) (v + 8.5f));
    }

    /** Quantizes {@code n} floats (a multiple of 32) into {@code n/32} blocks at {@code dst + dstByteOff}. */
    public static void quantize(float[] src, int srcOff, MemorySegment dst, long dstByteOff, int n) {
        Quant.checkBlocks("Q4_0", n);
        Quant.checkRange(src, srcOff, n, dst, dstByteOff, (long) n / BLOCK * BYTES);
        byte[] qs = new byte[BLOCK / 2];
        for (int b = 0; b < n / BLOCK; b++) {
            long at = dstByteOff + (long) b * BYTES;
            dst.set(Fp16.LE, at, quantizeBlock(src, srcOff + b * BLOCK, qs, 0));
            MemorySegment.copy(qs, 0, dst, ValueLayout.JAVA_BYTE, at + 2, BLOCK / 2);
        }
    }

    /** Decodes {@code n/32} blocks at {@code src + srcByteOff} into {@code n} floats. */
    public static void dequantize(MemorySegment src, long srcByteOff, float[] dst, int dstOff, int n) {
        Quant.checkBlocks("Q4_0", n);
        Quant.checkRange(dst, dstOff, n, src, srcByteOff, (long) n / BLOCK * BYTES);
        for (int b = 0; b < n / BLOCK; b++) {
            long at = srcByteOff + (long) b * BYTES;
            float d = Fp16.decode(src.get(Fp16.LE, at));
            int o = dstOff + b * BLOCK;
            for (int j = 0; j < BLOCK / 2; j++) {
                int q = src.get(ValueLayout.JAVA_BYTE, at + 2 + j) & 0xff;
                dst[o + j] = ((q & 0x0f) - 8) * d;
                dst[o + j + BLOCK / 2] = ((q >>> 4) - 8) * d;
            }
        }
    }
}
