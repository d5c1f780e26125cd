package io.moe4j.tensor.quant;

import io.moe4j.tensor.DType;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

/** Codecs against hand-derived GGML bytes, rounding corner cases and error bounds. */
class QuantCodecTest {

    private static byte[] bytes(MemorySegment s) {
        return s.toArray(ValueLayout.JAVA_BYTE);
    }

    // ------------------------------------------------------------------ Q8_0

    @Test
    void q8_0GoldenBlock() {
        // amax = 127 → d = 1.0 exactly (fp16 0x3C00, stored 00 3C); id = 1, so q = roundf(x)
        float[] x = new float[32];
        x[0] = 127; x[1] = -127;
        x[2] = 2.5f; x[3] = -2.5f;             // ties: roundf goes away from zero (Math.round would give -2)
        for (int j = 4; j < 32; j++) x[j] = j - 16; // -12..15
        MemorySegment out = MemorySegment.ofArray(new byte[34]);
        Quant.quantize(DType.Q8_0, x, 0, out, 0, 32);

        byte[] expected = new byte[34];
        expected[0] = 0x00; expected[1] = 0x3C;
        expected[2] = 127; expected[3] = -127; expected[4] = 3; expected[5] = -3;
        for (int j = 4; j < 32; j++) expected[2 + j] = (byte) (j - 16);
        assertThat(bytes(out)).containsExactly(expected);
    }

    @Test
    void q8_0DequantizesKnownBytes() {
        byte[] blk = new byte[34];
        blk[0] = 0x00; blk[1] = 0x38; // fp16 0x3800 = 0.5
        for (int j = 0; j < 32; j++) blk[2 + j] = (byte) (j % 2 == 0 ? j : -j);
        blk[2 + 31] = -128;           // a value the reference quantizer never writes, but the format allows
        float[] y = new float[32];
        Quant.dequantize(DType.Q8_0, MemorySegment.ofArray(blk), 0, y, 0, 32);
        for (int j = 0; j < 31; j++) assertThat(y[j]).isEqualTo((j % 2 == 0 ? j : -j) * 0.5f);
        assertThat(y[31]).isEqualTo(-64f);
    }

    @Test
    void q8_0RoundTripErrorWithinHalfAStep() {
        SplittableRandom rnd = new SplittableRandom(42);
        int n = 32 * 200;
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) (rnd.nextGaussian() * Math.exp(rnd.nextDouble(-8, 4)));
        MemorySegment q = MemorySegment.ofArray(new byte[(int) DType.Q8_0.byteSize(n)]);
        Quant.quantize(DType.Q8_0, x, 0, q, 0, n);
        float[] y = new float[n];
        Quant.dequantize(DType.Q8_0, q, 0, y, 0, n);
        for (int b = 0; b < n / 32; b++) {
            float amax = 0;
            for (int j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[32 * b + j]));
            float d = amax / 127f, d16 = Fp16.round(d);
            // half a step, plus what rounding d to fp16 moves the largest quant (127) by
            double bound = 0.5 * d + 127 * Math.abs(d16 - d) + 1e-6 * amax;
            for (int j = 0; j < 32; j++) assertThat((double) Math.abs(x[32 * b + j] - y[32 * b + j])).isLessThanOrEqualTo(bound);
        }
    }

    @Test
    void q8_0AllZeroBlock() {
        MemorySegment q = MemorySegment.ofArray(new byte[34]);
        q.fill((byte) 0x55);
        Quant.quantize(DType.Q8_0, new float[32], 0, q, 0, 32);
        assertThat(bytes(q)).containsOnly((byte) 0);
        float[] y = new float[32];
        Quant.dequantize(DType.Q8_0, q, 0, y, 0, 32);
        assertThat(y).containsOnly(0f);
    }

    // ------------------------------------------------------------------ Q4_0

    @Test
    void q4_0GoldenBlockNibbleLayout() {
        // max = -8 (first of the largest magnitudes) → d = -8 / -8 = 1.0 (00 3C); q = min(15, (int8)(x + 8.5))
        float[] x = new float[32];
        x[0] = -8;                                  // q = 0
        for (int j = 1; j < 16; j++) x[j] = j - 8;  // q = j
        for (int j = 0; j < 16; j++) x[16 + j] = 7 - j; // q = 15 - j (x[31] = -8 ties in magnitude, not first)
        MemorySegment out = MemorySegment.ofArray(new byte[18]);
        Quant.quantize(DType.Q4_0, x, 0, out, 0, 32);

        byte[] expected = new byte[18];
        expected[0] = 0x00; expected[1] = 0x3C;
        for (int j = 0; j < 16; j++) expected[2 + j] = (byte) (j | (15 - j) << 4); // element j low, j+16 high
        assertThat(bytes(out)).containsExactly(expected);

        float[] y = new float[32];
        Quant.dequantize(DType.Q4_0, out, 0, y, 0, 32);
        assertThat(y).containsExactly(x);
    }

    @Test
    void q4_0PositiveMaxGivesNegativeScale() {
        float[] x = new float[32];
        x[5] = 8; x[20] = -4; x[21] = 1;
        MemorySegment out = MemorySegment.ofArray(new byte[18]);
        Quant.quantize(DType.Q4_0, x, 0, out, 0, 32);
        // d = 8 / -8 = -1 → fp16 0xBC00; x=8 → q=0, x=-4 → q=12, x=1 → q=7, x=0 → q=8
        assertThat(out.get(ValueLayout.JAVA_SHORT_UNALIGNED, 0)).isEqualTo((short) 0xBC00);
        assertThat(out.get(ValueLayout.JAVA_BYTE, 2 + 5)).isEqualTo((byte) 0x70);  // lo 0 (x5 = 8), hi 7 (x21 = 1)
        assertThat(out.get(ValueLayout.JAVA_BYTE, 2 + 4)).isEqualTo((byte) 0xC8);  // lo 8 (x4 = 0), hi 12 (x20 = -4)
        float[] y = new float[32];
        Quant.dequantize(DType.Q4_0, out, 0, y, 0, 32);
        for (int j = 0; j < 32; j++) assertThat(y[j]).isCloseTo(x[j], within(0f)); // zeros come back as -0.0 (d < 0)
    }

    @Test
    void q4_0RoundTripErrorWithinAStep() {
        SplittableRandom rnd = new SplittableRandom(43);
        int n = 32 * 200;
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) rnd.nextGaussian();
        MemorySegment q = MemorySegment.ofArray(new byte[(int) DType.Q4_0.byteSize(n)]);
        Quant.quantize(DType.Q4_0, x, 0, q, 0, n);
        float[] y = new float[n];
        Quant.dequantize(DType.Q4_0, q, 0, y, 0, n);
        for (int b = 0; b < n / 32; b++) {
            float amax = 0, max = 0;
            for (int j = 0; j < 32; j++) {
                float v = x[32 * b + j];
                if (amax < Math.abs(v)) { amax = Math.abs(v); max = v; }
            }
            float d = max / -8f, d16 = Fp16.round(d);
            double bound = Math.abs(d) + 8 * Math.abs(d16 - d) + 1e-6 * amax;
            for (int j = 0; j < 32; j++) assertThat((double) Math.abs(x[32 * b + j] - y[32 * b + j])).isLessThanOrEqualTo(bound);
        }
    }

    @Test
    void q4_0AllZeroBlock() {
        MemorySegment q = MemorySegment.ofArray(new byte[18]);
        Quant.quantize(DType.Q4_0, new float[32], 0, q, 0, 32);
        // d = 0.0f / -8 = -0.0 (fp16 0x8000, as ggml stores it), id = 0 → every q = (int8)(8.5) = 8 → bytes 0x88
        assertThat(q.get(ValueLayout.JAVA_SHORT_UNALIGNED, 0)).isEqualTo((short) 0x8000);
        for (int j = 0; j < 16; j++) assertThat(q.get(ValueLayout.JAVA_BYTE, 2 + j)).isEqualTo((byte) 0x88);
        float[] y = new float[32];
        Quant.dequantize(DType.Q4_0, q, 0, y, 0, 32);
        assertThat(y).containsOnly(-0f);
    }

    // ------------------------------------------------------------------ F16 / BF16

    @Test
    void fp16Rounding() {
        assertThat(Fp16.encode(1f)).isEqualTo((short) 0x3C00);
        assertThat(Fp16.encode(1f + 0x1p-11f)).isEqualTo((short) 0x3C00);      // tie → even (down)
        assertThat(Fp16.encode(1f + 3 * 0x1p-11f)).isEqualTo((short) 0x3C02);  // tie → even (up)
        assertThat(Fp16.encode(65504f)).isEqualTo((short) 0x7BFF);
        assertThat(Fp16.encode(65519f)).isEqualTo((short) 0x7BFF);
        assertThat(Fp16.encode(65520f)).isEqualTo((short) 0x7C00);             // overflow → inf
        assertThat(Fp16.encode(-1e10f)).isEqualTo((short) 0xFC00);
        assertThat(Fp16.encode(0x1p-24f)).isEqualTo((short) 0x0001);           // smallest subnormal
        assertThat(Fp16.encode(0x1p-25f)).isEqualTo((short) 0x0000);           // tie → even (zero)
        assertThat(Fp16.encode(3 * 0x1p-25f)).isEqualTo((short) 0x0002);      // tie → even
        assertThat(Fp16.encode(-0f)).isEqualTo((short) 0x8000);
        assertThat(Fp16.encode(Float.NaN)).isEqualTo((short) 0x7E00);
        assertThat(Fp16.encode(Float.intBitsToFloat(0xFF800001))).isEqualTo((short) 0xFE00);
        assertThat(Fp16.decode((short) 0x0001)).isEqualTo(0x1p-24f);
        assertThat(Fp16.decode((short) 0xC000)).isEqualTo(-2f);
        assertThat(Fp16.decode((short) 0x7C00)).isEqualTo(Float.POSITIVE_INFINITY);
    }

    @Test
    void bf16RoundingLikeGgml() {
        assertThat(Bf16.encode(1f)).isEqualTo((short) 0x3F80);
        assertThat(Bf16.encode(1f + 0x1p-8f)).isEqualTo((short) 0x3F80);      // tie → even (down)
        assertThat(Bf16.encode(1f + 3 * 0x1p-8f)).isEqualTo((short) 0x3F82);  // tie → even (up)
        assertThat(Bf16.encode(Float.MAX_VALUE)).isEqualTo((short) 0x7F80);   // rounds up to inf
        assertThat(Bf16.encode(Float.NEGATIVE_INFINITY)).isEqualTo((short) 0xFF80);
        assertThat(Bf16.encode(Float.MIN_VALUE)).isEqualTo((short) 0x0000);   // subnormals round, not flush
        assertThat(Bf16.encode(Float.intBitsToFloat(0x00018000))).isEqualTo((short) 0x0002);
        assertThat(Bf16.encode(Float.intBitsToFloat(0x00008001))).isEqualTo((short) 0x0001);
        assertThat(Bf16.encode(Float.NaN)).isEqualTo((short) 0x7FC0);
        assertThat(Bf16.encode(Float.intBitsToFloat(0x7F800001))).isEqualTo((short) 0x7FC0); // signalling → quiet
        assertThat(Bf16.encode(Float.intBitsToFloat(0xFFA50000))).isEqualTo((short) 0xFFE5);
        assertThat(Bf16.decode((short) 0xC040)).isEqualTo(-3f);
    }

    @Test
    void floatFormatsRoundTripThroughSegments() {
        try (Arena arena = Arena.ofConfined()) {
            float[] x = {1.5f, -2.25f, 65504f, 0x1p-24f, 3.0e38f, -0f, 7f};
            for (DType t : new DType[] {DType.F32, DType.F16, DType.BF16}) {
                MemorySegment s = arena.allocate(t.byteSize(x.length) + 3);
                Quant.quantize(t, x, 0, s, 3, x.length);
                float[] y = new float[x.length + 1];
                Quant.dequantize(t, s, 3, y, 1, x.length);
                for (int i = 0; i < x.length; i++) {
                    float expected = switch (t) {
                        case F16 -> Fp16.round(x[i]);
                        case BF16 -> Bf16.round(x[i]);
                        default -> x[i];
                    };
                    assertThat(y[i + 1]).as("%s %s", t, x[i]).isEqualTo(expected);
                }
            }
        }
    }

    // ------------------------------------------------------------------ errors

    @Test
    void rejectsPartialBlocksAndShortSegments() {
        MemorySegment big = MemorySegment.ofArray(new byte[1000]);
        assertThatThrownBy(() -> Quant.quantize(DType.Q8_0, new float[40], 0, big, 0, 40))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("multiple of 32");
        assertThatThrownBy(() -> Quant.dequantize(DType.Q4_0, big, 0, new float[48], 0, 48))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("multiple of 32");
        assertThatThrownBy(() -> Quant.quantize(DType.Q8_0, new float[64], 0, MemorySegment.ofArray(new byte[67]), 0, 64))
                .isInstanceOf(IndexOutOfBoundsException.class).hasMessageContaining("segment of 67 bytes");
        assertThatThrownBy(() -> Quant.dequantize(DType.F16, big, 990, new float[8], 0, 8))
                .isInstanceOf(IndexOutOfBoundsException.class);
        assertThatThrownBy(() -> Quant.quantize(DType.F32, new float[4], 2, big, 0, 4))
                .isInstanceOf(IndexOutOfBoundsException.class);
    }
}
