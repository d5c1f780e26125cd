package io.moe4j.moe;

import io.moe4j.kernel.Kernels;
import io.moe4j.moe.loss.BalanceLoss;
import io.moe4j.moe.router.MoePlusPlusRouter;
import io.moe4j.nn.F32;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

/**
 * MoE++ (spec §4.14): zero, copy and constant experts, the moe++ router (two-layer gate, zero-expert rule, input
 * scaling, logit normalisation) and the gating residual between layers. Expert ids with E = 6:
 * FFN 0–1, constant 2–3, copy 4, zero 5.
 */
class MoePlusPlusTest {
    private static final WorkerPool POOL = new WorkerPool(2);
    private static final int D = 4, F = 5, E = 6, FFN = 2, CONST0 = 2, COPY = 4, ZERO = 5;
    private static final float[] X = {1f, 0.5f, -0.3f, 0.2f};
    private final Arena arena = Arena.ofAuto();

    @AfterAll
    static void close() { POOL.close(); }

    private static MoeConfig.Builder base() {
        return MoeConfig.builder().router("moe++").dModel(D).numExperts(E).topK(2).expertHidden(F)
                .constantExperts(2).copyExperts(1).zeroExperts(1).balanceLoss(BalanceLoss.NONE).maxTokens(8);
    }

    /** A layer whose linear router scores expert e by beta[e]·x_0, so the test picks the experts. */
    private MoeLayer pinned(MoeConfig c, double... beta) {
        MoeLayer layer = new MoeLayer(c, arena, Kernels.get(), POOL);
        layer.init(new SplittableRandom(1), 0.5, 1.0);
        float[] w = new float[E * D];
        for (int e = 0; e < E; e++) w[e * D] = (float) beta[e];
        layer.router().params().get(0).set(w);
        return layer;
    }

    private float[] run(MoeLayer layer, float[] xs) {
        MemorySegment x = F32.alloc(arena, xs.length), y = F32.alloc(arena, xs.length);
        F32.copyIn(xs, x, 0);
        layer.forward(x, 0, xs.length / D, y, 0, false);
        return F32.toArray(y, 0, xs.length);
    }

    private static float[] scaled(float[] v, float s) {
        float[] o = v.clone();
        for (int i = 0; i < o.length; i++) o[i] *= s;
        return o;
    }

    private static double[] ffn(MoeLayer layer, float[] xin, int e) {
        ExpertBank b = layer.experts();
        return RefFfn.ffn(ExpertType.SWIGLU, xin, 0, D, F, b.gate().toArray(), b.up().toArray(), b.down().toArray(), e);
    }

    /** Property 1: {Zero, FFN_j} ⇒ FFN_j(xin) with weight 1; xin = k·x (released code) or x (no_mul_topk). */
    @Test
    void zeroPlusFfnGivesTheFfnWithWeightOne() {
        for (boolean noMul : new boolean[]{false, true}) {
            MoeLayer layer = pinned(base().expertInputNoMulTopK(noMul).build(), -5, 3, -5, -5, -5, 4);
            float[] y = run(layer, X);
            assertThat(layer.routing().expert[0]).isEqualTo(ZERO);
            assertThat(layer.routing().expert[1]).isEqualTo(1);
            assertThat(layer.routing().weight[1]).isEqualTo(1f);
            double[] ref = ffn(layer, scaled(X, noMul ? 1 : 2), 1);
            for (int j = 0; j < D; j++) assertThat((double) y[j]).as("noMul=%s y[%d]", noMul, j).isCloseTo(ref[j], within(1e-5));
        }
    }

    /** Paper behaviour: the zero expert keeps its gate value, so FFN_j gets p_j/(p_j + p_zero) after renorm. */
    @Test
    void paperZeroExpertKeepsItsWeight() {
        MoeLayer layer = pinned(base().dropZeroExpertWeight(false).expertInputNoMulTopK(true).build(), -5, 3, -5, -5, -5, 4);
        float[] y = run(layer, X);
        double w = 1 / (1 + Math.exp(4 - 3)); // p_1/(p_1 + p_5) = σ(3 − 4)
        assertThat((double) layer.routing().weight[1]).isCloseTo(w, within(1e-6));
        double[] ref = ffn(layer, X, 1);
        for (int j = 0; j < D; j++) assertThat((double) y[j]).isCloseTo(w * ref[j], within(1e-5));
    }

    /** Property 2: {Copy, Zero} ⇒ xin. */
    @Test
    void copyPlusZeroGivesTheInput() {
        for (boolean noMul : new boolean[]{false, true}) {
            MoeLayer layer = pinned(base().expertInputNoMulTopK(noMul).build(), -5, -5, -5, -5, 3, 4);
            float[] y = run(layer, X);
            assertThat(layer.routing().expert[1]).isEqualTo(COPY);
            assertThat(y).containsExactly(scaled(X, noMul ? 1 : 2), within(1e-6f));
        }
    }

    /**
     * Property 3: a constant expert's output lies on the segment between xin and v (and equals α0·xin + α1·v with
     * α = softmax(W_c·xin)), for random W_c, v and inputs.
     */
    @Test
    void constantExpertOutputLiesBetweenInputAndItsVector() {
        SplittableRandom rng = new SplittableRandom(7);
        for (int trial = 0; trial < 20; trial++) {
            int c = trial % 2;
            double[] beta = {-5, -5, -5, -5, -5, 4};
            beta[CONST0 + c] = 3;
            MoeLayer layer = pinned(base().build(), beta);
            layer.special().constantGate().set(MoeLayerTest.randn(rng, 2 * 2 * D, 2.0));
            layer.special().constantValue().set(MoeLayerTest.randn(rng, 2 * D, 1.0));
            float[] xs = MoeLayerTest.randn(rng, D, 1.0);
            xs[0] = Math.abs(xs[0]) + 0.5f; // keeps the pinned order (scores scale with x_0)
            float[] y = run(layer, xs);
            assertThat(layer.routing().expert[1]).isEqualTo(CONST0 + c);
            float[] xin = scaled(xs, 2), v = new float[D], wc = layer.special().constantGate().toArray();
            System.arraycopy(layer.special().constantValue().toArray(), c * D, v, 0, D);
            double num = 0, den = 0;
            for (int j = 0; j < D; j++) {
                num += (y[j] - v[j]) * (xin[j] - v[j]);
                den += (xin[j] - v[j]) * (xin[j] - v[j]);
            }
            double lambda = num / den;
            assertThat(lambda).isBetween(0.0, 1.0);
            double z0 = 0, z1 = 0;
            for (int j = 0; j < D; j++) {
                z0 += wc[c * 2 * D + j] * xin[j];
                z1 += wc[c * 2 * D + D + j] * xin[j];
            }
            double a0 = 1 / (1 + Math.exp(z1 - z0));
            assertThat(lambda).isCloseTo(a0, within(1e-4));
            for (int j = 0; j < D; j++) {
                assertThat((double) y[j]).isCloseTo(lambda * xin[j] + (1 - lambda) * v[j], within(1e-5));
                assertThat((double) y[j]).isCloseTo(a0 * xin[j] + (1 - a0) * v[j], within(1e-5));
            }
        }
    }

    /** Zero, copy and constant experts are not FFNs: the GEMM bank holds only the FFN experts. */
    @Test
    void specialExpertsAreNotInTheExpertBank() {
        MoeLayer layer = pinned(base().build(), -5, -5, -5, -5, 3, 4);
        run(layer, X);
        assertThat(layer.experts().up().value().numel()).isEqualTo((long) FFN * F * D);
        assertThat(layer.routing().load[COPY] + layer.routing().load[ZERO]).isEqualTo(2);
        assertThat(layer.params()).extracting(Param::name).contains("layers.0.moe.constant_experts.wg",
                "layers.0.moe.constant_experts.value");
    }

    /** The two-layer gate computes W2·tanh(W1·x) with W1: (8E, d), W2: (E, 8E). */
    @Test
    void twoLayerGateLogits() {
        MoeLayer layer = new MoeLayer(base().routerHidden(8 * E).build(), arena, Kernels.get(), POOL);
        layer.init(new SplittableRandom(3), 0.5, 1.0);
        List<Param> rp = layer.router().params();
        assertThat(rp).extracting(Param::name).containsExactly("layers.0.moe.router.w1", "layers.0.moe.router.w2");
        float[] w1 = rp.get(0).toArray(), w2 = rp.get(1).toArray();
        assertThat(w1).hasSize(8 * E * D);
        run(layer, X);
        for (int e = 0; e < E; e++) {
            double z = 0;
            for (int h = 0; h < 8 * E; h++) {
                double a = 0;
                for (int j = 0; j < D; j++) a += w1[h * D + j] * X[j];
                z += w2[e * 8 * E + h] * Math.tanh(a);
            }
            assertThat((double) layer.logits()[e]).isCloseTo(z, within(1e-5));
        }
    }

    /** Logit normalisation: the softmax input has the target std and the routing is invariant to logit scale. */
    @Test
    void logitNormalisationIsScaleInvariant() {
        MoeConfig c = base().logitsNormStd(0.7).build();
        MoeLayer layer = new MoeLayer(c, arena, Kernels.get(), POOL);
        layer.init(new SplittableRandom(4), 0.5, 1.0);
        float[] xs = MoeLayerTest.randn(new SplittableRandom(5), 3 * D, 1.0);
        float[] y1 = run(layer, xs);
        float[] p1 = layer.routing().scores.clone();
        for (int i = 0; i < 3; i++) {
            double[] lp = new double[E];
            double m = 0, v = 0;
            for (int e = 0; e < E; e++) m += lp[e] = Math.log(p1[i * E + e]);
            m /= E;
            for (int e = 0; e < E; e++) v += (lp[e] - m) * (lp[e] - m);
            assertThat(Math.sqrt(v / (E - 1))).isCloseTo(0.7, within(1e-4));
        }
        Param w = layer.router().params().get(0);
        w.set(scaled(w.toArray(), 3f));
        float[] y2 = run(layer, xs);
        for (int i = 0; i < 3 * E; i++) assertThat(layer.routing().scores[i]).isCloseTo(p1[i], within(1e-6f));
        assertThat(y2).containsExactly(y1, within(1e-5f));
    }

    /** Property 4: G = 0 ⇒ the same layer as without a gating residual (forward and backward). */
    @Test
    void zeroResidualMapEqualsNoResidual() {
        int t = 7;
        MoeConfig plain = base().routerHidden(12).balanceLoss(BalanceLoss.HF).balanceCoef(0.1).zLossCoef(0.01)
                .maxTokens(t).build();
        MoeLayer a = new MoeLayer(plain, arena, Kernels.get(), POOL);
        MoeLayer b = new MoeLayer(plain.toBuilder().gatingResidual(true).build(), arena, Kernels.get(), POOL);
        a.init(new SplittableRandom(6), 0.5, 1.0);
        for (Param p : a.params()) b.params().stream().filter(q -> q.name().equals(p.name())).findFirst().orElseThrow()
                .set(p.toArray());
        Param g = ((MoePlusPlusRouter) b.router()).gateMap();
        assertThat(g.toArray()).containsOnly(0f);
        SplittableRandom rng = new SplittableRandom(8);
        float[] xs = MoeLayerTest.randn(rng, t * D, 1.0), dys = MoeLayerTest.randn(rng, t * D, 1.0);
        float[] prev = MoeLayerTest.randn(rng, t * E, 3.0);
        float[] dPrev = new float[t * E];
        MemorySegment x = seg(xs), dy = seg(dys);
        float[][] out = new float[2][], dxs = new float[2][];
        int i = 0;
        for (MoeLayer layer : new MoeLayer[]{a, b}) {
            MemorySegment y = F32.alloc(arena, (long) t * D), dx = F32.alloc(arena, (long) t * D);
            layer.forward(x, 0, t, null, layer == b ? prev : null, y, 0, true);
            layer.backward(x, 0, dy, 0, dx, 0, null, layer == b ? dPrev : null);
            out[i] = F32.toArray(y, 0, t * D);
            dxs[i++] = F32.toArray(dx, 0, t * D);
        }
        assertThat(out[1]).isEqualTo(out[0]);
        assertThat(dxs[1]).isEqualTo(dxs[0]);
        assertThat(dPrev).containsOnly(0f);
        for (Param p : a.params()) {
            Param q = b.params().stream().filter(r -> r.name().equals(p.name())).findFirst().orElseThrow();
            assertThat(q.gradToArray()).as(p.name()).isEqualTo(p.gradToArray());
        }
        assertThat(g.gradToArray()).as("G still learns").isNotEqualTo(new float[E * E]);
    }

    /**
     * Gating residual, one layer: ∂L/∂prevLogits, ∂L/∂G, ∂L/∂x and the gate's gradients against finite
     * differences, with L = Σ R⊙y + aux + Σ Q⊙logits (Q stands for the next layer's gradient into these logits).
     */
    @Test
    void gatingResidualGradientsMatchFiniteDifferences() {
        int t = 7;
        MoeConfig c = base().routerHidden(12).gatingResidual(true).balanceLoss(BalanceLoss.HF).balanceCoef(0.1)
                .zLossCoef(0.01).maxTokens(t).build();
        MoeLayer layer = new MoeLayer(c, arena, Kernels.get(), POOL);
        layer.init(new SplittableRandom(9), 0.5, 1.0);
        Param g = ((MoePlusPlusRouter) layer.router()).gateMap();
        g.set(MoeLayerTest.randn(new SplittableRandom(10), E * E, 0.5));
        SplittableRandom rng = new SplittableRandom(11);
        float[] xs = MoeLayerTest.randn(rng, t * D, 1.0), rs = MoeLayerTest.randn(rng, t * D, 1.0);
        float[] prev = MoeLayerTest.randn(rng, t * E, 1.0), qs = MoeLayerTest.randn(rng, t * E, 1.0);
        MemorySegment x = seg(xs), y = F32.alloc(arena, (long) t * D), dx = F32.alloc(arena, (long) t * D);
        for (Param p : layer.params()) p.zeroGrad();
        float[] dPrev = new float[t * E];
        layer.forward(x, 0, t, null, prev, y, 0, true);
        layer.backward(x, 0, seg(rs), 0, dx, 0, qs.clone(), dPrev);
        float[] dxA = F32.toArray(dx, 0, t * D);
        List<float[]> grads = new ArrayList<>();
        for (Param p : layer.params()) grads.add(p.gradToArray());

        Loss loss = (pv) -> {
            layer.forward(x, 0, t, null, pv, y, 0, true);
            double l = layer.routing().auxLoss();
            for (int i = 0; i < t * D; i++) l += (double) rs[i] * F32.get(y, i);
            for (int i = 0; i < t * E; i++) l += (double) qs[i] * layer.logits()[i];
            return l;
        };
        int probed = 0, checked = 0;
        for (int i = 0; i < t * E; i++, probed++) {
            int idx = i;
            if (MoeGradientCheckTest.check("dPrev[" + i + "]", dPrev[i], h -> {
                float[] pv = prev.clone();
                pv[idx] += h;
                return loss.at(pv);
            })) checked++;
        }
        for (int i = 0; i < t * D; i += 2, probed++) {
            int idx = i;
            if (MoeGradientCheckTest.check("dx[" + i + "]", dxA[i], h -> {
                float[] xp = xs.clone();
                xp[idx] += h;
                F32.copyIn(xp, x, 0);
                double l = loss.at(prev);
                F32.copyIn(xs, x, 0);
                return l;
            })) checked++;
        }
        List<Param> ps = layer.params();
        for (int pi = 0; pi < ps.size(); pi++) {
            Param p = ps.get(pi);
            float[] v = p.toArray(), ga = grads.get(pi);
            for (int i = 0; i < v.length; i += Math.max(1, v.length / 10), probed++) {
                int idx = i;
                if (MoeGradientCheckTest.check(p.name() + "[" + i + "]", ga[i], h -> {
                    float[] vp = v.clone();
                    vp[idx] += h;
                    p.set(vp);
                    double l = loss.at(prev);
                    p.set(v);
                    return l;
                })) checked++;
            }
        }
        assertThat(checked).as("checked of %d probed", probed).isGreaterThanOrEqualTo((int) (probed * 0.9));
    }

    /**
     * Two MoE++ layers wired by the contract (layer 2 takes layer 1's logits; its dPrevLogits is layer 1's
     * dLogits): layer 1's router and input gradients include the path through layer 2's residual.
     */
    @Test
    void twoLayerChainGradientsMatchFiniteDifferences() {
        int t = 5;
        MoeConfig c = base().routerHidden(12).gatingResidual(true).maxTokens(t).build();
        MoeLayer l1 = new MoeLayer(c, arena, Kernels.get(), POOL);
        MoeLayer l2 = new MoeLayer(c.toBuilder().layerIndex(1).build(), arena, Kernels.get(), POOL);
        l1.init(new SplittableRandom(12), 0.5, 1.0);
        l2.init(new SplittableRandom(13), 0.5, 1.0);
        ((MoePlusPlusRouter) l2.router()).gateMap().set(MoeLayerTest.randn(new SplittableRandom(14), E * E, 1.0));
        SplittableRandom rng = new SplittableRandom(15);
        float[] x1s = MoeLayerTest.randn(rng, t * D, 1.0), x2s = MoeLayerTest.randn(rng, t * D, 1.0);
        float[] r1 = MoeLayerTest.randn(rng, t * D, 1.0), r2 = MoeLayerTest.randn(rng, t * D, 1.0);
        MemorySegment x1 = seg(x1s), x2 = seg(x2s), y1 = F32.alloc(arena, (long) t * D), y2 = F32.alloc(arena, (long) t * D);
        MemorySegment dx1 = F32.alloc(arena, (long) t * D), dx2 = F32.alloc(arena, (long) t * D);
        for (Param p : l1.params()) p.zeroGrad();
        for (Param p : l2.params()) p.zeroGrad();
        l1.forward(x1, 0, t, null, null, y1, 0, true);
        l2.forward(x2, 0, t, null, l1.logits(), y2, 0, true);
        float[] dLogits1 = new float[t * E];
        l2.backward(x2, 0, seg(r2), 0, dx2, 0, null, dLogits1);
        l1.backward(x1, 0, seg(r1), 0, dx1, 0, dLogits1, null);
        assertThat(dLogits1).isNotEqualTo(new float[t * E]);

        Chain loss = () -> {
            l1.forward(x1, 0, t, null, null, y1, 0, true);
            l2.forward(x2, 0, t, null, l1.logits(), y2, 0, true);
            double l = 0;
            for (int i = 0; i < t * D; i++) l += (double) r1[i] * F32.get(y1, i) + (double) r2[i] * F32.get(y2, i);
            return l;
        };
        float[] dxA = F32.toArray(dx1, 0, t * D);
        int probed = 0, checked = 0;
        for (int i = 0; i < t * D; i += 2, probed++) {
            int idx = i;
            if (MoeGradientCheckTest.check("dx1[" + i + "]", dxA[i], h -> {
                float[] xp = x1s.clone();
                xp[idx] += h;
                F32.copyIn(xp, x1, 0);
                double l = loss.at();
                F32.copyIn(x1s, x1, 0);
                return l;
            })) checked++;
        }
        for (Param p : l1.router().params()) {
            float[] v = p.toArray(), ga = p.gradToArray();
            for (int i = 0; i < v.length; i += Math.max(1, v.length / 10), probed++) {
                int idx = i;
                if (MoeGradientCheckTest.check(p.name() + "[" + i + "]", ga[i], h -> {
                    float[] vp = v.clone();
                    vp[idx] += h;
                    p.set(vp);
                    double l = loss.at();
                    p.set(v);
                    return l;
                })) checked++;
            }
        }
        assertThat(checked).as("checked of %d probed", probed).isGreaterThanOrEqualTo((int) (probed * 0.9));
    }

    @Test
    void residualInputNeedsTheConfigSwitch() {
        MoeLayer layer = new MoeLayer(base().build(), arena, Kernels.get(), POOL);
        assertThatThrownBy(() -> layer.forward(seg(X), 0, 1, null, new float[E], F32.alloc(arena, D), 0, false))
                .hasMessageContaining("moe.gatingResidual");
        MoeLayer plain = new MoeLayer(MoeConfig.builder().dModel(D).numExperts(4).expertHidden(F).build(), arena,
                Kernels.get(), POOL);
        assertThatThrownBy(() -> plain.forward(seg(X), 0, 1, null, new float[4], F32.alloc(arena, D), 0, false))
                .hasMessageContaining("gating residual");
    }

    @Test
    void invalidConfigsNameTheField() {
        assertThatThrownBy(() -> base().constantExperts(3).copyExperts(2).build())
                .isInstanceOf(InvalidConfigException.class).hasMessageContaining("moe.constantExperts")
                .hasMessageContaining("moe.numExperts = 6");
        assertThatThrownBy(() -> base().zeroExperts(-1).build()).hasMessageContaining("moe.zeroExperts");
        assertThatThrownBy(() -> base().routerHidden(-1).build()).hasMessageContaining("moe.routerHidden");
        assertThatThrownBy(() -> base().logitsNormStd(Double.NaN).build()).hasMessageContaining("moe.logitsNormStd");
        assertThatThrownBy(() -> base().zeroComputeBalanceWeight(-0.5).build())
                .isInstanceOf(InvalidConfigException.class).hasMessageContaining("moe.zeroComputeBalanceWeight");
        assertThatThrownBy(() -> MoeConfig.builder().dModel(D).numExperts(E).expertHidden(F)
                .zeroComputeBalanceWeight(0.5).build())
                .isInstanceOf(InvalidConfigException.class).hasMessageContaining("moe.zeroComputeBalanceWeight")
                .hasMessageContaining("moe.router = softmax-topk");
        MoeConfig jittered = base().routerHidden(8).jitter(0.1).build();
        assertThatThrownBy(() -> new MoeLayer(jittered, arena, Kernels.get(), POOL))
                .isInstanceOf(InvalidConfigException.class).hasMessageContaining("moe.jitter");
    }

    /**
     * The heterogeneous balance loss with τ (§4.14): against a hand computation from the routing,
     * L = coef·E·Σ_e η_e·F_e·P_e with η = 1 for FFN experts and τ for the zero-computation ones, in each
     * normalisation; τ = 1 is the plain loss, and L is affine in τ.
     */
    @Test
    void heterogeneousBalanceLossWeightsZeroComputationExpertsByTau() {
        int t = 8;
        float[] xs = MoeLayerTest.randn(new SplittableRandom(5), t * D, 1.0);
        for (BalanceLoss kind : new BalanceLoss[]{BalanceLoss.HF, BalanceLoss.MEGABLOCKS, BalanceLoss.SWITCH}) {
            double[] values = new double[3];
            double[] taus = {0.0, 0.3, 1.0};
            for (int ti = 0; ti < 3; ti++) {
                MoeConfig c = base().balanceLoss(kind).balanceCoef(0.1).zeroComputeBalanceWeight(taus[ti]).build();
                MoeLayer layer = new MoeLayer(c, arena, Kernels.get(), POOL);
                layer.init(new SplittableRandom(3), 0.5, 1.0);
                run(layer, xs);
                Routing r = layer.routing();
                double[] f = new double[E], p = new double[E];
                for (int i = 0; i < t; i++) {
                    for (int s = 0; s < 2; s++) {
                        if (kind == BalanceLoss.SWITCH && s > 0) continue;
                        f[r.expert[i * 2 + s]] += kind == BalanceLoss.MEGABLOCKS ? 1.0 / (t * 2) : 1.0 / t;
                    }
                    for (int j = 0; j < E; j++) p[j] += r.scores[i * E + j] / (double) t;
                }
                double byHand = 0;
                for (int j = 0; j < E; j++) byHand += (j < FFN ? 1.0 : taus[ti]) * f[j] * p[j];
                byHand *= 0.1 * E;
                assertThat(r.balanceLoss).as("%s tau %s", kind, taus[ti]).isCloseTo(byHand, within(1e-7));
                values[ti] = r.balanceLoss;
            }
            assertThat(values[1]).as("affine in tau").isCloseTo(values[0] + 0.3 * (values[2] - values[0]), within(1e-7));
            assertThat(values[2]).as("zero-computation experts were selected").isGreaterThan(values[0]);
        }
    }

    /** The τ-weighted loss and its gradients: 1 and 2 threads give the same bits. */
    @Test
    void heterogeneousBalanceLossIsBitIdenticalForOneAndTwoThreads() {
        int t = 8;
        SplittableRandom rng = new SplittableRandom(9);
        float[] xs = MoeLayerTest.randn(rng, t * D, 1.0), dys = MoeLayerTest.randn(rng, t * D, 1.0);
        MoeConfig c = base().routerHidden(12).balanceLoss(BalanceLoss.HF).balanceCoef(0.1).zeroComputeBalanceWeight(0.25)
                .build();
        List<float[]> out = new ArrayList<>();
        try (WorkerPool one = new WorkerPool(1)) {
            for (WorkerPool pool : new WorkerPool[]{one, POOL}) {
                MoeLayer layer = new MoeLayer(c, arena, Kernels.get(), pool);
                layer.init(new SplittableRandom(3), 0.5, 1.0);
                MemorySegment x = seg(xs), y = F32.alloc(arena, xs.length), dx = F32.alloc(arena, xs.length);
                for (Param p : layer.params()) p.zeroGrad();
                layer.forward(x, 0, t, y, 0, true);
                layer.backward(x, 0, seg(dys), 0, dx, 0);
                out.add(F32.toArray(y, 0, xs.length));
                out.add(F32.toArray(dx, 0, xs.length));
                out.add(new float[]{(float) layer.routing().balanceLoss});
                for (Param p : layer.params()) out.add(p.gradToArray());
            }
        }
        int half = out.size() / 2;
        for (int i = 0; i < half; i++) assertThat(out.get(i)).as("array %d", i).containsExactly(out.get(half + i));
    }

    private MemorySegment seg(float[] v) {
        MemorySegment s = F32.alloc(arena, v.length);
        F32.copyIn(v, s, 0);
        return s;
    }

    interface Loss { double at(float[] prev); }

    interface Chain { double at(); }
}
