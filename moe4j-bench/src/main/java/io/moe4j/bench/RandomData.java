package io.moe4j.bench;

import io.moe4j.tensor.DType;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.SplittableRandom;

/**
 * Fills benchmark buffers with reproducible random data of the right kind: F32 values in [-1, 1), and weight
 * matrices in any {@link DType} whose values are all finite (quantized blocks get random codes and a small valid
 * fp16 scale). The values carry no meaning; they only need to exercise the same code paths as real weights.
 *
 * <p>Non-goal: this is not a quantizer (see {@code io.moe4j.tensor.quant.Quant}).
 */
public final class RandomData {
    private RandomData() {}

    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** {@code count} floats in [-1, 1) at byte {@code off}. */
    public static void floats(MemorySegment seg, long off, long count, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        for (long i = 0; i < count; i++) seg.set(F32, off + i * Float.BYTES, (float) (r.nextDouble() * 2 - 1));
    }

    /** {@code elements} weights of type {@code t} (a whole number of blocks) at byte {@code off}. */
    public static void weights(DType t, MemorySegment seg, long off, long elements, long seed) {
        long bytes = t.byteSize(elements);
        SplittableRandom r = new SplittableRandom(seed);
        switch (t) {
            case F32 -> floats(seg, off, elements, seed);
            case F16 -> {
                for (long i = 0; i < elements; i++) {
                    seg.set(I16, off + 2 * i, Float.floatToFloat16((float) (r.nextDouble() * 2 - 1)));
                }
            }
            case BF16 -> {
                for (long i = 0; i < elements; i++) {
                    float f = (float) (r.nextDouble() * 2 - 1);
                    seg.set(I16, off + 2 * i, (short) (Float.floatToRawIntBits(f) >>> 16));
                }
            }
            case Q8_0, Q4_0 -> {
                long i = 0;
                for (; i + 8 <= bytes; i += 8) seg.set(I64, off + i, r.nextLong());
                for (; i < bytes; i++) seg.set(ValueLayout.JAVA_BYTE, off + i, (byte) r.nextInt());
                // Each block starts with its fp16 scale d: overwrite the random bits with a small finite value.
                long blocks = elements / t.blockSize();
                for (long b = 0; b < blocks; b++) {
                    float d = (float) (0.001 + 0.01 * r.nextDouble());
                    seg.set(I16, off + b * t.bytesPerBlock(), Float.floatToFloat16(d));
                }
            }
        }
    }
}
