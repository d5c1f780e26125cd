package io.moe4j.tensor.quant;

import io.moe4j.tensor.DType;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Encode and decode rows of any {@link DType}: the entry point the GGUF reader/writer and tests use. Each format
 * lives in its own class ({@link Fp16}, {@link Bf16}, {@link Q8_0}, {@link Q4_0}, {@link Q4_K},
 * {@link Q6_K}; {@link Q8_K} is the K-quants' activation format) with a readable scalar decoder
 * and ggml's reference quantizer, bit-exact.
 *
 * <p>Non-goals: speed (these run once per tensor at load/save time; the matmul kernels decode on the fly) and
 * formats moe4j does not support (Q2_K, Q3_K, Q5_K, Q4_1, Q5_x, IQ*); the K-quants'
 * importance-matrix quantizers.
 */
public final class Quant {
    private Quant() {}

    private static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /**
     * Encodes {@code n} floats from {@code src[srcOff]} as {@code type} into {@code dst} at byte
     * {@code dstByteOff} ({@code type.byteSize(n)} bytes).
     *
     * @throws IllegalArgumentException if {@code n} is not a whole number of blocks
     * @throws IndexOutOfBoundsException if the source or destination range does not fit
     */
    public static void quantize(DType type, float[] src, int srcOff, MemorySegment dst, long dstByteOff, int n) {
        switch (type) {
            case F32 -> {
                checkRange(src, srcOff, n, dst, dstByteOff, 4L * n);
                MemorySegment.copy(src, srcOff, dst, F32_LE, dstByteOff, n);
            }
            case F16 -> Fp16.quantize(src, srcOff, dst, dstByteOff, n);
            case BF16 -> Bf16.quantize(src, srcOff, dst, dstByteOff, n);
            case Q8_0 -> Q8_0.quantize(src, srcOff, dst, dstByteOff, n);
            case Q4_0 -> Q4_0.quantize(src, srcOff, dst, dstByteOff, n);
            case Q4_K -> Q4_K.quantize(src, srcOff, dst, dstByteOff, n);
            case Q6_K -> Q6_K.quantize(src, srcOff, dst, dstByteOff, n);
            case Q8_0_R16, Q4_0_R16 -> throw new IllegalArgumentException(type + " is a load-time row-group layout: quantize to "
                    + RowGroups.sourceOf(type) + " and pack with RowGroups.pack");
        }
    }

    /**
     * Decodes {@code n} elements of {@code type} stored at byte {@code srcByteOff} of {@code src} into
     * {@code dst[dstOff..dstOff+n)}.
     *
     * @throws IllegalArgumentException if {@code n} is not a whole number of blocks
     * @throws IndexOutOfBoundsException if the source or destination range does not fit
     */
    public static void dequantize(DType type, MemorySegment src, long srcByteOff, float[] dst, int dstOff, int n) {
        switch (type) {
            case F32 -> {
                checkRange(dst, dstOff, n, src, srcByteOff, 4L * n);
                MemorySegment.copy(src, F32_LE, srcByteOff, dst, dstOff, n);
            }
            case F16 -> Fp16.dequantize(src, srcByteOff, dst, dstOff, n);
            case BF16 -> Bf16.dequantize(src, srcByteOff, dst, dstOff, n);
            case Q8_0 -> Q8_0.dequantize(src, srcByteOff, dst, dstOff, n);
            case Q4_0 -> Q4_0.dequantize(src, srcByteOff, dst, dstOff, n);
            case Q4_K -> Q4_K.dequantize(src, srcByteOff, dst, dstOff, n);
            case Q6_K -> Q6_K.dequantize(src, srcByteOff, dst, dstOff, n);
            case Q8_0_R16, Q4_0_R16 -> throw new IllegalArgumentException(type + " rows are interleaved in groups: use RowGroups.dequantizeRow");
        }
    }

    static void checkBlocks(String format, int n) {
        checkBlocks(format, n, 32);
    }

    static void checkBlocks(String format, int n, int block) {
        if (n < 0 || n % block != 0) {
            throw new IllegalArgumentException(format + " stores whole blocks of " + block + " values; n = " + n
                    + " is not a multiple of " + block);
        }
    }

    static void checkRange(float[] array, int off, int n, MemorySegment seg, long byteOff, long bytes) {
        if (n < 0) throw new IllegalArgumentException("negative element count " + n);
        if (off < 0 || off > array.length - n) {
            throw new IndexOutOfBoundsException("float range [" + off + ", " + off + " + " + n + ") is outside an array of "
                    + array.length);
        }
        if (byteOff < 0 || bytes > seg.byteSize() - byteOff) {
            throw new IndexOutOfBoundsException("byte range [" + byteOff + ", " + byteOff + " + " + bytes
                    + ") is outside a segment of " + seg.byteSize() + " bytes");
        }
    }
}
