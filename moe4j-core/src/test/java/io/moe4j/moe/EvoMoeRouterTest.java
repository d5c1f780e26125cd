package io.moe4j.moe;

import io.moe4j.kernel.Kernels;
import io.moe4j.moe.loss.BalanceLoss;
import io.moe4j.moe.router.EvoMoeRouter;
import io.moe4j.moe.router.Routers;
import io.moe4j.parallel.WorkerPool;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.util.Arrays;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

/** EvoMoE dense-to-sparse gate (spec §4.17): schedule, temperature limits, soft → hard switch, inference, aux loss. */
class EvoMoeRouterTest {
    private static final int E = 4;
    private final Arena arena = Arena.ofAuto();

    private static MoeConfig.Builder base() {
        return MoeConfig.builder().router("evomoe").dModel(E).numExperts(E).topK(1).expertHidden(4)
                .balanceLoss(BalanceLoss.HF).balanceCoef(1).maxTokens(4000);
    }

    private EvoMoeRouter create(MoeConfig c) {
        EvoMoeRouter router = (EvoMoeRouter) Routers.create(c, arena, Kernels.get(), WorkerPool.common());
        float[] eye = new float[E * E];
        for (int i = 0; i < E; i++) eye[i * E + i] = 1;
        router.params().get(0).set(eye); // logits = x
        return router;
    }

    private Routing route(EvoMoeRouter router, MoeConfig c, float[][] z, boolean training) {
        return RouterHarness.route(router, c, arena, z, null, training);
    }

    private static float[][] randomLogits(long seed, int t) {
        SplittableRandom rng = new SplittableRandom(seed);
        float[][] z = new float[t][];
        for (int i = 0; i < t; i++) z[i] = MoeLayerTest.randn(rng, E, 1.0);
        return z;
    }

    private static int chosen(Routing r, int token) {
        int n = 0;
        for (int s = token * r.slots; s < (token + 1) * r.slots; s++) if (r.expert[s] >= 0) n++;
        return n;
    }

    @Test
    void linearScheduleFallsEvenlyToTheMinimum() {
        assertThat(EvoMoeRouter.temperatureLinear(0, 2.0, 0.5, 100)).isEqualTo(2.0);
        assertThat(EvoMoeRouter.temperatureLinear(50, 2.0, 0.5, 100)).isCloseTo(1.25, within(1e-12));
        assertThat(EvoMoeRouter.temperatureLinear(100, 2.0, 0.5, 100)).isEqualTo(0.5);
        assertThat(EvoMoeRouter.temperatureLinear(1000, 2.0, 0.5, 100)).isEqualTo(0.5);
        EvoMoeRouter router = create(base().temperatureMax(2.0).temperatureMin(0.5).temperatureDecaySteps(100)
                .temperatureLinear(true).build());
        for (int i = 0; i < 25; i++) router.afterStep();
        assertThat(router.temperature()).isCloseTo(1.625, within(1e-12));
    }

    @Test
    void exponentialScheduleReachesTheMinimumExactlyAndNeverGoesBelow() {
        double max = 2.0, min = 0.5;
        int decay = 100;
        assertThat(EvoMoeRouter.temperature(0, max, min, decay)).isEqualTo(max);
        assertThat(EvoMoeRouter.temperature(50, max, min, decay)).isCloseTo(Math.sqrt(max * min), within(1e-12));
        assertThat(EvoMoeRouter.temperature(decay, max, min, decay)).isEqualTo(min);
        // here the formula itself lands one rounding above τ_min at t = decay; the schedule must not
        assertThat(EvoMoeRouter.temperature(10, 1.0, 0.1, 10)).isEqualTo(0.1);
        double prev = max;
        for (long t = 0; t < 3 * decay; t++) {
            double tau = EvoMoeRouter.temperature(t, max, min, decay);
            assertThat(tau).isGreaterThanOrEqualTo(min).isLessThanOrEqualTo(prev);
            prev = tau;
        }
        // the router follows its step counter, which afterStep advances and checkpoints restore
        EvoMoeRouter router = create(base().temperatureMax(max).temperatureMin(min).temperatureDecaySteps(decay).build());
        assertThat(router.temperature()).isEqualTo(max);
        for (int i = 0; i < 50; i++) router.afterStep();
        assertThat(router.step()).isEqualTo(50);
        assertThat(router.temperature()).isCloseTo(Math.sqrt(max * min), within(1e-12));
        router.setStep(1000);
        assertThat(router.temperature()).isEqualTo(min);
    }

    /** τ → ∞: every gate ≈ 1/E and (soft phase) every expert is used — the dense average. */
    @Test
    void hugeTemperatureIsTheDenseAverage() {
        MoeConfig c = base().temperatureMax(1e6).temperatureMin(1e6).hardAfterStep(10).build();
        EvoMoeRouter router = create(c);
        assertThat(router.slots()).isEqualTo(E);
        Routing r = route(router, c, randomLogits(1, 30), true);
        for (int t = 0; t < 30; t++) {
            assertThat(chosen(r, t)).isEqualTo(E);
            for (int j = 0; j < E; j++) assertThat(r.weight[t * E + j]).isCloseTo(1f / E, within(1e-4f));
        }
    }

    /** τ → 0: the Gumbel-softmax is one-hot, so even the soft phase uses one expert with gate ≈ 1. */
    @Test
    void tinyTemperatureIsOneHot() {
        MoeConfig c = base().temperatureMax(1e-6).temperatureMin(1e-6).hardAfterStep(10).build();
        Routing r = route(create(c), c, randomLogits(2, 30), true);
        for (int t = 0; t < 30; t++) {
            assertThat(chosen(r, t)).isEqualTo(1);
            assertThat(r.weight[t * E]).isGreaterThan(0.999f);
        }
    }

    /** Soft phase: all experts with G > 0.001, by descending G; hard from hardAfterStep on: top-1 of G. */
    @Test
    void softPhaseThenHardPhase() {
        MoeConfig c = base().temperatureMax(1.0).temperatureMin(0.5).temperatureDecaySteps(10).hardAfterStep(3).build();
        EvoMoeRouter router = create(c);
        float[][] z = randomLogits(3, 40);
        for (int step = 0; step < 5; step++) {
            Routing r = route(router, c, z, true);
            int multi = 0;
            for (int t = 0; t < 40; t++) {
                int n = chosen(r, t);
                double sum = 0;
                for (int j = 0; j < E; j++) sum += r.scores[t * E + j];
                assertThat(sum).isCloseTo(1, within(1e-5));
                int above = 0;
                float best = 0;
                for (int j = 0; j < E; j++) {
                    if (r.scores[t * E + j] > 0.001f) above++;
                    best = Math.max(best, r.scores[t * E + j]);
                }
                if (step < 3) assertThat(n).isEqualTo(above);
                else assertThat(n).isEqualTo(1);
                assertThat(r.weight[t * E]).isEqualTo(best); // rank 0 is the largest gate
                for (int k = 1; k < n; k++) assertThat(r.weight[t * E + k]).isLessThanOrEqualTo(r.weight[t * E + k - 1]);
                if (n > 1) multi++;
            }
            if (step < 3) assertThat(multi).isGreaterThan(20); else assertThat(multi).isZero();
            assertThat(router.hard()).isEqualTo(step >= 3);
            router.afterStep();
        }
        assertThat(create(base().build()).slots()).isEqualTo(1); // hardAfterStep = −1: no soft phase, one slot
    }

    /** Hard phase: argmax of softmax((z + g)/τ) is a Gumbel-max sample of softmax(z), whatever τ; replayable. */
    @Test
    void hardChoiceIsASampleOfTheSoftmax() {
        int t = 4000;
        float[] row = {1.0f, 0.5f, 0.0f, -1.0f};
        float[][] z = new float[t][];
        Arrays.fill(z, row);
        MoeConfig c = base().temperatureMax(0.7).temperatureMin(0.7).build();
        EvoMoeRouter router = create(c);
        Routing r = route(router, c, z, true);
        int[] counts = new int[E];
        for (int i = 0; i < t; i++) counts[r.expert[i]]++;
        double[] p = MoeLayerTest.softmax(new double[]{1.0, 0.5, 0.0, -1.0});
        for (int j = 0; j < E; j++) assertThat(counts[j] / (double) t).isCloseTo(p[j], within(0.02));
        int[] first = Arrays.copyOf(r.expert, t);
        router.rng().setDraws(0);
        assertThat(Arrays.copyOf(route(router, c, z, true).expert, t)).isEqualTo(first);
    }

    /** Inference: top-1 of the clean logits, weight softmax(z)[argmax]; golden aux value by hand. */
    @Test
    void inferenceIsCleanTopOneWithGoldenAux() {
        MoeConfig c = base().hardAfterStep(5).build();
        EvoMoeRouter router = create(c);
        float l3 = (float) Math.log(3);
        Routing r = route(router, c, new float[][]{{l3, 0, 0, 0}, {0, l3, 0, 0}}, false);
        // p = [1/2, 1/6, 1/6, 1/6]: expert 0 (weight 0.5), then expert 1 (weight 0.5)
        assertThat(new int[]{r.expert[0], r.expert[E]}).containsExactly(0, 1);
        assertThat(r.weight[0]).isCloseTo(0.5f, within(1e-6f));
        assertThat(r.weight[E]).isCloseTo(0.5f, within(1e-6f));
        assertThat(chosen(r, 0)).isEqualTo(1);
        // aux = E · Σ_e mean(gate_e)·mean(chosen_e) = 4 · (0.25·0.5 + 0.25·0.5) = 1
        assertThat(r.balanceLoss).isCloseTo(1.0, within(1e-6));
        Routing again = route(router, c, new float[][]{{l3, 0, 0, 0}, {0, l3, 0, 0}}, false);
        assertThat(again.weight[0]).isEqualTo(r.weight[0]);
    }

    /** Training aux loss equals the formula on the masked gates, per group. */
    @Test
    void trainingAuxLossMatchesTheFormula() {
        int t = 24;
        MoeConfig c = base().balanceCoef(0.2).groupSize(8).hardAfterStep(7).build();
        EvoMoeRouter router = create(c);
        Routing r = route(router, c, randomLogits(4, t), true);
        double total = 0;
        for (int g = 0; g < 3; g++) {
            double[] mg = new double[E], mc = new double[E];
            for (int i = 8 * g; i < 8 * g + 8; i++) {
                for (int j = 0; j < E; j++) {
                    boolean used = r.scores[i * E + j] > 0.001f;
                    if (used) {
                        mg[j] += r.scores[i * E + j] / 8.0;
                        mc[j] += 1 / 8.0;
                    }
                }
            }
            double l = 0;
            for (int j = 0; j < E; j++) l += mg[j] * mc[j];
            total += 0.2 / 3 * E * l;
        }
        assertThat(r.balanceLoss).isCloseTo(total, within(1e-6));
        MoeConfig none = base().balanceLoss(BalanceLoss.NONE).build();
        assertThat(route(create(none), none, randomLogits(4, t), true).balanceLoss).isZero();
    }

    @Test
    void invalidConfigsNameTheField() {
        assertThatThrownBy(() -> create(base().topK(2).build())).isInstanceOf(InvalidConfigException.class)
                .hasMessageContaining("moe.topK must be 1");
        assertThatThrownBy(() -> create(base().dispatch(DispatchMode.CAPACITY).build()))
                .isInstanceOf(InvalidConfigException.class).hasMessageContaining("moe.dispatch");
    }
}
