package io.moe4j.infer;

/**
 * How RoPE angles are stretched for contexts longer than training, as llama.cpp computes them
 * ({@code llama_context} constructor, ggml's {@code rope_yarn}):
 * <ul>
 *   <li>{@link Type#NONE}: angle = pos · base^(−2i/d) / freqFactor_i.</li>
 *   <li>{@link Type#LINEAR}: angles × {@code freqScale} (= 1 / {@code rope.scaling.factor}): position interpolation.</li>
 *   <li>{@link Type#YARN}: per pair a mix of the interpolated and the original angle, ramping from extrapolation
 *       (fast-rotating pairs, below correction dim {@code corrLow}) to interpolation (slow pairs, above
 *       {@code corrHigh}); cos and sin are multiplied by {@code magnitude}.</li>
 * </ul>
 *
 * @param type        scaling kind ({@code rope.scaling.type})
 * @param freqScale   1 / factor (1 without scaling)
 * @param extFactor   YaRN's extrapolation mix (1 for YaRN, 0 otherwise)
 * @param attnFactor  llama.cpp's {@code yarn_attn_factor}: base magnitude of cos and sin
 * @param corrLow     first pair index that is (partly) interpolated, from beta_fast = 32
 * @param corrHigh    last pair index that is (partly) extrapolated, from beta_slow = 1
 */
public record RopeScaling(Type type, float freqScale, float extFactor, float attnFactor, float corrLow, float corrHigh) {
    public enum Type { NONE, LINEAR, YARN }

    static final float BETA_FAST = 32f, BETA_SLOW = 1f;

    public static RopeScaling none() { return new RopeScaling(Type.NONE, 1f, 0f, 1f, 0f, 0f); }

    /** cos/sin magnitude: the attention factor, times YaRN's 1 + 0.1·ln(factor) when extrapolation mixes in. */
    public float magnitude() {
        return extFactor != 0 ? attnFactor * (1f + 0.1f * (float) Math.log(1.0 / freqScale)) : attnFactor;
    }

    /**
     * llama.cpp's parameters for {@code type} with {@code factor} ({@code rope.scaling.factor}, 0 = 1),
     * {@code origContext} ({@code rope.scaling.original_context_length}), {@code ropeAttnFactor}
     * ({@code rope.scaling.attn_factor}, default 1) and DeepSeek-V2's {@code yarnLogMul} (0 unless set), for rotary
     * dimension {@code rotDim} and base {@code base}.
     */
    static RopeScaling of(Type type, float factor, int origContext, float ropeAttnFactor, float yarnLogMul, boolean deepseek,
                          int rotDim, float base) {
        if (type == Type.NONE) return new RopeScaling(Type.NONE, 1f, 0f, ropeAttnFactor, 0f, 0f);
        float freqScale = factor == 0 ? 1f : 1f / factor;
        float ext = type == Type.YARN ? 1f : 0f;
        float attn = 1f;   // hparams.yarn_attn_factor
        if (ext != 0) {
            float f = 1f / freqScale;
            if (yarnLogMul != 0) {
                float mscale = 1f, mscaleAll = yarnLogMul;
                if (deepseek && mscaleAll != 1f) mscale = mscaleAll;
                attn = mscale(f, mscale) / mscale(f, mscaleAll);
            } else {
                attn = mscale(f, 1f);
            }
            attn *= 1f / (1f + 0.1f * (float) Math.log(f));
        }
        attn *= ropeAttnFactor;
        float lo = 0, hi = 0;
        if (ext != 0) {
            lo = Math.max(0f, (float) Math.floor(corrDim(rotDim, origContext, BETA_FAST, base)));
            hi = Math.min(rotDim - 1, (float) Math.ceil(corrDim(rotDim, origContext, BETA_SLOW, base)));
        }
        return new RopeScaling(type, freqScale, ext, attn, lo, hi);
    }

    private static float mscale(float scale, float mscale) {
        return scale <= 1f ? 1f : 0.1f * mscale * (float) Math.log(scale) + 1f;
    }

    /** The dimension whose wavelength fits {@code rotations} times into the original context. */
    private static float corrDim(int nDims, int nCtxOrig, float rotations, float base) {
        return nDims * (float) Math.log(nCtxOrig / (rotations * 2 * (float) Math.PI)) / (2 * (float) Math.log(base));
    }

    /**
     * cos and sin tables in {@link io.moe4j.kernel.row.RowOps#rope}'s layout — (positions, rotDim/2), entry
     * {@code pos·rotDim/2 + i} — computed as ggml's {@code ggml_rope_cache_init} does, in float: θ starts at pos
     * and is multiplied by base^(−2/rotDim) per pair, divided by the pair's frequency factor (or null).
     */
    float[][] tables(int positions, int rotDim, float base, float[] freqFactors) {
        int half = rotDim / 2;
        float[] cos = new float[Math.multiplyExact(positions, half)], sin = new float[cos.length];
        float thetaScale = (float) Math.pow(base, -2.0f / rotDim);
        float mag = attnFactor;
        for (int p = 0; p < positions; p++) {
            float theta = p;
            for (int i = 0; i < half; i++) {
                float ff = freqFactors == null ? 1f : freqFactors[i];
                float extrap = theta / ff, interp = freqScale * extrap, t = interp, m = mag;
                if (extFactor != 0) {
                    float y = (i - corrLow) / Math.max(0.001f, corrHigh - corrLow);
                    float ramp = (1 - Math.min(1, Math.max(0, y))) * extFactor;
                    t = interp * (1 - ramp) + extrap * ramp;
                    m *= 1f + 0.1f * (float) Math.log(1.0f / freqScale);
                }
                cos[p * half + i] = (float) Math.cos(t) * m;
                sin[p * half + i] = (float) Math.sin(t) * m;
                theta *= thetaScale;
            }
        }
        return new float[][]{cos, sin};
    }
}
