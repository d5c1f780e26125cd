package io.moe4j.moe;

import io.moe4j.kernel.Kernels;
import io.moe4j.moe.loss.BalanceLoss;
import io.moe4j.moe.router.Router;
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

/**
 * GShard top-2 gating (spec §4.2): test properties 1–4, the §5.1 golden values, and a differential check of the
 * capacity semantics against lingvo's cumulative-sum formulation written out literally.
 */
class GShardRouterTest {
    private final Arena arena = Arena.ofAuto();

    private static MoeConfig.Builder base(int e) {
        return MoeConfig.builder().router("gshard").dModel(e).numExperts(e).topK(2).expertHidden(4)
                .balanceLoss(BalanceLoss.SWITCH).balanceCoef(1).maxTokens(4096);
    }

    private static MoeConfig.Builder capacity(MoeConfig.Builder b, int c, int group) {
        return b.dispatch(DispatchMode.CAPACITY).capacityRule(CapacityRule.FIXED).fixedCapacity(c).groupSize(group);
    }

    private Router create(MoeConfig c) {
        return Routers.create(c, arena, Kernels.get(), WorkerPool.common());
    }

    /** Routes the rows of z exactly (W_r = I, d = E). */
    private Routing route(Router router, MoeConfig c, float[][] z, boolean training) {
        return RouterHarness.routeLogits(router, c, arena, z, training);
    }

    private Routing route(MoeConfig c, float[][] z, boolean training) {
        return route(create(c), c, z, training);
    }

    private static float[][] randomLogits(long seed, int t, int e, double std) {
        SplittableRandom rng = new SplittableRandom(seed);
        float[][] z = new float[t][];
        for (int i = 0; i < t; i++) z[i] = MoeLayerTest.randn(rng, e, std);
        return z;
    }

    @Test
    void goldenValuesOfSection51() {
        float[][] z = {{2.0f, 1.0f, 0.5f, -1.0f}, {0.4f, 0.3f, 0.2f, 0.1f}, {-1.0f, 3.0f, 0.0f, 1.0f},
                {0.5f, 0.25f, 2.0f, 0.0f}};
        Routing r = route(base(4).build(), z, true);
        assertThat(Arrays.copyOf(r.expert, 8)).containsExactly(0, 1, 0, 1, 1, 3, 2, 0);
        float[] ren = {0.731059f, 0.268941f, 0.524979f, 0.475021f, 0.880797f, 0.119203f, 0.817574f, 0.182426f};
        for (int i = 0; i < 8; i++) assertThat(r.weight[i]).isCloseTo(ren[i], within(1e-6f));
        assertThat(r.balanceLoss).isCloseTo(1.153498, within(1e-6));
    }

    /** Property 1: perfect balance ⇒ aux = 1 (uniform probabilities, top-1 choices spread evenly). */
    @Test
    void perfectBalanceGivesAuxOne() {
        int e = 4, t = 16;
        float[][] z = new float[t][e];
        for (int i = 0; i < t; i++) z[i][i % e] = 1e-6f; // breaks the ties so top-1 choices are 0,1,2,3,0,…
        Routing r = route(base(e).build(), z, true);
        for (int i = 0; i < t; i++) assertThat(r.expert[2 * i]).isEqualTo(i % e);
        assertThat(r.balanceLoss).isCloseTo(1, within(1e-5));
    }

    /** Property 2: capacity that never binds and policy "all" ⇒ the Mixtral rule (softmax top-2, renormalised). */
    @Test
    void hugeCapacityEqualsRenormalisedSoftmaxTopTwo() {
        int e = 6, t = 50;
        float[][] z = randomLogits(1, t, e, 1.5);
        Routing mixtral = route(MoeConfig.builder().dModel(e).numExperts(e).topK(2).expertHidden(4).maxTokens(t)
                .normalizeTopK(true).build(), z, true);
        for (MoeConfig c : new MoeConfig[]{base(e).build(), capacity(base(e), t, 0).build(),
                capacity(base(e), t, 0).legacyNormalize(false).build()}) {
            Routing g = route(c, z, true);
            assertThat(Arrays.copyOf(g.expert, 2 * t)).isEqualTo(Arrays.copyOf(mixtral.expert, 2 * t));
            for (int s = 0; s < 2 * t; s++) {
                assertThat(g.kept[s]).isTrue();
                assertThat(g.weight[s]).isCloseTo(mixtral.weight[s], within(1e-6f));
            }
        }
    }

    /** Property 3: C = 1 keeps only the first top-1 claimant; a top-2 choice never displaces a top-1 choice. */
    @Test
    void capacityOneTopOneHasPriority() {
        float[][] z = {
                {3, 2, 0, 0},   // top-1 e0, top-2 e1: e1's slot goes to token 2's top-1 although token 0 is earlier
                {3, 0, 2, 0},   // top-1 e0: dropped (e0 full); top-2 e2: kept (no top-1 claims e2)
                {0, 3, 0, 2},   // top-1 e1: kept; top-2 e3: dropped — token 3's top-1 claims e3 first
                {0, 0, 2, 3}};  // top-1 e3: kept; top-2 e2: dropped (token 1's top-2 came first)
        for (boolean legacy : new boolean[]{true, false}) {
            Routing r = route(capacity(base(4), 1, 0).legacyNormalize(legacy).build(), z, true);
            assertThat(Arrays.copyOf(r.expert, 8)).containsExactly(0, 1, 0, 2, 1, 3, 3, 2);
            assertThat(Arrays.copyOf(r.kept, 8)).containsExactly(true, false, false, true, true, false, true, false);
            // legacy: survivors keep their pre-drop share; otherwise a lone survivor gets weight 1
            double g = 1 / (1 + Math.exp(-1.0)); // two choices whose logits differ by 1
            assertThat((double) r.weight[0]).isCloseTo(legacy ? g : 1, within(1e-6));
            assertThat((double) r.weight[3]).isCloseTo(legacy ? 1 - g : 1, within(1e-6));
            assertThat(r.weight[1]).isZero();
            assertThat(r.weight[2]).isZero();
        }
    }

    /** Property 4: g1 + g2 = 1 for tokens with both assignments kept (legacy mode). */
    @Test
    void keptPairsSumToOneInLegacyMode() {
        int t = 64;
        Routing r = route(capacity(base(8), 5, 16).build(), randomLogits(2, t, 8, 2.0), true);
        int both = 0;
        for (int i = 0; i < t; i++) {
            if (r.kept[2 * i] && r.kept[2 * i + 1]) {
                both++;
                assertThat(r.weight[2 * i] + r.weight[2 * i + 1]).isCloseTo(1f, within(1e-6f));
            }
        }
        assertThat(both).isBetween(10, t - 1); // the capacity binds, yet many pairs survive
    }

    /** Kept masks and weights against lingvo's cumulative-sum formulation, for every policy and both modes. */
    @Test
    void capacityMatchesLingvoCumsumFormulation() {
        int e = 4, t = 48, group = 16;
        float[][] z = randomLogits(3, t, e, 1.0);
        for (String policy : new String[]{"all", "sampling", "random"}) {
            for (boolean legacy : new boolean[]{true, false}) {
                MoeConfig c = base(e).secondExpert(policy).secondExpertThreshold(0.5).legacyNormalize(legacy)
                        .dispatch(DispatchMode.CAPACITY).capacityRule(CapacityRule.GSHARD).capacityFactor(1.5)
                        .groupSize(group).build();
                assertThat(c.capacity(group)).isEqualTo(6);
                Routing r = route(c, z, true);
                lingvo(r, z, c.capacity(group), group, legacy, policy);
            }
        }
    }

    /** Asserts r's kept flags and weights equal the lingvo formulas given r's choices. */
    private static void lingvo(Routing r, float[][] z, int cap, int group, boolean legacy, String policy) {
        int t = z.length, e = z[0].length;
        for (int s0 = 0; s0 < t; s0 += group) {
            int[] count1 = new int[e], count2 = new int[e], kept1 = new int[e];
            boolean[] keep1 = new boolean[group], keep2 = new boolean[group];
            int[] i2s = new int[group];
            for (int i = 0; i < group; i++) { // top-1 positions: exclusive cumsum of mask_1
                int tok = s0 + i;
                double[] p = MoeLayerTest.softmax(toDouble(z[tok]));
                int i1 = argmax(p, -1);
                assertThat(r.expert[2 * tok]).isEqualTo(i1);
                keep1[i] = count1[i1]++ < cap;
                if (keep1[i]) kept1[i1]++;
                i2s[i] = policy.equals("sampling") ? r.expert[2 * tok + 1] : argmax(p, i1);
                assertThat(i2s[i]).isNotEqualTo(i1);
            }
            for (int i = 0; i < group; i++) { // top-2 positions: cumsum of surviving mask_2 + kept top-1 count
                int tok = s0 + i;
                boolean survives = !policy.equals("random") || r.expert[2 * tok + 1] >= 0;
                if (!survives) continue;
                assertThat(r.expert[2 * tok + 1]).isEqualTo(i2s[i]);
                keep2[i] = count2[i2s[i]]++ + kept1[i2s[i]] < cap;
            }
            for (int i = 0; i < group; i++) {
                int tok = s0 + i;
                double[] p = MoeLayerTest.softmax(toDouble(z[tok]));
                double g1 = p[r.expert[2 * tok]], g2 = p[i2s[i]];
                if (legacy) {
                    double den = g1 + g2 + 1e-9;
                    g1 /= den;
                    g2 /= den;
                }
                g1 = keep1[i] ? g1 : 0;
                g2 = keep2[i] ? g2 : 0;
                if (!legacy && g1 + g2 > 0) {
                    double den = g1 + g2;
                    g1 /= den;
                    g2 /= den;
                }
                assertThat(r.kept[2 * tok]).as("kept1 token %d", tok).isEqualTo(keep1[i]);
                assertThat(r.kept[2 * tok + 1]).as("kept2 token %d", tok).isEqualTo(keep2[i]);
                assertThat((double) r.weight[2 * tok]).isCloseTo(g1, within(1e-6));
                assertThat((double) r.weight[2 * tok + 1]).isCloseTo(g2, within(1e-6));
            }
        }
    }

    /** Policy "random": the 2nd choice is kept with probability min(1, g2 / threshold); at inference always. */
    @Test
    void randomPolicyKeepsSecondChoiceWithProbabilityGateOverThreshold() {
        int t = 4000;
        float[][] z = new float[t][];
        // g2 / (g1 + g2) = 0.2 after the legacy renormalisation (raw g2 ≈ 0.147); threshold 0.5 ⇒ keep probability 0.4
        for (int i = 0; i < t; i++) z[i] = new float[]{(float) Math.log(4), 0, -0.1f, -0.1f};
        MoeConfig c = base(4).secondExpert("random").secondExpertThreshold(0.5).build();
        Router router = create(c);
        Routing r = route(router, c, z, true);
        int kept = 0;
        for (int i = 0; i < t; i++) if (r.expert[2 * i + 1] == 1) kept++;
        assertThat(kept / (double) t).isCloseTo(0.4, within(0.03));
        Routing ev = route(router, c, z, false);
        for (int i = 0; i < t; i++) assertThat(ev.expert[2 * i + 1]).isEqualTo(1);
        // threshold 0 (lingvo's default) keeps every 2nd choice
        Routing all = route(base(4).secondExpert("random").build(), z, true);
        for (int i = 0; i < t; i++) assertThat(all.expert[2 * i + 1]).isEqualTo(1);
    }

    /** Policy "sampling": the 2nd expert follows softmax(z) without the 1st; replayable; greedy at inference. */
    @Test
    void samplingPolicyDrawsFromTheRemainingSoftmax() {
        int t = 4000;
        float[] row = {2.0f, 1.0f, 0.5f, -0.5f};
        float[][] z = new float[t][];
        Arrays.fill(z, row);
        MoeConfig c = base(4).secondExpert("sampling").build();
        Router router = create(c);
        Routing r = route(router, c, z, true);
        double[] p = MoeLayerTest.softmax(toDouble(row));
        int[] counts = new int[4];
        for (int i = 0; i < t; i++) counts[r.expert[2 * i + 1]]++;
        assertThat(counts[0]).isZero();
        for (int j = 1; j < 4; j++) assertThat(counts[j] / (double) t).isCloseTo(p[j] / (1 - p[0]), within(0.02));
        int[] first = Arrays.copyOf(r.expert, 2 * t);
        router.rng().setDraws(0);
        assertThat(Arrays.copyOf(route(router, c, z, true).expert, 2 * t)).isEqualTo(first);
        Routing ev = route(router, c, z, false);
        for (int i = 0; i < t; i++) assertThat(ev.expert[2 * i + 1]).isEqualTo(1);
    }

    /** The layer leaves capacity to the router: outputs equal Σ kept weight · FFN, dropped tokens give 0. */
    @Test
    void layerUsesTheRoutersCapacity() {
        int d = 8, f = 6, e = 4, t = 24;
        MoeConfig c = capacity(MoeConfig.builder().router("gshard").dModel(d).numExperts(e).topK(2).expertHidden(f)
                .balanceLoss(BalanceLoss.SWITCH).maxTokens(t), 3, 12).legacyNormalize(false).build();
        MoeLayer layer = new MoeLayer(c, arena, Kernels.get(), WorkerPool.common());
        assertThat(layer.router().appliesOwnCapacity()).isTrue();
        layer.init(new SplittableRandom(5), 0.8, 1.0);
        float[] xs = MoeLayerTest.randn(new SplittableRandom(6), t * d, 1.0);
        MemorySegment x = F32.alloc(arena, (long) t * d), y = F32.alloc(arena, (long) t * d);
        F32.copyIn(xs, x, 0);
        layer.forward(x, 0, t, y, 0, false);
        Routing r = layer.routing();
        assertThat(r.keptAssignments()).isLessThan(r.totalAssignments());
        ExpertBank b = layer.experts();
        for (int i = 0; i < t; i++) {
            double[] ref = new double[d];
            for (int k = 0; k < 2; k++) {
                int s = 2 * i + k;
                if (!r.kept[s]) continue;
                double[] fk = RefFfn.ffn(ExpertType.SWIGLU, xs, i * d, d, f, b.gate().toArray(), b.up().toArray(),
                        b.down().toArray(), r.expert[s]);
                for (int j = 0; j < d; j++) ref[j] += r.weight[s] * fk[j];
            }
            for (int j = 0; j < d; j++) assertThat((double) F32.get(y, (long) i * d + j)).isCloseTo(ref[j], within(1e-5));
        }
        for (int g = 0; g < 2; g++) for (int ex = 0; ex < e; ex++) {
            int n = 0;
            for (int s = 24 * g; s < 24 * g + 24; s++) if (r.kept[s] && r.expert[s] == ex) n++;
            assertThat(n).isLessThanOrEqualTo(3);
        }
    }

    @Test
    void invalidConfigsNameTheField() {
        assertThatThrownBy(() -> create(base(4).topK(1).build())).isInstanceOf(InvalidConfigException.class)
                .hasMessageContaining("moe.topK must be 2");
        assertThatThrownBy(() -> create(base(4).balanceLoss(BalanceLoss.HF).build()))
                .isInstanceOf(InvalidConfigException.class).hasMessageContaining("moe.balanceLoss");
        assertThatThrownBy(() -> create(capacity(base(4), 2, 0).priority(PriorityOrder.BATCH_PRIORITY).build()))
                .isInstanceOf(InvalidConfigException.class).hasMessageContaining("moe.priority");
        assertThat(create(base(4).balanceLoss(BalanceLoss.NONE).build()).name()).isEqualTo("gshard");
    }

    private static double[] toDouble(float[] v) {
        double[] out = new double[v.length];
        for (int i = 0; i < v.length; i++) out[i] = v[i];
        return out;
    }

    private static int argmax(double[] p, int skip) {
        int best = -1;
        for (int j = 0; j < p.length; j++) if (j != skip && (best < 0 || p[j] > p[best])) best = j;
        return best;
    }
}
