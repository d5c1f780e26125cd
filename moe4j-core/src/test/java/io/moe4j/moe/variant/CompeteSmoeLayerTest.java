package io.moe4j.moe.variant;

import io.moe4j.kernel.Kernels;
import io.moe4j.moe.ExpertType;
import io.moe4j.moe.InvalidConfigException;
import io.moe4j.moe.RefFfn;
import io.moe4j.moe.Routing;
import io.moe4j.moe.variant.CompeteSmoeLayer.Policy;
import io.moe4j.nn.CounterRng;
import io.moe4j.nn.F32;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;

import static io.moe4j.moe.variant.TestData.randn;
import static io.moe4j.moe.variant.TestData.seg;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

/** CompeteSMoE (spec §4.18): both policies against a double reference, the test properties, schedule, backward. */
class CompeteSmoeLayerTest {
    private static final WorkerPool POOL = new WorkerPool(2);
    /** Finite differences run hundreds of tiny forwards: one thread avoids waking workers on a busy machine. */
    private static final WorkerPool SERIAL = new WorkerPool(1);
    private static final int D = 6, E = 4, K = 2, F = 5;
    private final Arena arena = Arena.ofAuto();

    @AfterAll
    static void close() {
        POOL.close();
        SERIAL.close();
    }

    private static CompeteConfig.Builder config(int maxT) {
        return CompeteConfig.builder().dModel(D).numExperts(E).topK(K).expertHidden(F).maxTokens(maxT);
    }

    private CompeteSmoeLayer layer(CompeteConfig c, long seed, WorkerPool pool) {
        CompeteSmoeLayer m = new CompeteSmoeLayer(c, null, arena, Kernels.get(), pool);
        m.init(new SplittableRandom(seed), 0.5, 1.0);
        return m;
    }

    /** FFN_j(x_i) in double for every expert and token: [i][j][c]. */
    private static double[][][] reference(CompeteSmoeLayer m, float[] xs, int t) {
        float[] gate = m.experts().gate() == null ? null : m.experts().gate().toArray();
        float[] up = m.experts().up().toArray(), down = m.experts().down().toArray();
        double[][][] o = new double[t][E][];
        for (int i = 0; i < t; i++) {
            for (int j = 0; j < E; j++) o[i][j] = RefFfn.ffn(m.config().expertType(), xs, i * D, D, F, gate, up, down, j);
        }
        return o;
    }

    private static double softplus(double v) { return Math.log1p(Math.exp(v)); }

    /** Property 1: competition selects the experts with the largest mean softplus output, weights a_sel/Σa_sel. */
    @ParameterizedTest(name = "normSigmoid = {0}")
    @CsvSource({"false", "true"})
    void competitionSelectsTheLargestMeanSoftplusExperts(boolean normSigmoid) {
        int t = 8;
        CompeteSmoeLayer m = layer(config(t).normSigmoid(normSigmoid).build(), 1, POOL);
        float[] xs = randn(new SplittableRandom(2), t * D, 1.5);
        MemorySegment y = F32.alloc(arena, (long) t * D);
        m.forward(seg(arena, xs), 0, t, y, 0, Policy.COMPETITION, true);
        double[][][] o = reference(m, xs, t);
        Routing r = m.routing();
        for (int i = 0; i < t; i++) {
            double[] a = new double[E];
            for (int j = 0; j < E; j++) {
                for (int c = 0; c < D; c++) a[j] += softplus(o[i][j][c]) / D;
                assertThat((double) m.affinity()[i * E + j]).isCloseTo(a[j], within(1e-5));
            }
            Integer[] order = {0, 1, 2, 3};
            java.util.Arrays.sort(order, (p, q) -> Double.compare(a[q], a[p]));
            double norm = 0;
            for (int rank = 0; rank < K; rank++) norm += score(a[order[rank]], normSigmoid);
            double[] ref = new double[D];
            for (int rank = 0; rank < K; rank++) {
                int j = order[rank];
                assertThat(r.expert[i * K + rank]).as("token %d rank %d", i, rank).isEqualTo(j);
                double wRef = score(a[j], normSigmoid) / norm;
                assertThat((double) r.weight[i * K + rank]).isCloseTo(wRef, within(1e-6));
                for (int c = 0; c < D; c++) ref[c] += wRef * o[i][j][c];
            }
            for (int c = 0; c < D; c++) assertThat((double) F32.get(y, (long) i * D + c)).isCloseTo(ref[c], within(1e-5));
        }
    }

    private static double score(double a, boolean sigmoid) { return sigmoid ? 1 / (1 + Math.exp(-a)) : a; }

    /** Router policy (and inference): softmax top-k renormalised over the router probabilities. */
    @Test
    void routerPolicyIsRenormalisedSoftmaxTopK() {
        int t = 7;
        CompeteSchedule always = new CompeteSchedule(10, 1, 0.0, 1.0, 1, 3);
        CompeteSmoeLayer m = new CompeteSmoeLayer(config(t).build(), always, arena, Kernels.get(), POOL);
        m.init(new SplittableRandom(4), 0.5, 1.0);
        float[] xs = randn(new SplittableRandom(5), t * D, 1.0);
        MemorySegment y = F32.alloc(arena, (long) t * D);
        m.forward(seg(arena, xs), 0, t, y, 0, false, 3); // inference: the schedule is ignored
        assertThat(m.lastPolicy()).isEqualTo(Policy.ROUTER);
        double[][][] o = reference(m, xs, t);
        float[] wr = m.router().params().get(0).toArray();
        for (int i = 0; i < t; i++) {
            double[] p = TestData.softmax(TestData.linear(wr, E, xs, i, D));
            Integer[] order = {0, 1, 2, 3};
            java.util.Arrays.sort(order, (u, v) -> Double.compare(p[v], p[u]));
            double norm = p[order[0]] + p[order[1]];
            double[] ref = new double[D];
            for (int rank = 0; rank < K; rank++) {
                for (int c = 0; c < D; c++) ref[c] += p[order[rank]] / norm * o[i][order[rank]][c];
            }
            for (int c = 0; c < D; c++) assertThat((double) F32.get(y, (long) i * D + c)).isCloseTo(ref[c], within(1e-5));
        }
        m.forward(seg(arena, xs), 0, t, y, 0, true, 3);
        assertThat(m.lastPolicy()).isEqualTo(Policy.COMPETITION);
        assertThatThrownBy(() -> m.forward(seg(arena, xs), 0, t, y, 0, Policy.COMPETITION, false))
                .hasMessageContaining("only in training");
    }

    /** Property 2: router_loss = 0 when softmax(router) = softmax(affinity); and the router then gets no gradient. */
    @Test
    void routerLossIsZeroWhenTheDistributionsMatch() {
        float[] p = {0.1f, 0.2f, 0.3f, 0.4f, 0.25f, 0.25f, 0.25f, 0.25f};
        float[] dP = new float[8];
        assertThat(CompetitionLosses.routerLoss(p, p.clone(), 2, 4, 1.0, dP)).isZero();
        assertThat(dP).containsOnly(0f);
        float[] q = p.clone();
        q[0] = 0.2f;
        q[1] = 0.1f;
        assertThat(CompetitionLosses.routerLoss(p, q, 2, 4, 1.0, dP)).isCloseTo(0.02 / 8, within(1e-9));

        // layer level: zero router weights (p uniform) and zero down projections (o = 0, a = ln 2 for all: q uniform)
        int t = 5;
        CompeteSmoeLayer m = layer(config(t).routerLossCoef(1.0).build(), 6, POOL);
        m.router().params().get(0).fill(0f);
        m.experts().down().fill(0f);
        MemorySegment x = seg(arena, randn(new SplittableRandom(7), t * D, 1.0)), y = F32.alloc(arena, (long) t * D);
        m.forward(x, 0, t, y, 0, Policy.COMPETITION, true);
        assertThat(m.routerLoss()).isZero();
        for (Param prm : m.params()) prm.zeroGrad();
        m.backward(x, 0, seg(arena, randn(new SplittableRandom(8), t * D, 1.0)), 0, F32.alloc(arena, (long) t * D), 0);
        assertThat(m.router().params().get(0).gradToArray()).containsOnly(0f);
    }

    /** Property 3: the diversity loss is 0 for mutually orthogonal selected outputs (and K(K−1) for equal ones). */
    @Test
    void diversityIsZeroForOrthogonalOutputs() {
        MemorySegment o = seg(arena, new float[]{
                3, 0, 0, 0, 0, 0,
                0, -2, 0, 0, 0, 0,
                0, 0, 0.5f, 0.5f, 0, 0,
                0, 0, 1, -1, 0, 0});
        long[] off = {0, 6, 12, 18};
        assertThat(CompetitionLosses.pairwiseCosine(4, 6, o, off)).isZero();
        MemorySegment same = seg(arena, new float[]{1, 2, 3, 1, 2, 3, 2, 4, 6});
        assertThat(CompetitionLosses.pairwiseCosine(3, 3, same, new long[]{0, 3, 6})).isCloseTo(6.0, within(1e-12));
    }

    /** The diversity gradient against finite differences in double, on its own (including a clamped zero vector). */
    @Test
    void diversityGradientMatchesFiniteDifferences() {
        float[] v = randn(new SplittableRandom(9), 3 * 5, 1.0);
        MemorySegment o = seg(arena, v), g = F32.alloc(arena, 15);
        long[] off = {0, 5, 10};
        CompetitionLosses.pairwiseCosineBackward(3, 5, o, off, 1.0, g, off);
        new GradCheck("diversity", () -> CompetitionLosses.pairwiseCosine(3, 5, o, off))
                .probe("o", o, 0, 15, F32.toArray(g, 0, 15), 15).assertMostlyChecked();
    }

    /** In competition steps the router learns only from router_loss: with its coefficient 0 it gets nothing. */
    @Test
    void routerLearnsOnlyFromTheRouterLossInCompetitionSteps() {
        int t = 6;
        for (double coef : new double[]{0.0, 0.5}) {
            CompeteSmoeLayer m = layer(config(t).routerLossCoef(coef).balanceLossCoef(0.3).routerZLossCoef(0.1).build(),
                    10, POOL);
            MemorySegment x = seg(arena, randn(new SplittableRandom(11), t * D, 1.0)), y = F32.alloc(arena, (long) t * D);
            MemorySegment dy = seg(arena, randn(new SplittableRandom(12), t * D, 1.0));
            for (Param p : m.params()) p.zeroGrad();
            m.forward(x, 0, t, y, 0, Policy.COMPETITION, true);
            m.backward(x, 0, dy, 0, F32.alloc(arena, (long) t * D), 0);
            float[] g = m.router().params().get(0).gradToArray();
            if (coef == 0) assertThat(g).containsOnly(0f);
            else assertThat(maxAbs(g)).isGreaterThan(0f);
            // every expert learns (balance on softmax(a) reaches all of them), not only the selected ones
            float[] up = m.experts().up().gradToArray();
            for (int j = 0; j < E; j++) {
                float mx = 0;
                for (int i = j * F * D; i < (j + 1) * F * D; i++) mx = Math.max(mx, Math.abs(up[i]));
                assertThat(mx).as("expert %d up gradient", j).isGreaterThan(0f);
            }
        }
    }

    /**
     * The hybrid term, hand-computed: p = (0.1, 0.2, 0.3, 0.4), q uniform, competition picks {3, 2}:
     * H = ((0.4−0.25)² + (0.3−0.25)²)/(1·2) = 0.0125; ∂H/∂p = 2(p−q)/(T·K) on the selected entries only.
     */
    @Test
    void hybridTermIsTheMseOfTheSelectedEntries() {
        float[] p = {0.1f, 0.2f, 0.3f, 0.4f}, q = {0.25f, 0.25f, 0.25f, 0.25f};
        float[] dP = new float[4];
        double h = CompetitionLosses.topKRouterLoss(p, q, new int[]{3, 2}, 1, 4, 2, 2.0, dP);
        assertThat(h).isCloseTo(0.0125, within(1e-8));
        assertThat(dP[0]).isZero();
        assertThat(dP[1]).isZero();
        assertThat((double) dP[2]).isCloseTo(2.0 * 2 * 0.05 / 2, within(1e-7));
        assertThat((double) dP[3]).isCloseTo(2.0 * 2 * 0.15 / 2, within(1e-7));

        // layer level: routerLoss = MSE + θ·H, and θ = 0 or hybrid off leaves the router loss unchanged
        int t = 5;
        MemorySegment x = seg(arena, randn(new SplittableRandom(31), t * D, 1.0)), y = F32.alloc(arena, (long) t * D);
        CompeteSmoeLayer plain = layer(config(t).routerLossCoef(1.0).build(), 6, POOL);
        CompeteSmoeLayer hybrid = layer(config(t).routerLossCoef(1.0).hybrid(true).routerTheta(0.5).build(), 6, POOL);
        plain.forward(x, 0, t, y, 0, Policy.COMPETITION, true);
        hybrid.forward(x, 0, t, y, 0, Policy.COMPETITION, true);
        assertThat(plain.hybridLoss()).isZero();
        assertThat(hybrid.hybridLoss()).isPositive();
        // the same selected entries by hand from the layer's own p, q
        float[] qs = TestData.softmaxRows(hybrid.affinity(), t, E);
        double byHand = 0;
        for (int i = 0; i < t; i++) {
            for (int r = 0; r < K; r++) {
                int at = i * E + hybrid.routing().expert[i * K + r];
                double diff = hybrid.routing().scores[at] - qs[at];
                byHand += diff * diff;
            }
        }
        assertThat(hybrid.hybridLoss()).isCloseTo(byHand / (t * K), within(1e-7));
        assertThat(hybrid.routerLoss()).isCloseTo(plain.routerLoss() + 0.5 * hybrid.hybridLoss(), within(1e-9));
    }

    /** Competition with the hybrid term: 1 and 2 threads give the same bits (outputs, losses, every gradient). */
    @Test
    void hybridCompetitionIsBitIdenticalForOneAndTwoThreads() {
        int t = 7;
        SplittableRandom rng = new SplittableRandom(41);
        float[] xs = randn(rng, t * D, 1.0), dys = randn(rng, t * D, 1.0);
        float[][] results = new float[2][];
        java.util.List<float[]> grads1 = new java.util.ArrayList<>(), grads2 = new java.util.ArrayList<>();
        double[] aux = new double[2];
        WorkerPool[] pools = {SERIAL, POOL};
        for (int run = 0; run < 2; run++) {
            CompeteSmoeLayer m = layer(config(t).hybrid(true).routerTheta(0.4).diversityLossCoef(0.2).build(), 17, pools[run]);
            MemorySegment x = seg(arena, xs), y = F32.alloc(arena, (long) t * D), dx = F32.alloc(arena, (long) t * D);
            for (Param p : m.params()) p.zeroGrad();
            m.forward(x, 0, t, y, 0, Policy.COMPETITION, true);
            m.backward(x, 0, seg(arena, dys), 0, dx, 0);
            float[] yd = F32.toArray(y, 0, t * D), dxd = F32.toArray(dx, 0, t * D);
            float[] both = new float[2 * t * D];
            System.arraycopy(yd, 0, both, 0, t * D);
            System.arraycopy(dxd, 0, both, t * D, t * D);
            results[run] = both;
            aux[run] = m.auxLoss();
            for (Param p : m.params()) (run == 0 ? grads1 : grads2).add(p.gradToArray());
        }
        assertThat(results[0]).containsExactly(results[1]);
        assertThat(aux[0]).isEqualTo(aux[1]);
        for (int i = 0; i < grads1.size(); i++) assertThat(grads1.get(i)).containsExactly(grads2.get(i));
    }

    @ParameterizedTest(name = "{0} normSigmoid={1} hybrid={2}")
    @CsvSource({"ROUTER, false, false", "COMPETITION, false, false", "COMPETITION, true, false",
            "COMPETITION, false, true"})
    void backwardMatchesFiniteDifferences(Policy policy, boolean normSigmoid, boolean hybrid) {
        int t = 6;
        CompeteSmoeLayer m = layer(config(t).normSigmoid(normSigmoid).balanceLossCoef(0.2).routerZLossCoef(0.05)
                .groupSize(3).routerLossCoef(0.7).diversityLossCoef(0.3).balCompLossCoef(0.4)
                .hybrid(hybrid).routerTheta(0.6).build(), 13, SERIAL);
        SplittableRandom rng = new SplittableRandom(14);
        float[] rs = randn(rng, t * D, 1.0);
        MemorySegment x = seg(arena, randn(rng, t * D, 1.0)), y = F32.alloc(arena, (long) t * D);
        MemorySegment dx = F32.alloc(arena, (long) t * D);
        for (Param p : m.params()) p.zeroGrad();
        m.forward(x, 0, t, y, 0, policy, true);
        assertThat(m.auxLoss()).isGreaterThan(0);
        m.backward(x, 0, seg(arena, rs), 0, dx, 0);
        // The router loss's target softmax(a) is a stop-gradient: the probed function holds it at this forward's value
        // (perturbing an expert weight or x moves a, and with it the target, but no gradient may follow that path).
        float[] target = new float[t * E];
        for (int i = 0; i < t; i++) {
            double[] a = new double[E];
            for (int j = 0; j < E; j++) a[j] = m.affinity()[i * E + j];
            double[] q = TestData.softmax(a);
            for (int j = 0; j < E; j++) target[i * E + j] = (float) q[j];
        }
        double rc = m.config().routerLossCoef();
        GradCheck g = new GradCheck("CompeteSMoE " + policy, () -> {
            m.forward(x, 0, t, y, 0, policy, true);
            double l = TestData.dot(rs, y, 0) + m.auxLoss();
            if (policy == Policy.COMPETITION) {
                l -= rc * m.routerLoss();
                l += rc * CompetitionLosses.routerLoss(m.routing().scores, target, t, E, 0, null);
                if (hybrid) {
                    l += rc * 0.6 * CompetitionLosses.topKRouterLoss(m.routing().scores, target, m.routing().expert,
                            t, E, K, 0, null);
                }
            }
            return l;
        });
        g.probe("x", x, 0, t * D, F32.toArray(dx, 0, t * D), 18);
        for (Param p : m.params()) g.probe(p.name(), p.data(), 0, (int) p.numel(), p.gradToArray(), 12);
        g.assertMostlyChecked();
    }

    // ------------------------------------------------------------------ schedule

    @Test
    void scheduleRespectsWarmUpRateAndTheCapPerStep() {
        int total = 20_000;
        CompeteSchedule one = new CompeteSchedule(total, 1, 0.05, 0.05, 3, 42);
        assertThat(one.warmUpSteps()).isEqualTo(1000);
        for (int s = 0; s < 1000; s++) assertThat(one.competes(0, s)).isFalse();
        // 19 000 Bernoulli(0.05) draws: mean 950, σ ≈ 30
        assertThat(one.competitionSteps(0)).isBetween(850, 1050);

        int layers = 6, cap = 2;
        CompeteSchedule many = new CompeteSchedule(2000, layers, 0.1, 0.25, cap, 7);
        int draws = 0;
        CounterRng rng = new CounterRng(7);
        for (int l = 0; l < layers; l++) for (int i = 0; i < 1800; i++) if (rng.uniform(l, i) < 0.25) draws++;
        int granted = 0;
        for (int l = 0; l < layers; l++) granted += many.competitionSteps(l);
        // capacity 2·1800 = 3600 > ~2700 draws: crowded draws are moved, none lost
        assertThat(granted).isEqualTo(draws);
        for (int s = 0; s < 2000; s++) {
            int n = 0;
            for (int l = 0; l < layers; l++) if (many.competes(l, s)) n++;
            assertThat(n).as("layers competing at step %d", s).isLessThanOrEqualTo(cap);
        }
    }

    @Test
    void scheduleIsAPureFunctionOfItsSeed() {
        CompeteSchedule a = new CompeteSchedule(500, 3, 0.05, 0.2, 3, 1), b = new CompeteSchedule(500, 3, 0.05, 0.2, 3, 1);
        CompeteSchedule c = new CompeteSchedule(500, 3, 0.05, 0.2, 3, 2);
        boolean differs = false;
        for (int l = 0; l < 3; l++) {
            for (int s = 0; s < 500; s++) {
                assertThat(a.competes(l, s)).isEqualTo(b.competes(l, s));
                differs |= a.competes(l, s) != c.competes(l, s);
            }
        }
        assertThat(differs).isTrue();
    }

    @Test
    void invalidConfigNamesTheField() {
        assertThatThrownBy(() -> config(4).topK(5).build()).isInstanceOf(InvalidConfigException.class)
                .hasMessageContaining("compete.topK");
        assertThatThrownBy(() -> config(4).diversityLossCoef(-1).build()).isInstanceOf(InvalidConfigException.class)
                .hasMessageContaining("compete.diversityLossCoef");
        assertThatThrownBy(() -> config(4).hybrid(true).routerTheta(Double.NaN).build())
                .isInstanceOf(InvalidConfigException.class).hasMessageContaining("compete.routerTheta");
        assertThatThrownBy(() -> new CompeteSchedule(100, 2, 1.0, 0.05, 3, 0)).isInstanceOf(InvalidConfigException.class)
                .hasMessageContaining("compete.warmUp");
        assertThatThrownBy(() -> new CompeteSchedule(100, 2, 0.05, 0.05, 0, 0)).isInstanceOf(InvalidConfigException.class)
                .hasMessageContaining("compete.maxCompeteInIter");
        CompeteSchedule s = new CompeteSchedule(100, 2, 0.05, 0.05, 3, 0);
        assertThatThrownBy(() -> new CompeteSmoeLayer(config(4).layerIndex(2).build(), s, arena, Kernels.get(), POOL))
                .hasMessageContaining("compete.layerIndex");
    }

    private static float maxAbs(float[] v) {
        float m = 0;
        for (float x : v) m = Math.max(m, Math.abs(x));
        return m;
    }
}
