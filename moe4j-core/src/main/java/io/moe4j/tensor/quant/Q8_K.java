package io.moe4j.tensor.quant;

/**
 * GGML's {@code Q8_K}: the activation format of the K-quant dot products ({@code vec_dot_type} of Q4_K and Q6_K).
 * Never stored in a model file, so it is no {@link io.moe4j.tensor.DType}; the kernels keep it unpacked.
 *
 * <pre>
 *   struct block_q8_K { float d; int8 qs[256]; int16 bsums[16]; }   // 292 bytes
 *   value[j] = qs[j] * d;   bsums[g] = Σ qs[16g .. 16g+15]
 * </pre>
 *
 * <p>The quantizer is ggml's {@code quantize_row_q8_K_ref}, bit for bit: take the value {@code max} of largest
 * magnitude (the first one, keeping its sign); {@code iscale = −127/max}; {@code qs[j] = min(127,
 * nearest_int(iscale·x[j]))}; {@code d = 1/iscale} kept in float (not fp16). So {@code d} is negative when
 * {@code max} is positive and the extreme value becomes −127 — ggml's sign convention (needed by its IQ2 AVX
 * kernels), harmless here since only the product {@code qs·d} matters. An all-zero block gets {@code d = 0}.
 *
 * <p>Also home of {@link #nearestInt}, the rounding every K-quant quantizer uses.
 */
public final class Q8_K {
    private Q8_K() {}

    public static final int BLOCK = 256;
    /** Quants per {@code bsums} entry. */
    public static final int GROUP = 16;

    /**
     * Quantizes the 256 floats at {@code x[xOff]} into {@code qs[qsOff..qsOff+255]} (as shorts, which the kernels
     * consume) and {@code bsums[bOff..bOff+15]}; returns {@code d}.
     */
    public static float quantizeBlock(float[] x, int xOff, short[] qs, int qsOff, short[] bsums, int bOff) {
        float max = 0f, amax = 0f;
        for (int j = 0; j < BLOCK; j++) {
            float ax = Math.abs(x[xOff + j]);
            if (ax > amax) {
                amax = ax;
                max = x[xOff + j];
            }
        }
        if (amax == 0f) {
            java.util.Arrays.fill(qs, qsOff, qsOff + BLOCK, (short) 0);
            java.util.Arrays.fill(bsums, bOff, bOff + BLOCK / GROUP, (short) 0);
            return 0f;
        }
        float iscale = -127f / max;
        for (int j = 0; j < BLOCK; j++) qs[qsOff + j] = (short) Math.min(127, nearestInt(iscale * x[xOff + j]));
        for (int g = 0; g < BLOCK / GROUP; g++) {
            int sum = 0;
            for (int j = 0; j < GROUP; j++) sum += qs[qsOff + GROUP * g + j];
            bsums[bOff + g] = (short) sum;
        }
        return 1f / iscale;
    }

    /**
     * ggml's {@code nearest_int}: adds 1.5·2^23 so that the float addition itself rounds to an integer (to nearest,
     * ties to even) and reads it back from the mantissa bits. Valid for |v| ≤ 4194303 (ggml asserts that); ties
     * go to even, unlike {@code roundf}.
     */
    public static int nearestInt(float v) {
        return (Float.floatToRawIntBits(v + 12582912f) & 0x007fffff) - 0x00400000;
    }
}
