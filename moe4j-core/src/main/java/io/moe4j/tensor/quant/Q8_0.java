package io.moe4j.tensor.quant;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * GGML's {@code Q8_0}: blocks of 32 values sharing one scale.
 *
 * <pre>
 *   struct block_q8_0 { fp16 d; int8 qs[32]; }     // 34 bytes, little-endian
 *   value[j] = qs[j] * d
 * </pre>
 *
 * <p>The quantizer is ggml's {@code quantize_row_q8_0_ref}, bit for bit: {@code d = amax / 127} (in float),
 * {@code id = 1/d} (0 for an all-zero block), {@code qs[j] = roundf(x[j] * id)} (half away from zero), and
 * {@code d} is stored rounded to fp16. Note that the stored {@code d} is the rounded one while {@code qs} was
 * computed with the unrounded one; that is the format, not a bug.
 *
 * <p>ggml's CPU backend quantizes activations with a SIMD variant that uses {@code id = 127/amax} and rounds
 * ties to even; it can differ from the reference in the last step of a rare {@code qs}. We follow the reference.
 */
public final class Q8_0 {
    private Q8_0() {}

    public static final int BLOCK = 32;
    public static final int BYTES = 34;

    /**
     * Quantizes the 32 floats at {@code x[xOff]} into {@code qs[qsOff..qsOff+31]} (as shorts, which is how the
     * kernels consume them) and returns the block scale {@code d} as fp16 bits.
     */
    public static short quantizeBlock(float[] x, int xOff, short[] qs, int qsOff) {
        float amax = 0f;
        for (int j = 0; j < BLOCK; j++) amax = Math.max(amax, Math.abs(x[xOff + j]));
        float d = amax / 127f;
        float id = d != 0f ? 1f / d : 0f;
        for (int j = 0; j < BLOCK; j++) qs[qsOff + j] = (short) roundHalfAwayFromZero(x[xOff + j] * id);
        return Fp16.encode(d);
    }

    /**
     * The activation quantizer of llama.cpp's x86 CPU backend ({@code quantize_row_q8_0}, AVX/AVX2/AVX-512 paths),
     * which ggml uses for the activations of Q8_0/Q4_0 matmuls: the multiplier is {@code 127/amax} (not
     * {@code 1/(amax/127)}) and rounding is to nearest even ({@code _mm256_round_ps(_MM_ROUND_NEAREST)}) — each can
     * move a quant by one step against {@link #quantizeBlock}, which is ggml's reference (used for weights).
     */
    public static short quantizeBlockActivations(float[] x, int xOff, short[] qs, int qsOff) {
        float amax = 0f;
        for (int j = 0; j < BLOCK; j++) amax = Math.max(amax, Math.abs(x[xOff + j]));
        float d = amax / 127f;
        float id = amax != 0f ? 127f / amax : 0f;
        for (int j = 0; j < BLOCK; j++) qs[qsOff + j] = (short) Math.rint(x[xOff + j] * id);
        return Fp16.encode(d);
    }

    /** C's {@code roundf}: nearest integer, halfway cases away from zero (Java's Math.round rounds them up). */
    static int roundHalfAwayFromZero(float v) {
        // In double, |v| + 0.5 is exact for every float below 2^29, so floor gives roundf's answer.
        double r = Math.floor(Math.abs((double) v) + 0.5);
        return (int) (v < 0 ? -r : r);
    }

    /** Quantizes {@code n} floats (a multiple of 32) into {@code n/32} blocks at {@code dst + dstByteOff}. */
    public static void quantize(float[] src, int srcOff, MemorySegment dst, long dstByteOff, int n) {
        Quant.checkBlocks("Q8_0", n);
        Quant.checkRange(src, srcOff, n, dst, dstByteOff, (long) n / BLOCK * BYTES);
        short[] qs = new short[BLOCK];
        for (int b = 0; b < n / BLOCK; b++) {
            long at = dstByteOff + (long) b * BYTES;
            dst.set(Fp16.LE, at, quantizeBlock(src, srcOff + b * BLOCK, qs, 0));
            for (int j = 0; j < BLOCK; j++) dst.set(ValueLayout.JAVA_BYTE, at + 2 + j, (byte) qs[j]);
        }
    }

    /** Decodes {@code n/32} blocks at {@code src + srcByteOff} into {@code n} floats. */
    public static void dequantize(MemorySegment src, long srcByteOff, float[] dst, int dstOff, int n) {
        Quant.checkBlocks("Q8_0", n);
        Quant.checkRange(dst, dstOff, n, src, srcByteOff, (long) n / BLOCK * BYTES);
        for (int b = 0; b < n / BLOCK; b++) {
            long at = srcByteOff + (long) b * BYTES;
            float d = Fp16.decode(src.get(Fp16.LE, at));
            for (int j = 0; j < BLOCK; j++) dst[dstOff + b * BLOCK + j] = src.get(ValueLayout.JAVA_BYTE, at + 2 + j) * d;
        }
    }
}
