package io.moe4j.moe;

import io.moe4j.kernel.Kernels;
import io.moe4j.moe.loss.BalanceLoss;
import io.moe4j.moe.loss.CvSquared;
import io.moe4j.moe.router.Gaussian;
import io.moe4j.moe.router.NoisyTopKRouter;
import io.moe4j.moe.router.Routers;
import io.moe4j.nn.F32;
import io.moe4j.parallel.WorkerPool;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

/** Noisy top-k gating (spec §4.1): test properties 1–5, golden values of §5.7, and the aux losses recomputed. */
class NoisyTopKRouterTest {
    private static final int E = 4;
    private final Arena arena = Arena.ofAuto();

    private static MoeConfig.Builder base() {
        return MoeConfig.builder().router("noisy-topk").dModel(E).numExperts(E).topK(2).expertHidden(4)
                .balanceLoss(BalanceLoss.HF).balanceCoef(1).maxTokens(64);
    }

    private NoisyTopKRouter create(MoeConfig c) {
        return (NoisyTopKRouter) Routers.create(c, arena, Kernels.get(), WorkerPool.common());
    }

    /** Routes x (rows of d = E values) with the router's current weights. */
    private Routing route(NoisyTopKRouter router, MoeConfig c, float[][] x, boolean training) {
        return RouterHarness.route(router, c, arena, x, null, training);
    }

    private static float[] eye() {
        float[] w = new float[E * E];
        for (int i = 0; i < E; i++) w[i * E + i] = 1;
        return w;
    }

    private static float[][] randomRows(long seed, int t, double std) {
        SplittableRandom rng = new SplittableRandom(seed);
        float[][] z = new float[t][];
        for (int i = 0; i < t; i++) z[i] = MoeLayerTest.randn(rng, E, std);
        return z;
    }

    @Test
    void cvSquaredGoldenAndGradient() {
        assertThat(CvSquared.value(new double[]{2, 1, 1, 0}, 4)).isCloseTo(0.5, within(1e-9));
        assertThat(CvSquared.value(new double[]{3, 3, 3}, 3)).isCloseTo(0, within(1e-12));
        assertThat(CvSquared.value(new double[]{0, 0, 0}, 3)).isZero();
        double[] v = {2.5, 0.3, 1.7, 4.1, 0.9};
        double[] g = new double[5];
        CvSquared.valueAndGradient(v, 5, 1, g);
        for (int i = 0; i < 5; i++) {
            double[] p = v.clone(), q = v.clone();
            p[i] += 1e-6;
            q[i] -= 1e-6;
            assertThat(g[i]).isCloseTo((CvSquared.value(p, 5) - CvSquared.value(q, 5)) / 2e-6, within(1e-7));
        }
    }

    @Test
    void erfAndNormalCdfMatchKnownValues() {
        assertThat(Gaussian.erf(0.5)).isCloseTo(0.5204998778130465, within(1e-15));
        assertThat(Gaussian.erf(-1.0)).isCloseTo(-0.8427007929497149, within(1e-15));
        assertThat(Gaussian.erfc(3.0)).isCloseTo(2.2090496998585438e-05, within(1e-18));
        assertThat(Gaussian.cdf(1.959963984540054)).isCloseTo(0.975, within(1e-13));
        assertThat(Gaussian.cdf(0)).isEqualTo(0.5);
    }

    /** §4.1 property 5 and the §5.7 golden value: zero-initialised W_g and W_noise. */
    @Test
    void zeroInitialisedGate() {
        MoeConfig c = base().topK(2).build();
        NoisyTopKRouter router = create(c); // parameters are allocated zeroed: the spec's initialisation
        float[][] x = randomRows(1, 6, 1.0);
        Routing eval = route(router, c, x, false);
        for (int t = 0; t < 6; t++) {
            assertThat(eval.weight[t * 2]).isEqualTo(0.5f);
            assertThat(eval.weight[t * 2 + 1]).isEqualTo(0.5f);
            assertThat(eval.expert[t * 2]).isNotEqualTo(eval.expert[t * 2 + 1]);
        }
        route(router, c, x, true);
        for (int i = 0; i < 6 * E; i++) assertThat(router.noiseStd()[i]).isCloseTo(0.703147f, within(1e-6f));
        assertThat(Math.log(2) + 0.01).isCloseTo(0.703147, within(1e-6));
    }

    /** §4.1 property 4: the gates of every token sum to 1, with noise, for k = 1..E. */
    @Test
    void gatesSumToOne() {
        for (int k = 1; k <= E; k++) {
            MoeConfig c = base().topK(k).build();
            NoisyTopKRouter router = create(c);
            router.gateWeight().set(eye());
            router.noiseWeight().set(MoeLayerTest.randn(new SplittableRandom(k), E * E, 0.5));
            Routing r = route(router, c, randomRows(2, 20, 2.0), true);
            for (int t = 0; t < 20; t++) {
                double sum = 0;
                for (int j = 0; j < k; j++) sum += r.weight[t * k + j];
                assertThat(sum).isCloseTo(1, within(1e-6));
            }
        }
    }

    /** Training selects on the noisy logits (one replayable draw per forward); inference on the clean ones. */
    @Test
    void noiseOnlyInTrainingAndReplayable() {
        MoeConfig c = base().build();
        NoisyTopKRouter router = create(c);
        router.gateWeight().set(eye());
        float[][] x = randomRows(3, 30, 0.3);
        Routing r = route(router, c, x, false);
        int[] clean = Arrays.copyOf(r.expert, 60);
        for (int t = 0; t < 30; t++) {
            // clean top-2 and softmax over the two selected clean logits
            int[] order = argsortDesc(x[t]);
            assertThat(new int[]{clean[2 * t], clean[2 * t + 1]}).containsExactly(order[0], order[1]);
            double w0 = 1 / (1 + Math.exp(x[t][order[1]] - x[t][order[0]]));
            assertThat((double) r.weight[2 * t]).isCloseTo(w0, within(1e-6));
        }
        router.rng().setDraws(0);
        int[] first = Arrays.copyOf(route(router, c, x, true).expert, 60);
        router.rng().setDraws(0);
        assertThat(Arrays.copyOf(route(router, c, x, true).expert, 60)).isEqualTo(first);
        assertThat(first).isNotEqualTo(clean); // std ≈ 0.7 against logit gaps ≈ 0.3: some choices must move
        assertThat(Arrays.copyOf(route(router, c, x, true).expert, 60)).isNotEqualTo(first); // next draw
    }

    /** §4.1 property 3: as the noise std goes to 0, P(e ∈ top-k) becomes the 0/1 indicator. */
    @Test
    void loadProbabilityTendsToIndicator() {
        MoeConfig c = base().noiseEps(1e-7).build();
        NoisyTopKRouter router = create(c);
        router.gateWeight().set(eye());
        float[] wn = new float[E * E];
        Arrays.fill(wn, -100f); // x > 0 below ⇒ softplus(W_noise·x) ≈ e^{−100·Σx} ≈ 0
        router.noiseWeight().set(wn);
        float[][] x = randomRows(4, 25, 1.0);
        for (float[] row : x) for (int j = 0; j < E; j++) row[j] = 0.1f + Math.abs(row[j]);
        Routing r = route(router, c, x, true);
        for (int t = 0; t < 25; t++) {
            for (int j = 0; j < E; j++) {
                boolean in = r.expert[2 * t] == j || r.expert[2 * t + 1] == j;
                assertThat(router.noiseStd()[t * E + j]).isLessThan(1e-6f);
                assertThat((double) router.loadProbability()[t * E + j]).isCloseTo(in ? 1 : 0, within(1e-6));
            }
        }
    }

    /** The aux loss recomputed from the spec's formulas on the router's logits, noise std and noisy logits. */
    @Test
    void auxLossMatchesTheFormula() {
        int t = 16, k = 2;
        MoeConfig c = base().balanceCoef(0.3).build();
        NoisyTopKRouter router = create(c);
        router.gateWeight().set(MoeLayerTest.randn(new SplittableRandom(5), E * E, 1.0));
        router.noiseWeight().set(MoeLayerTest.randn(new SplittableRandom(6), E * E, 0.5));
        Routing r = route(router, c, randomRows(7, t, 1.0), true);
        float[] clean = r.logits, noisy = router.noisyLogits(), std = router.noiseStd();
        double[] imp = new double[E], load = new double[E];
        for (int i = 0; i < t; i++) {
            int[] order = argsortDesc(Arrays.copyOfRange(noisy, i * E, i * E + E));
            for (int j = 0; j < k; j++) imp[r.expert[i * k + j]] += r.weight[i * k + j];
            for (int j = 0; j < E; j++) {
                double vk = noisy[i * E + order[k]], vk1 = noisy[i * E + order[k - 1]];
                double thr = noisy[i * E + j] > vk ? vk : vk1;
                load[j] += Gaussian.cdf((clean[i * E + j] - thr) / std[i * E + j]);
            }
        }
        assertThat(r.balanceLoss).isCloseTo(0.3 * (cv2(imp) + cv2(load)), within(1e-6));

        // inference: load is the count of tokens routed to each expert
        Routing ev = route(router, c, randomRows(7, t, 1.0), false);
        Arrays.fill(imp, 0);
        Arrays.fill(load, 0);
        for (int s = 0; s < t * k; s++) {
            imp[ev.expert[s]] += ev.weight[s];
            load[ev.expert[s]] += 1;
        }
        assertThat(ev.balanceLoss).isCloseTo(0.3 * (cv2(imp) + cv2(load)), within(1e-6));
        Routing none = route(create(base().balanceLoss(BalanceLoss.NONE).build()), c, randomRows(7, t, 1.0), true);
        assertThat(none.balanceLoss).isZero();
    }

    /** §4.1 property 1: inference with k = E is the softmax-weighted dense mixture of all experts. */
    @Test
    void inferenceWithKEqualsEIsTheDenseMixture() {
        int d = 8, f = 6, t = 5;
        MoeConfig c = MoeConfig.builder().router("noisy-topk").dModel(d).numExperts(E).topK(E).expertHidden(f)
                .maxTokens(t).build();
        MoeLayer layer = new MoeLayer(c, arena, Kernels.get(), WorkerPool.common());
        layer.init(new SplittableRandom(3), 0.5, 1.0);
        float[] xs = MoeLayerTest.randn(new SplittableRandom(4), t * d, 1.0);
        MemorySegment x = F32.alloc(arena, (long) t * d), y = F32.alloc(arena, (long) t * d);
        F32.copyIn(xs, x, 0);
        layer.forward(x, 0, t, y, 0, false);
        ExpertBank b = layer.experts();
        float[] wg = ((NoisyTopKRouter) layer.router()).gateWeight().toArray();
        for (int i = 0; i < t; i++) {
            double[] z = new double[E];
            for (int k = 0; k < E; k++) for (int j = 0; j < d; j++) z[k] += wg[k * d + j] * xs[i * d + j];
            double[] p = MoeLayerTest.softmax(z);
            double[] ref = new double[d];
            for (int k = 0; k < E; k++) {
                double[] fk = RefFfn.ffn(ExpertType.SWIGLU, xs, i * d, d, f, b.gate().toArray(), b.up().toArray(),
                        b.down().toArray(), k);
                for (int j = 0; j < d; j++) ref[j] += p[k] * fk[j];
            }
            for (int j = 0; j < d; j++) assertThat((double) F32.get(y, (long) i * d + j)).isCloseTo(ref[j], within(1e-5));
        }
    }

    @Test
    void jitterIsRejectedNamingTheField() {
        MoeConfig c = base().jitter(0.1).build();
        assertThatThrownBy(() -> create(c)).isInstanceOf(InvalidConfigException.class).hasMessageContaining("moe.jitter");
    }

    static double cv2(double[] v) {
        double n = v.length, mean = 0, var = 0;
        for (double a : v) mean += a / n;
        for (double a : v) var += (a - mean) * (a - mean) / n;
        return var / (mean * mean);
    }

    static int[] argsortDesc(float[] v) {
        Integer[] idx = new Integer[v.length];
        for (int i = 0; i < v.length; i++) idx[i] = i;
        Arrays.sort(idx, (a, b) -> Float.compare(v[b], v[a]));
        int[] out = new int[v.length];
        for (int i = 0; i < v.length; i++) out[i] = idx[i];
        return out;
    }
}
