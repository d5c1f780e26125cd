package io.moe4j.infer;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The sampler's filters against hand-computed distributions, and its draws against the softmax. */
class SamplerTest {
    private static final float[] LOGITS = {1f, 3f, -2f, 2.5f, 0f, 3f, -1f};   // ids 1 and 5 tie at the top

    @Test
    void greedyIsTheArgmaxLowestIdOnTies() {
        Sampler s = new Sampler(Sampler.Params.greedy(), LOGITS.length);
        assertThat(s.sample(LOGITS, new int[0], 0)).isEqualTo(1);
        // top-k 1 at any temperature is greedy too
        Sampler k1 = new Sampler(new Sampler.Params(5f, 1, 1f, 0f, 1f, 0, 3), LOGITS.length);
        for (int i = 0; i < 20; i++) assertThat(k1.sample(LOGITS, new int[0], 0)).isEqualTo(1);
    }

    @Test
    void drawsFollowTheSoftmaxAtTheTemperature() {
        float t = 0.7f;
        Sampler s = new Sampler(new Sampler.Params(t, 0, 1f, 0f, 1f, 0, 42), LOGITS.length);
        int n = 200_000;
        int[] count = new int[LOGITS.length];
        for (int i = 0; i < n; i++) count[s.sample(LOGITS, new int[0], 0)]++;
        double z = 0;
        for (float l : LOGITS) z += Math.exp(l / t);
        for (int i = 0; i < LOGITS.length; i++) {
            double p = Math.exp(LOGITS[i] / t) / z, sd = Math.sqrt(p * (1 - p) / n);
            assertThat((double) count[i] / n).as("id %d", i).isCloseTo(p, org.assertj.core.data.Offset.offset(5 * sd + 1e-4));
        }
    }

    @Test
    void topPAndMinPCutTheTail() {
        // probabilities at temperature 1, sorted: ids 1,5 (e^3 each), 3 (e^2.5), 0 (e^1), 4, 6, 2
        double z = 0;
        for (float l : LOGITS) z += Math.exp(l);
        double p1 = Math.exp(3) / z;           // ≈ 0.33 each for ids 1 and 5
        // top-p just above two tokens' mass keeps exactly three (1, 5, 3)
        float topP = (float) (2 * p1 + 1e-3);
        assertThat(support(new Sampler.Params(1f, 0, topP, 0f, 1f, 0, 1))).containsExactlyInAnyOrder(1, 3, 5);
        // min-p 0.5: e^2.5 / e^3 = 0.61 stays, e^1 / e^3 = 0.14 goes
        assertThat(support(new Sampler.Params(1f, 0, 1f, 0.5f, 1f, 0, 1))).containsExactlyInAnyOrder(1, 3, 5);
        assertThat(support(new Sampler.Params(1f, 2, 1f, 0f, 1f, 0, 1))).containsExactlyInAnyOrder(1, 5);
    }

    private static java.util.Set<Integer> support(Sampler.Params p) {
        Sampler s = new Sampler(p, LOGITS.length);
        java.util.Set<Integer> seen = new java.util.TreeSet<>();
        for (int i = 0; i < 5000; i++) seen.add(s.sample(LOGITS, new int[0], 0));
        return seen;
    }

    @Test
    void repetitionPenaltyDividesPositiveAndMultipliesNegativeLogitsOnce() {
        // ids 1 and 5 seen (1 twice): 3 / 2 = 1.5 < 2.5, so greedy moves to id 3; a negative seen logit sinks
        Sampler s = new Sampler(new Sampler.Params(0f, 0, 1f, 0f, 2f, 64, 0), LOGITS.length);
        assertThat(s.sample(LOGITS, new int[]{1, 5, 1}, 3)).isEqualTo(3);
        // outside the window the penalty does not apply
        Sampler w = new Sampler(new Sampler.Params(0f, 0, 1f, 0f, 2f, 1, 0), LOGITS.length);
        assertThat(w.sample(LOGITS, new int[]{1, 5, 6}, 3)).isEqualTo(1);
    }

    @Test
    void fastPathsEqualTheFullSortReference() {
        // random logits over a realistic vocabulary: the heap top-k and the min-p prefilter must draw exactly what
        // a plain sort-everything implementation of the same chain draws (same seed, same uniform numbers)
        java.util.Random r = new java.util.Random(3);
        int v = 5000;
        float[] logits = new float[v];
        for (int i = 0; i < v; i++) logits[i] = (float) (3 * r.nextGaussian());
        for (Sampler.Params p : new Sampler.Params[]{new Sampler.Params(0.9f, 40, 0.9f, 0.05f, 1f, 0, 5),
                new Sampler.Params(0.7f, 0, 0.8f, 0.1f, 1f, 0, 6), new Sampler.Params(1.3f, 0, 0.95f, 0f, 1f, 0, 7),
                new Sampler.Params(1f, 0, 1f, 0.2f, 1f, 0, 8)}) {
            Sampler fast = new Sampler(p, v);
            java.util.SplittableRandom u = new java.util.SplittableRandom(p.seed());
            for (int i = 0; i < 200; i++) assertThat(fast.sample(logits, new int[0], 0)).as("%s draw %d", p, i).isEqualTo(reference(p, logits, u));
        }
    }

    /** The chain written plainly: sort all ids, top-k, top-p over the top-k's softmax, min-p, temperature, draw. */
    private static int reference(Sampler.Params p, float[] l, java.util.SplittableRandom u) {
        Integer[] ids = new Integer[l.length];
        for (int i = 0; i < l.length; i++) ids[i] = i;
        java.util.Arrays.sort(ids, (a, b) -> l[a] != l[b] ? Float.compare(l[b], l[a]) : Integer.compare(a, b));
        int k = p.topK() > 0 ? Math.min(p.topK(), l.length) : l.length;
        double max = l[ids[0]], z = 0;
        for (int j = 0; j < k; j++) z += Math.exp(l[ids[j]] - max);
        int keep = k;
        double cum = 0;
        for (int j = 0; j < k && p.topP() < 1; j++) {
            cum += Math.exp(l[ids[j]] - max) / z;
            if (cum >= p.topP()) {
                keep = j + 1;
                break;
            }
        }
        int j = 1;
        while (p.minP() > 0 && j < keep && Math.exp(l[ids[j]] - max) >= p.minP()) j++;
        if (p.minP() > 0) keep = j;
        double zt = 0;
        for (int i = 0; i < keep; i++) zt += Math.exp((l[ids[i]] - max) / p.temperature());
        double x = u.nextDouble() * zt, acc = 0;
        for (int i = 0; i < keep; i++) {
            acc += Math.exp((l[ids[i]] - max) / p.temperature());
            if (x < acc) return ids[i];
        }
        return ids[keep - 1];
    }

    @Test
    void sameSeedSameTokens() {
        Sampler a = new Sampler(Sampler.Params.defaults(9), LOGITS.length), b = new Sampler(Sampler.Params.defaults(9), LOGITS.length);
        for (int i = 0; i < 100; i++) assertThat(a.sample(LOGITS, new int[0], 0)).isEqualTo(b.sample(LOGITS, new int[0], 0));
    }

    @Test
    void badParameters() {
        assertThatThrownBy(() -> new Sampler.Params(1f, 0, 0f, 0f, 1f, 0, 0)).hasMessageContaining("topP");
        assertThatThrownBy(() -> new Sampler.Params(1f, 0, 1f, 2f, 1f, 0, 0)).hasMessageContaining("minP");
        assertThatThrownBy(() -> new Sampler.Params(1f, 0, 1f, 0f, 0f, 0, 0)).hasMessageContaining("repeatPenalty");
    }
}
