package io.moe4j.moe.router;

import io.moe4j.moe.NonFiniteException;

/**
 * Small per-row helpers shared by routers: finite checks, softmax and top-k on heap rows of E scores.
 * E is small (8…256), so these are plain loops; the expert GEMMs dominate the layer's cost.
 */
public final class RouterMath {
    private RouterMath() {}

    /** Throws a {@link NonFiniteException} naming layer, token and expert if any logit is NaN or ±Inf. */
    public static void requireFinite(float[] logits, int t, int e, int layer) {
        for (int i = 0; i < t * e; i++) {
            if (!Float.isFinite(logits[i])) {
                throw new NonFiniteException("layer " + layer + ": router logit " + logits[i] + " at token " + (i / e)
                        + ", expert " + (i % e) + " (the MoE input or the router weights contain NaN/Inf)");
            }
        }
    }

    /** out[off..off+n) = softmax(in[off..off+n)), max-shifted, sums in double. */
    public static void softmax(float[] in, float[] out, int off, int n) {
        float max = Float.NEGATIVE_INFINITY;
        for (int j = 0; j < n; j++) max = Math.max(max, in[off + j]);
        double sum = 0;
        for (int j = 0; j < n; j++) sum += Math.exp(in[off + j] - max);
        for (int j = 0; j < n; j++) out[off + j] = (float) (Math.exp(in[off + j] - max) / sum);
    }

    /** dz = p ⊙ (dp − ⟨dp, p⟩) over one row, accumulated into dz. */
    public static void softmaxBackward(float[] p, float[] dp, float[] dz, int off, int n) {
        double dot = 0;
        for (int j = 0; j < n; j++) dot += (double) dp[off + j] * p[off + j];
        for (int j = 0; j < n; j++) dz[off + j] += (float) (p[off + j] * (dp[off + j] - dot));
    }

    /**
     * Indices of the k largest of row[off..off+n) into idx[0..k), descending, ties → lower index, NaN last.
     * Selection by repeated scans: O(n·k), fine for router widths.
     */
    public static void topK(float[] row, int off, int n, int k, int[] idx) {
        for (int r = 0; r < k; r++) {
            int best = -1;
            float bv = 0;
            for (int j = 0; j < n; j++) {
                if (taken(idx, r, j)) continue;
                float v = row[off + j];
                if (best < 0 || greater(v, bv)) {
                    best = j;
                    bv = v;
                }
            }
            idx[r] = best;
        }
    }

    /** a ranks strictly above b (NaN ranks below everything). Equal values keep the earlier (lower) index. */
    private static boolean greater(float a, float b) {
        if (Float.isNaN(a)) return false;
        if (Float.isNaN(b)) return true;
        return a > b;
    }

    private static boolean taken(int[] idx, int r, int j) {
        for (int i = 0; i < r; i++) if (idx[i] == j) return true;
        return false;
    }

    /**
     * Backward of top-k weights taken from the scores: w_j = scale · v_j / (Σ v + eps) when {@code normalize},
     * else scale · v_j, with v_j = scores[off + expert[s0 + j]]. Accumulates ∂L/∂v into {@code dScores} (spec
     * §3.9 rule 3): {@code ∂L/∂v_i = scale·(∂L/∂w_i − Σ_j ŵ_j ∂L/∂w_j)/Σv}, ŵ the unscaled normalised weights.
     */
    public static void topKWeightsBackward(float[] scores, int off, int[] expert, int s0, int k, float[] dWeight,
                                           boolean normalize, float scale, double eps, float[] dScores) {
        if (!normalize) {
            for (int j = 0; j < k; j++) dScores[off + expert[s0 + j]] += scale * dWeight[s0 + j];
            return;
        }
        double sum = eps, dot = 0;
        for (int j = 0; j < k; j++) sum += scores[off + expert[s0 + j]];
        for (int j = 0; j < k; j++) dot += dWeight[s0 + j] * (scores[off + expert[s0 + j]] / sum);
        for (int j = 0; j < k; j++) {
            dScores[off + expert[s0 + j]] += (float) (scale * (dWeight[s0 + j] - dot) / sum);
        }
    }
}
