package io.moe4j.tensor.quant;

import io.moe4j.tensor.DType;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Q4_K, Q6_K and Q8_K codecs: decoders on hand-built blocks and against a second formula written here, quantizers
 * on blocks whose bytes can be derived by hand, against ggml's reference quantizers (hashes of their output on a
 * deterministic input, see {@link #matchesGgmlReferenceQuantizers}), and round-trip error bounds.
 */
class KQuantCodecTest {

    private static short h(float f) { return Float.floatToFloat16(f); }

    // ------------------------------------------------------------------ Q4_K decoder

    /**
     * d = 1, dmin = 0.5; sub-block scales 1, 2, 3, 63 | 33, 16, 5, 47 and mins 0, 7, 63, 1 | 50, 15, 32, 2. Bytes by
     * hand from the packing: scales[0..3] = low 6 bits of sc0..3 + bits 4-5 of sc4..7 in bits 6-7; scales[4..7] =
     * m0..3 + bits 4-5 of m4..7 in bits 6-7; scales[8..11] = low nibble of sc4..7 | low nibble of m4..7 << 4.
     */
    @Test
    void q4_KDecodesHandBuiltBlock() {
        int[] sc = {1, 2, 3, 63, 33, 16, 5, 47}, m = {0, 7, 63, 1, 50, 15, 32, 2};
        byte[] blk = new byte[144];
        blk[0] = 0x00; blk[1] = 0x3C;           // d = 1.0
        blk[2] = 0x00; blk[3] = 0x38;           // dmin = 0.5
        // sc4 = 33 = 0b10_0001: high bits 2 → scales[0] = 1 | 2<<6 = 0x81; sc5 = 16 → 1 → scales[1] = 2 | 0x40 = 0x42
        // sc6 = 5 → 0 → scales[2] = 3; sc7 = 47 = 0b10_1111 → 2 → scales[3] = 63 | 0x80 = 0xBF
        blk[4] = (byte) 0x81; blk[5] = 0x42; blk[6] = 0x03; blk[7] = (byte) 0xBF;
        // m4 = 50 = 0b11_0010 → 3 → scales[4] = 0 | 0xC0; m5 = 15 → 0 → 7; m6 = 32 → 2 → 63 | 0x80 = 0xBF; m7 = 2 → 1
        blk[8] = (byte) 0xC0; blk[9] = 0x07; blk[10] = (byte) 0xBF; blk[11] = 0x01;
        // scales[8..11] = (sc & 15) | (m & 15) << 4: 33,50 → 0x21; 16,15 → 0xF0; 5,32 → 0x05; 47,2 → 0x2F
        blk[12] = 0x21; blk[13] = (byte) 0xF0; blk[14] = 0x05; blk[15] = 0x2F;
        for (int i = 0; i < 128; i++) blk[16 + i] = (byte) (i * 37 + 11);
        for (int j = 0; j < 8; j++) {
            assertThat(Q4_K.scale(blk, 4, j)).as("sc%d", j).isEqualTo(sc[j]);
            assertThat(Q4_K.min(blk, 4, j)).as("m%d", j).isEqualTo(m[j]);
        }
        float[] y = new float[256];
        Quant.dequantize(DType.Q4_K, MemorySegment.ofArray(blk), 0, y, 0, 256);
        for (int e = 0; e < 256; e++) {
            int j = e / 32, b = (e / 64) * 32 + e % 32;             // sub-block; byte holding the element
            int q = ((blk[16 + b] & 0xff) >> (j % 2 == 0 ? 0 : 4)) & 15;
            assertThat(y[e]).as("e=%d", e).isEqualTo(1f * sc[j] * q - 0.5f * m[j]); // exact: small dyadic numbers
        }
    }

    /** Random bytes (finite fp16 factors), decoded by a second, element-wise formula written from the format. */
    @Test
    void kQuantDecodersMatchElementwiseFormula() {
        SplittableRandom rnd = new SplittableRandom(9);
        int nb = 12;
        for (DType t : new DType[] {DType.Q4_K, DType.Q6_K}) {
            byte[] raw = new byte[nb * t.bytesPerBlock()];
            for (int i = 0; i < raw.length; i++) raw[i] = (byte) rnd.nextInt();
            ByteBuffer bb = ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN);
            for (int b = 0; b < nb; b++) {
                int o = b * t.bytesPerBlock();
                if (t == DType.Q4_K) {
                    bb.putShort(o, h((float) rnd.nextDouble(-2, 2)));
                    bb.putShort(o + 2, h((float) rnd.nextDouble(0, 1)));
                } else {
                    bb.putShort(o + 208, h((float) rnd.nextDouble(-0.1, 0.1)));
                }
            }
            float[] y = new float[nb * 256];
            Quant.dequantize(t, MemorySegment.ofArray(raw), 0, y, 0, y.length);
            for (int b = 0; b < nb; b++) {
                int o = b * t.bytesPerBlock();
                for (int e = 0; e < 256; e++) {
                    float expected;
                    if (t == DType.Q4_K) {
                        float d = Float.float16ToFloat(bb.getShort(o)), dmin = Float.float16ToFloat(bb.getShort(o + 2));
                        int j = e / 32;
                        int[] s = new int[12];
                        for (int i = 0; i < 12; i++) s[i] = raw[o + 4 + i] & 0xff;
                        int sc = j < 4 ? s[j] & 63 : (s[j + 4] & 15) | (s[j - 4] >> 6) << 4;
                        int mn = j < 4 ? s[j + 4] & 63 : (s[j + 4] >> 4) | (s[j] >> 6) << 4;
                        int byteAt = o + 16 + 32 * (e / 64) + e % 32;
                        int q = (j & 1) == 0 ? raw[byteAt] & 15 : (raw[byteAt] & 0xff) >> 4;
                        expected = d * sc * q - dmin * mn;
                    } else {
                        float d = Float.float16ToFloat(bb.getShort(o + 208));
                        int half = e / 128, r = e % 128, l = r % 32, quarter = r / 32;
                        int lowByte = raw[o + 64 * half + (quarter == 1 || quarter == 3 ? 32 : 0) + l] & 0xff;
                        int low = quarter < 2 ? lowByte & 15 : lowByte >> 4;
                        int high = (raw[o + 128 + 32 * half + l] & 0xff) >> (2 * quarter) & 3;
                        expected = d * raw[o + 192 + e / 16] * ((low | high << 4) - 32);
                    }
                    assertThat(y[256 * b + e]).as("%s block %d e %d", t, b, e).isEqualTo(expected);
                }
            }
        }
    }

    // ------------------------------------------------------------------ Q6_K decoder

    /** d = 0.25, scales 1..16 (sub-block 3 = −5); quants chosen per element, packed by hand into ql / qh. */
    @Test
    void q6_KDecodesHandBuiltBlock() {
        int[] q = new int[256];
        for (int e = 0; e < 256; e++) q[e] = (e * 29 + 7) % 64;
        q[0] = 0; q[1] = 63; q[255] = 32;
        byte[] blk = new byte[210];
        for (int half = 0; half < 2; half++) {
            for (int l = 0; l < 32; l++) {
                int e = 128 * half + l;
                blk[64 * half + l] = (byte) ((q[e] & 15) | (q[e + 64] & 15) << 4);
                blk[64 * half + 32 + l] = (byte) ((q[e + 32] & 15) | (q[e + 96] & 15) << 4);
                blk[128 + 32 * half + l] = (byte) (q[e] >> 4 | (q[e + 32] >> 4) << 2 | (q[e + 64] >> 4) << 4 | (q[e + 96] >> 4) << 6);
            }
        }
        for (int s = 0; s < 16; s++) blk[192 + s] = (byte) (s + 1);
        blk[192 + 3] = -5;
        blk[208] = 0x00; blk[209] = 0x34;                    // fp16 0x3400 = 0.25
        for (int e = 0; e < 256; e++) assertThat(Q6_K.quant(blk, 0, e)).isEqualTo(q[e]);
        float[] y = new float[256];
        Quant.dequantize(DType.Q6_K, MemorySegment.ofArray(blk), 0, y, 0, 256);
        for (int e = 0; e < 256; e++) assertThat(y[e]).as("e=%d", e).isEqualTo(0.25f * blk[192 + e / 16] * (q[e] - 32));
        assertThat(y[0]).isEqualTo(-8f);     // q 0 → −32 · 0.25 · scale 1
        assertThat(y[1]).isEqualTo(7.75f);   // q 63 → 31 · 0.25
    }

    // ------------------------------------------------------------------ quantizers, by hand

    /**
     * Every sub-block holds 0..15 twice: min 0, max 15, the first candidate (iscale = 1) fits exactly (error 0,
     * no later candidate is strictly better). All scales 1 → 6-bit 63, mins 0; d = fp16(1/63), dmin = 0; the
     * re-quantization with d·63 ≈ 1 gives back q = x.
     */
    @Test
    void q4_KQuantizesExactIntegersByHand() {
        float[] x = new float[256];
        for (int e = 0; e < 256; e++) x[e] = e % 16;
        byte[] out = new byte[144];
        Q4_K.quantizeBlock(x, 0, out, 0);
        byte[] expected = new byte[144];
        short d = h(1f / 63f);
        expected[0] = (byte) d; expected[1] = (byte) (d >> 8);
        for (int j = 0; j < 4; j++) expected[4 + j] = (byte) (63 | (63 >> 4) << 6);   // sc_j = 63, high bits of sc_{j+4}
        for (int j = 0; j < 4; j++) expected[12 + j] = 0x0F;                         // low nibble of sc_{j+4}, m = 0
        for (int c = 0; c < 4; c++) for (int l = 0; l < 32; l++) expected[16 + 32 * c + l] = (byte) ((l % 16) * 0x11);
        assertThat(out).containsExactly(expected);
    }

    /**
     * Integers in [−32, 31], each sub-block led by −32: make_qx_quants' first candidate (iscale = −32/−32 = 1)
     * reproduces them exactly (scale 1); iscale = −128 → d = fp16(−1/128) = 0xA000, every scale −128 (0x80),
     * d·scale = 1, stored quant = x + 32.
     */
    @Test
    void q6_KQuantizesExactIntegersByHand() {
        float[] x = new float[256];
        for (int e = 0; e < 256; e++) x[e] = e % 16 == 0 ? -32 : (e * 7) % 63 - 31;
        byte[] out = new byte[210];
        Q6_K.quantizeBlock(x, 0, out, 0);
        byte[] expected = new byte[210];
        for (int half = 0; half < 2; half++) {
            for (int l = 0; l < 32; l++) {
                int e = 128 * half + l;
                int q1 = (int) x[e] + 32, q2 = (int) x[e + 32] + 32, q3 = (int) x[e + 64] + 32, q4 = (int) x[e + 96] + 32;
                expected[64 * half + l] = (byte) ((q1 & 15) | (q3 & 15) << 4);
                expected[64 * half + 32 + l] = (byte) ((q2 & 15) | (q4 & 15) << 4);
                expected[128 + 32 * half + l] = (byte) (q1 >> 4 | (q2 >> 4) << 2 | (q3 >> 4) << 4 | (q4 >> 4) << 6);
            }
        }
        for (int s = 0; s < 16; s++) expected[192 + s] = (byte) 0x80;
        expected[208] = 0x00; expected[209] = (byte) 0xA0;
        assertThat(out).containsExactly(expected);
        float[] y = new float[256];
        Quant.dequantize(DType.Q6_K, MemorySegment.ofArray(out), 0, y, 0, 256);
        assertThat(y).containsExactly(x);
    }

    @Test
    void q8_KSignConventionAndBsums() {
        float[] x = new float[256];
        for (int j = 0; j < 256; j++) x[j] = (j % 5) - 2;   // -2..2
        x[17] = 4;                                           // the max is positive → d = 1/(−127/4) < 0
        x[99] = -4;                                          // same magnitude, later: not chosen
        short[] qs = new short[256], bsums = new short[16];
        float d = Q8_K.quantizeBlock(x, 0, qs, 0, bsums, 0);
        assertThat(d).isEqualTo(1f / (-127f / 4f)).isNegative();
        assertThat(qs[17]).isEqualTo((short) -127);
        assertThat(qs[99]).isEqualTo((short) 127);
        assertThat(qs[1]).isEqualTo((short) 32);            // x = −1: iscale·x = 31.75 → 32
        for (int g = 0; g < 16; g++) {
            int s = 0;
            for (int j = 0; j < 16; j++) s += qs[16 * g + j];
            assertThat(bsums[g]).isEqualTo((short) s);
        }
        for (int j = 0; j < 256; j++) assertThat(Math.abs(qs[j] * d - x[j])).isLessThanOrEqualTo(Math.abs(d) / 2 + 1e-6f);
        assertThat(Q8_K.quantizeBlock(new float[256], 0, qs, 0, bsums, 0)).isZero();
        assertThat(qs).containsOnly((short) 0);
    }

    @Test
    void nearestIntRoundsTiesToEven() {
        assertThat(Q8_K.nearestInt(2.5f)).isEqualTo(2);
        assertThat(Q8_K.nearestInt(3.5f)).isEqualTo(4);
        assertThat(Q8_K.nearestInt(-2.5f)).isEqualTo(-2);
        assertThat(Q8_K.nearestInt(-2.6f)).isEqualTo(-3);
        assertThat(Q8_K.nearestInt(4194303f)).isEqualTo(4194303);
        assertThat(Q8_K.nearestInt(-4194303f)).isEqualTo(-4194303);
    }

    // ------------------------------------------------------------------ against ggml

    /** The input of the ggml oracle run: an integer hash mapped to floats exactly (no libm), same in C. */
    static float gen(int i, int seed) {
        int hh = i * (int) 2654435761L + seed * 40503;
        hh ^= hh >>> 15;
        hh *= (int) 2246822519L;
        hh ^= hh >>> 13;
        float u = (float) (hh >>> 8) * (1f / 16777216f) - 0.5f;
        int e = ((hh >>> 3) & 7) - 4;
        float s = Math.scalb(1f, e);
        if ((i / 256) % 4 == 3) s = Math.scalb(1f, (i / 256) % 8 - 6);
        return u * s + ((seed & 1) != 0 && i % 32 < 4 ? 0.75f : 0f);
    }

    private static long fnv(long h, byte[] bytes) {
        for (byte b : bytes) {
            h ^= b & 0xff;
            h *= 1099511628211L;
        }
        return h;
    }

    /**
     * Bit-exactness with ggml: FNV-1a hashes of the Q4_K, Q6_K and Q8_K blocks ggml's {@code quantize_row_q4_K_ref},
     * {@code quantize_row_q6_K_ref} and {@code quantize_row_q8_K_ref} wrote for 4 × 64 super-blocks of
     * {@link #gen} (mixed scales, offsets, an all-zero block, a nearly-all-zero block). Produced from the
     * ggml-quants.c functions compiled with {@code gcc -O2 -ffp-contract=off} on x86-64. (With
     * {@code -march=native -ffp-contract=fast}, GCC fuses multiply-adds and Q4_K's hash becomes fd491de8d53bbdcc
     * — the search picks other candidates for some sub-blocks; Q6_K and Q8_K were unchanged on this input.)
     */
    @Test
    void matchesGgmlReferenceQuantizers() {
        int n = 256 * 64;
        long h4 = 0xcbf29ce484222325L, h6 = h4, h8 = h4;
        float[] x = new float[n];
        short[] qs = new short[256], bs = new short[16];
        for (int seed = 0; seed < 4; seed++) {
            for (int i = 0; i < n; i++) x[i] = gen(i, seed);
            if (seed == 3) {
                for (int i = 0; i < 256; i++) x[i] = 0;
                for (int i = 256; i < 512; i++) x[i] = i % 16 == 0 ? 1f : 0f;
            }
            MemorySegment q4 = MemorySegment.ofArray(new byte[64 * 144]), q6 = MemorySegment.ofArray(new byte[64 * 210]);
            Quant.quantize(DType.Q4_K, x, 0, q4, 0, n);
            Quant.quantize(DType.Q6_K, x, 0, q6, 0, n);
            h4 = fnv(h4, q4.toArray(ValueLayout.JAVA_BYTE));
            h6 = fnv(h6, q6.toArray(ValueLayout.JAVA_BYTE));
            ByteBuffer q8 = ByteBuffer.allocate(292).order(ByteOrder.LITTLE_ENDIAN);
            for (int b = 0; b < 64; b++) {
                float d = Q8_K.quantizeBlock(x, 256 * b, qs, 0, bs, 0);
                q8.clear();
                q8.putFloat(d);
                for (short v : qs) q8.put((byte) v);
                for (short v : bs) q8.putShort(v);
                h8 = fnv(h8, q8.array());
            }
        }
        assertThat(Long.toHexString(h4)).as("Q4_K").isEqualTo("c07b5a2882f7dcf6");
        assertThat(Long.toHexString(h6)).as("Q6_K").isEqualTo("7ee8366b8d727a89");
        assertThat(Long.toHexString(h8)).as("Q8_K").isEqualTo("19e107bde16446f1");
    }

    // ------------------------------------------------------------------ round trip

    @Test
    void roundTripErrorBounds() {
        SplittableRandom rnd = new SplittableRandom(44);
        int n = 256 * 64;
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) (rnd.nextGaussian() * Math.exp(rnd.nextDouble(-6, 3)) + (i % 512 < 256 ? 0 : 0.3));
        for (DType t : new DType[] {DType.Q4_K, DType.Q6_K}) {
            MemorySegment q = MemorySegment.ofArray(new byte[(int) t.byteSize(n)]);
            Quant.quantize(t, x, 0, q, 0, n);
            float[] y = new float[n];
            Quant.dequantize(t, q, 0, y, 0, n);
            double worstRel = 0;
            for (int sb = 0; sb < n / 256; sb++) { // per super-block: its scales are relative to its largest group
                double step = 0, err2 = 0, x2 = 0;
                for (int g = 0; g < 8; g++) {
                    float lo = Float.MAX_VALUE, hi = -Float.MAX_VALUE, amax = 0;
                    for (int j = 0; j < 32; j++) {
                        float v = x[256 * sb + 32 * g + j];
                        lo = Math.min(lo, v); hi = Math.max(hi, v); amax = Math.max(amax, Math.abs(v));
                    }
                    // Q4_K: 15 steps over [min(0, lo), hi]; Q6_K: 63 steps over [−amax, amax]
                    step = Math.max(step, t == DType.Q4_K ? (hi - Math.min(0, lo)) / 15 : 2 * amax / 63);
                }
                for (int j = 0; j < 256; j++) {
                    double e = x[256 * sb + j] - y[256 * sb + j];
                    // a step of the widest group, plus the 6-bit (Q4_K) / 8-bit (Q6_K) rounding of smaller groups' scales
                    assertThat(Math.abs(e)).as("%s super-block %d", t, sb).isLessThanOrEqualTo(1.25 * step);
                    err2 += e * e;
                    x2 += (double) x[256 * sb + j] * x[256 * sb + j];
                }
                worstRel = Math.max(worstRel, Math.sqrt(err2 / x2));
            }
            assertThat(worstRel).as(t + " worst relative RMS error of a super-block").isLessThan(t == DType.Q4_K ? 0.2 : 0.05);
        }
    }

    @Test
    void rejectsPartialSuperBlocks() {
        MemorySegment big = MemorySegment.ofArray(new byte[4096]);
        assertThatThrownBy(() -> Quant.quantize(DType.Q4_K, new float[288], 0, big, 0, 288))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("Q4_K stores whole blocks of 256 values; n = 288");
        assertThatThrownBy(() -> Quant.dequantize(DType.Q6_K, big, 0, new float[128], 0, 128))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("multiple of 256");
        assertThatThrownBy(() -> Quant.quantize(DType.Q6_K, new float[256], 0, MemorySegment.ofArray(new byte[209]), 0, 256))
                .isInstanceOf(IndexOutOfBoundsException.class);
    }
}
