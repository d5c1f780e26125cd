package io.moe4j.tensor.quant;

import java.lang.foreign.MemorySegment;

/**
 * bfloat16 (GGML's {@code BF16}): the upper 16 bits of an IEEE binary32 — same exponent range as float, 8 bits
 * of mantissa — stored little-endian in 2 bytes.
 *
 * <p>Encoding is ggml's {@code ggml_compute_fp32_to_bf16}: round to nearest, ties to even, by adding
 * {@code 0x7FFF + lsb} to the float bits and truncating (so overflow rounds to infinity and subnormals are
 * rounded, not flushed); a NaN keeps its upper bits and is forced quiet by setting bit 6 ({@code | 0x40}).
 * Decoding is exact: shift back up by 16.
 */
public final class Bf16 {
    private Bf16() {}

    /** The bfloat16 bits for {@code f}, exactly as ggml computes them. */
    public static short encode(float f) {
        int bits = Float.floatToRawIntBits(f);
        if ((bits & 0x7fffffff) > 0x7f800000) return (short) ((bits >>> 16) | 0x40); // NaN: force quiet
        return (short) ((bits + (0x7fff + ((bits >>> 16) & 1))) >>> 16);
    }

    /** The float equal to bfloat16 {@code h}. */
    public static float decode(short h) {
        return Float.intBitsToFloat((h & 0xffff) << 16);
    }

    /** {@code f} rounded to bfloat16 and back — how ggml sees an activation before a BF16 dot. */
    public static float round(float f) {
        return decode(encode(f));
    }

    /** Encodes {@code n} floats to {@code 2n} bytes at {@code dst + dstByteOff}. */
    public static void quantize(float[] src, int srcOff, MemorySegment dst, long dstByteOff, int n) {
        Quant.checkRange(src, srcOff, n, dst, dstByteOff, 2L * n);
        for (int i = 0; i < n; i++) dst.set(Fp16.LE, dstByteOff + 2L * i, encode(src[srcOff + i]));
    }

    /** Decodes {@code n} bfloat16 values from {@code src + srcByteOff}. */
    public static void dequantize(MemorySegment src, long srcByteOff, float[] dst, int dstOff, int n) {
        Quant.checkRange(dst, dstOff, n, src, srcByteOff, 2L * n);
        for (int i = 0; i < n; i++) dst[dstOff + i] = decode(src.get(Fp16.LE, srcByteOff + 2L * i));
    }
}
