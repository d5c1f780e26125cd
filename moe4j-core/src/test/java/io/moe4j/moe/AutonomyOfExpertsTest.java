package io.moe4j.moe;

import io.moe4j.kernel.Kernels;
import io.moe4j.moe.loss.BalanceLoss;
import io.moe4j.moe.router.AutonomyRouter;
import io.moe4j.nn.F32;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

/**
 * Autonomy-of-Experts (spec §4.15): router-free self-selection by ‖x·W_down,e‖ and experts whose gate reuses that
 * low-rank activation. Parameters: router.wg (d, E·r), experts.gate (E, f, r) = W_up, experts.up (E, f, d) = V,
 * experts.down (E, d, f) = W2ᵀ.
 */
class AutonomyOfExpertsTest {
    private static final WorkerPool POOL = new WorkerPool(2);
    private static final int D = 8, F = 6, E = 4, R = 3, T = 6;
    private final Arena arena = Arena.ofAuto();

    @AfterAll
    static void close() { POOL.close(); }

    private static MoeConfig.Builder base() {
        return MoeConfig.builder().router("aoe").dModel(D).numExperts(E).topK(2).expertHidden(F).expertGateRank(R)
                .expertType(ExpertType.GEGLU).normalizeTopK(false).balanceLoss(BalanceLoss.MEGABLOCKS).maxTokens(T);
    }

    private MoeLayer layer(MoeConfig c, long seed) {
        MoeLayer l = new MoeLayer(c, arena, Kernels.get(), POOL);
        l.init(new SplittableRandom(seed), 0.5, 1.0);
        return l;
    }

    private float[] run(MoeLayer layer, float[] xs) {
        MemorySegment x = seg(xs), y = F32.alloc(arena, xs.length);
        layer.forward(x, 0, xs.length / D, y, 0, true);
        return F32.toArray(y, 0, xs.length);
    }

    private static float[] wg(MoeLayer l) { return ((AutonomyRouter) l.router()).downAll().toArray(); }

    /** Scaling W_down,e by c > 0 scales a_{t,e} by c and leaves the other experts' scores alone. */
    @Test
    void scalingAnExpertsDownProjectionScalesItsScore() {
        MoeLayer l = layer(base().build(), 1);
        float[] xs = MoeLayerTest.randn(new SplittableRandom(2), T * D, 1.0);
        run(l, xs);
        float[] a = l.routing().logits.clone();
        float[] w = wg(l);
        int e = 1;
        float c = 2.5f;
        for (int i = 0; i < D; i++) for (int q = 0; q < R; q++) w[i * E * R + e * R + q] *= c;
        ((AutonomyRouter) l.router()).downAll().set(w);
        run(l, xs);
        for (int t = 0; t < T; t++) {
            for (int j = 0; j < E; j++) {
                double want = j == e ? c * a[t * E + j] : a[t * E + j];
                assertThat((double) l.routing().logits[t * E + j]).isCloseTo(want, within(1e-5 * Math.abs(want)));
            }
        }
    }

    /** k = E: the dense mixture of all experts weighted by softmax(a), against a double-precision reference. */
    @ParameterizedTest
    @EnumSource(value = ExpertType.class, names = {"SWIGLU", "GEGLU"})
    void allExpertsGiveTheSoftmaxWeightedMixture(ExpertType type) {
        MoeLayer l = layer(base().expertType(type).topK(E).build(), 3);
        float[] xs = MoeLayerTest.randn(new SplittableRandom(4), T * D, 1.0);
        float[] y = run(l, xs);
        float[] w = wg(l), gate = l.experts().gate().toArray(), up = l.experts().up().toArray(),
                down = l.experts().down().toArray();
        for (int t = 0; t < T; t++) {
            double[][] acts = new double[E][R];
            double[] a = new double[E];
            for (int e = 0; e < E; e++) {
                for (int q = 0; q < R; q++) {
                    for (int i = 0; i < D; i++) acts[e][q] += xs[t * D + i] * w[i * E * R + e * R + q];
                    a[e] += acts[e][q] * acts[e][q];
                }
                a[e] = Math.sqrt(a[e]);
            }
            double[] p = MoeLayerTest.softmax(a);
            double[] ref = new double[D];
            for (int e = 0; e < E; e++) {
                double[] h = new double[F];
                for (int m = 0; m < F; m++) {
                    double g = 0, u = 0;
                    for (int q = 0; q < R; q++) g += gate[(e * F + m) * R + q] * acts[e][q];
                    for (int i = 0; i < D; i++) u += up[(e * F + m) * D + i] * xs[t * D + i];
                    h[m] = (type == ExpertType.SWIGLU ? RefFfn.silu(g) : RefFfn.geluTanh(g)) * u;
                }
                for (int j = 0; j < D; j++) for (int m = 0; m < F; m++) ref[j] += p[e] * down[(e * D + j) * F + m] * h[m];
            }
            for (int j = 0; j < D; j++) assertThat((double) y[t * D + j]).as("y[%d][%d]", t, j).isCloseTo(ref[j], within(1e-5));
            for (int e = 0; e < E; e++) assertThat((double) l.routing().scores[t * E + e]).isCloseTo(p[e], within(1e-6));
        }
    }

    /** Relabelling the experts (all their parameters together) relabels the routing and leaves the output. */
    @Test
    void permutingExpertsIsEquivariant() {
        int[] pi = {2, 0, 3, 1}; // expert e becomes expert pi[e]
        MoeConfig c = base().build();
        MoeLayer a = layer(c, 5), b = layer(c, 6);
        float[] w = wg(a), pw = new float[w.length];
        for (int i = 0; i < D; i++) for (int e = 0; e < E; e++) System.arraycopy(w, i * E * R + e * R, pw, i * E * R + pi[e] * R, R);
        ((AutonomyRouter) b.router()).downAll().set(pw);
        for (Param[] pq : new Param[][]{{a.experts().gate(), b.experts().gate()}, {a.experts().up(), b.experts().up()},
                {a.experts().down(), b.experts().down()}}) {
            float[] v = pq[0].toArray(), pv = new float[v.length];
            int block = v.length / E;
            for (int e = 0; e < E; e++) System.arraycopy(v, e * block, pv, pi[e] * block, block);
            pq[1].set(pv);
        }
        float[] xs = MoeLayerTest.randn(new SplittableRandom(7), T * D, 1.0);
        float[] ya = run(a, xs), yb = run(b, xs);
        assertThat(yb).containsExactly(ya, within(1e-6f));
        for (int s = 0; s < T * 2; s++) assertThat(b.routing().expert[s]).isEqualTo(pi[a.routing().expert[s]]);
    }

    /**
     * Unselected experts: W_down of every expert gets gradient through the norms, but an expert no token picked gets
     * none into its W_up, V and W2.
     */
    @Test
    void unselectedExpertsLearnOnlyThroughTheirScore() {
        MoeLayer l = layer(base().topK(1).balanceLoss(BalanceLoss.NONE).build(), 8);
        float[] xs = MoeLayerTest.randn(new SplittableRandom(9), D, 1.0);
        MemorySegment x = seg(xs), y = F32.alloc(arena, D), dx = F32.alloc(arena, D);
        for (Param p : l.params()) p.zeroGrad();
        l.forward(x, 0, 1, y, 0, true);
        l.backward(x, 0, seg(MoeLayerTest.randn(new SplittableRandom(10), D, 1.0)), 0, dx, 0);
        int chosen = l.routing().expert[0];
        float[] dw = ((AutonomyRouter) l.router()).downAll().gradToArray();
        for (int e = 0; e < E; e++) {
            double norm = 0;
            for (int i = 0; i < D; i++) for (int q = 0; q < R; q++) norm += Math.abs(dw[i * E * R + e * R + q]);
            assertThat(norm).as("W_down of expert %d", e).isPositive();
            for (Param p : new Param[]{l.experts().gate(), l.experts().up(), l.experts().down()}) {
                float[] g = p.gradToArray();
                int block = g.length / E;
                double s = 0;
                for (int i = e * block; i < (e + 1) * block; i++) s += Math.abs(g[i]);
                if (e == chosen) assertThat(s).as("%s of the chosen expert", p.name()).isPositive();
                else assertThat(s).as("%s of unselected expert %d", p.name(), e).isZero();
            }
        }
    }

    @Test
    void invalidConfigsNameTheField() {
        MoeConfig noRank = base().expertGateRank(0).build();
        assertThatThrownBy(() -> new MoeLayer(noRank, arena, Kernels.get(), POOL))
                .isInstanceOf(InvalidConfigException.class).hasMessageContaining("moe.expertGateRank");
        MoeConfig wrongRouter = base().router("softmax-topk").build();
        assertThatThrownBy(() -> new MoeLayer(wrongRouter, arena, Kernels.get(), POOL))
                .isInstanceOf(InvalidConfigException.class).hasMessageContaining("moe.expertGateRank")
                .hasMessageContaining("softmax-topk");
        assertThatThrownBy(() -> base().expertType(ExpertType.MLP_RELU).build())
                .isInstanceOf(InvalidConfigException.class).hasMessageContaining("moe.expertGateRank");
        MoeConfig jittered = base().jitter(0.1).build();
        assertThatThrownBy(() -> new MoeLayer(jittered, arena, Kernels.get(), POOL)).hasMessageContaining("moe.jitter");
    }

    private MemorySegment seg(float[] v) {
        MemorySegment s = F32.alloc(arena, v.length);
        F32.copyIn(v, s, 0);
        return s;
    }
}
