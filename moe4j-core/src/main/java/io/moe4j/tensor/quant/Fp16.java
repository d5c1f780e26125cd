package io.moe4j.tensor.quant;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * IEEE 754 binary16 ("half", GGML's {@code F16}): 1 sign bit, 5 exponent bits, 10 mantissa bits, stored
 * little-endian in 2 bytes.
 *
 * <p>Encoding rounds to nearest, ties to even, overflows to infinity and keeps subnormals — Java's
 * {@link Float#floatToFloat16}, which HotSpot compiles to the CPU's conversion instruction. The one place where
 * ggml's reference {@code ggml_compute_fp32_to_fp16} differs is NaN: it returns the canonical quiet NaN
 * {@code 0x7E00} with the input's sign, whatever the payload; we do the same so encoded bytes are identical.
 *
 * <p>Non-goal: vectorised conversion; the kernels in {@code io.moe4j.kernel.quant} do their own.
 */
public final class Fp16 {
    private Fp16() {}

    static final ValueLayout.OfShort LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** The binary16 bits nearest to {@code f} (ties to even); NaN becomes {@code sign | 0x7E00} as in ggml. */
    public static short encode(float f) {
        if (Float.isNaN(f)) return (short) ((Float.floatToRawIntBits(f) >>> 16 & 0x8000) | 0x7E00);
        return Float.floatToFloat16(f);
    }

    /** The float equal to binary16 {@code h} (exact: every half is a float). */
    public static float decode(short h) {
        return Float.float16ToFloat(h);
    }

    /** {@code f} rounded to the nearest half and back — how ggml sees an activation before an F16 dot. */
    public static float round(float f) {
        return Float.float16ToFloat(encode(f));
    }

    /** Encodes {@code n} floats to {@code 2n} bytes at {@code dst + dstByteOff}. */
    public static void quantize(float[] src, int srcOff, MemorySegment dst, long dstByteOff, int n) {
        Quant.checkRange(src, srcOff, n, dst, dstByteOff, 2L * n);
        for (int i = 0; i < n; i++) dst.set(LE, dstByteOff + 2L * i, encode(src[srcOff + i]));
    }

    /** Decodes {@code n} halves from {@code src + srcByteOff}. */
    public static void dequantize(MemorySegment src, long srcByteOff, float[] dst, int dstOff, int n) {
        Quant.checkRange(dst, dstOff, n, src, srcByteOff, 2L * n);
        for (int i = 0; i < n; i++) dst[dstOff + i] = decode(src.get(LE, srcByteOff + 2L * i));
    }
}
