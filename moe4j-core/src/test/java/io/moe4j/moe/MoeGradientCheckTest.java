package io.moe4j.moe;

import io.moe4j.kernel.Kernels;
import io.moe4j.moe.loss.BalanceLoss;
import io.moe4j.nn.F32;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Analytic backward of the whole layer against central finite differences, for every expert type and the routers
 * implemented so far: L = Σ R ⊙ y + aux losses. Coordinates where the function is not smooth at the probe scale
 * (a top-k or capacity decision flips, a ReLU kink) are detected by comparing two step sizes and skipped; the test
 * requires that nearly all probed coordinates are checked.
 */
class MoeGradientCheckTest {
    private static final int T = 7, D = 6, F = 5, E = 4;
    /** Token ids for routers keyed on them (hash); the others ignore them. */
    private static final int[] TOKEN_IDS = {3, 1, 4, 1, 5, 9, 2};
    private final Arena arena = Arena.ofAuto();

    static Stream<Arguments> configs() {
        MoeConfig.Builder b = MoeConfig.builder().dModel(D).numExperts(E).topK(2).expertHidden(F).maxTokens(T)
                .balanceLoss(BalanceLoss.HF).balanceCoef(0.1).zLossCoef(0.01);
        List<Arguments> out = new ArrayList<>();
        for (ExpertType type : ExpertType.values()) out.add(Arguments.of(type + " renorm", b.expertType(type).build()));
        b.expertType(ExpertType.SWIGLU);
        out.add(Arguments.of("no renorm, megablocks loss", b.normalizeTopK(false).balanceLoss(BalanceLoss.MEGABLOCKS).build()));
        out.add(Arguments.of("routed scale 2.5", b.normalizeTopK(true).routedScale(2.5f).build()));
        out.add(Arguments.of("gated shared expert", b.routedScale(1f).sharedExperts(2).sharedHidden(3).sharedGate(true).build()));
        out.add(Arguments.of("switch with drops", MoeConfig.builder().dModel(D).numExperts(E).topK(1).router("switch")
                .expertHidden(F).maxTokens(T).balanceLoss(BalanceLoss.SWITCH).balanceCoef(0.1).zLossCoef(0.01)
                .dispatch(DispatchMode.CAPACITY).capacityRule(CapacityRule.FIXED).fixedCapacity(1).build()));
 
        MoeConfig.Builder ds = MoeConfig.builder().dModel(D).numExperts(E).topK(2).expertHidden(F).maxTokens(T)
                .nGroup(2).topkGroup(1).routedScale(2.5f).balanceLoss(BalanceLoss.MEGABLOCKS).balanceCoef(0.1);
        out.add(Arguments.of("deepseek-v3", ds.router("deepseek-v3").normalizeTopK(true).sharedExperts(1).sharedHidden(4).build()));
        out.add(Arguments.of("deepseek-v2", ds.router("deepseek-v2").normalizeTopK(false).nGroup(1).build()));
        out.add(Arguments.of("jitter 0.05 (fixed draw)", b.jitter(0.05).build()));
        b.jitter(0);
        out.add(Arguments.of("k = E", b.sharedExperts(0).sharedHidden(0).sharedGate(false).topK(E).build()));

        // Variable experts per token (slots = E).
        MoeConfig.Builder v = MoeConfig.builder().dModel(D).numExperts(E).topK(2).expertHidden(F).maxTokens(T)
                .zLossCoef(0.01);
        out.add(Arguments.of("top-p 0.6 + entropy + HF loss", v.router("top-p").topPThreshold(0.6)
                .entropyCoef(0.1).balanceLoss(BalanceLoss.HF).balanceCoef(0.1).build()));
        out.add(Arguments.of("top-p 0.5 + megablocks loss, GeGLU", v.topPThreshold(0.5)
                .balanceLoss(BalanceLoss.MEGABLOCKS).expertType(ExpertType.GEGLU).build()));
        out.add(Arguments.of("remoe", v.router("remoe").expertType(ExpertType.SWIGLU).l1Init(0.2).build()));
        out.add(Arguments.of("remoe + shared expert + jitter", v.sharedExperts(1).sharedHidden(3).jitter(0.05).build()));
        MoeConfig.Builder ec = MoeConfig.builder().router("expert-choice").dModel(D).numExperts(E).expertHidden(F)
                .maxTokens(T).zLossCoef(0.01).capacityRule(CapacityRule.FIXED);
        out.add(Arguments.of("expert-choice C = 3", ec.fixedCapacity(3).build()));
        out.add(Arguments.of("expert-choice groups of 4, C = 2, shared expert", ec.groupSize(4).fixedCapacity(2)
                .sharedExperts(1).sharedHidden(3).build()));

        MoeConfig.Builder noisy = MoeConfig.builder().router("noisy-topk").dModel(D).numExperts(E).topK(2).expertHidden(F)
                .maxTokens(T).balanceLoss(BalanceLoss.HF).balanceCoef(0.1).zLossCoef(0.01);
        out.add(Arguments.of("noisy-topk k=2 (fixed draw)", noisy.build()));
        out.add(Arguments.of("noisy-topk k=1, groups of 4", noisy.topK(1).groupSize(4).build()));
        MoeConfig.Builder vmoe = MoeConfig.builder().router("vmoe").dModel(D).numExperts(E).topK(2).expertHidden(F)
                .maxTokens(T).balanceLoss(BalanceLoss.SWITCH).balanceCoef(0.1).zLossCoef(0.01).noiseStd(2.0);
        out.add(Arguments.of("vmoe k=2 (fixed draw)", vmoe.build()));
        out.add(Arguments.of("vmoe k=1, groups of 4, capacity 1 BPR", vmoe.topK(1).groupSize(4)
                .dispatch(DispatchMode.CAPACITY).capacityRule(CapacityRule.FIXED).fixedCapacity(1)
                .priority(PriorityOrder.BATCH_PRIORITY).build()));
        out.add(Arguments.of("deepseek-v3 unbiased loss indicator", MoeConfig.builder().router("deepseek-v3").dModel(D)
                .numExperts(E).topK(2).expertHidden(F).maxTokens(T).nGroup(2).topkGroup(1).routedScale(2.5f)
                .balanceLoss(BalanceLoss.MEGABLOCKS).balanceCoef(0.1).groupSize(4).balanceUnbiasedTopK(true).build()));

        MoeConfig.Builder gshard = MoeConfig.builder().router("gshard").dModel(D).numExperts(E).topK(2).expertHidden(F)
                .maxTokens(T).balanceLoss(BalanceLoss.SWITCH).balanceCoef(0.1).zLossCoef(0.01)
                .dispatch(DispatchMode.CAPACITY).capacityRule(CapacityRule.FIXED).fixedCapacity(1).groupSize(4);
        out.add(Arguments.of("gshard legacy, capacity 1 per group of 4", gshard.build()));
        out.add(Arguments.of("gshard renormalised after drops, random policy", gshard.legacyNormalize(false)
                .secondExpert("random").secondExpertThreshold(0.5).build()));
        out.add(Arguments.of("gshard sampling, jitter, dropless", gshard.legacyNormalize(true).secondExpert("sampling")
                .jitter(0.05).dispatch(DispatchMode.DROPLESS).build()));
        out.add(Arguments.of("hash, capacity 2", MoeConfig.builder().router("hash").vocabSize(10).dModel(D).numExperts(E)
                .topK(1).expertHidden(F).maxTokens(T).dispatch(DispatchMode.CAPACITY).capacityRule(CapacityRule.FIXED)
                .fixedCapacity(2).build()));

        MoeConfig.Builder evo = MoeConfig.builder().router("evomoe").dModel(D).numExperts(E).topK(1).expertHidden(F)
                .maxTokens(T).balanceLoss(BalanceLoss.HF).balanceCoef(0.1).zLossCoef(0.01);
        out.add(Arguments.of("evomoe hard phase, groups of 4, jitter", evo.groupSize(4).jitter(0.05).build()));
        out.add(Arguments.of("evomoe soft phase, tau 0.7", evo.groupSize(0).jitter(0).hardAfterStep(100)
                .temperatureMax(0.7).temperatureMin(0.7).build()));

        // MoE++ (§4.14): 6 experts = 2 FFN + 2 constant + copy + zero
        MoeConfig.Builder pp = MoeConfig.builder().router("moe++").dModel(D).numExperts(6).topK(2).expertHidden(F)
                .maxTokens(T).constantExperts(2).copyExperts(1).zeroExperts(1)
                .balanceLoss(BalanceLoss.HF).balanceCoef(0.1).zLossCoef(0.01);
        out.add(Arguments.of("moe++ code: 2-layer gate, zero weight dropped, input x k",
                pp.routerHidden(48).build()));
        out.add(Arguments.of("moe++ paper: zero keeps weight, logits norm, no renorm",
                pp.routerHidden(0).dropZeroExpertWeight(false).expertInputNoMulTopK(true).logitsNormStd(1.0)
                        .normalizeTopK(false).build()));
        out.add(Arguments.of("moe++ heterogeneous balance loss tau 0.3, megablocks, groups of 4",
                pp.routerHidden(48).dropZeroExpertWeight(true).expertInputNoMulTopK(false).logitsNormStd(0)
                        .normalizeTopK(true).balanceLoss(BalanceLoss.MEGABLOCKS).groupSize(4)
                        .zeroComputeBalanceWeight(0.3).build()));
        // AoE (§4.15): router-free, low-rank gate shared with the norm scores
        MoeConfig.Builder aoe = MoeConfig.builder().router("aoe").dModel(D).numExperts(E).topK(2).expertHidden(F)
                .maxTokens(T).expertGateRank(3).normalizeTopK(false).balanceLoss(BalanceLoss.MEGABLOCKS)
                .balanceCoef(0.1).zLossCoef(0.01);
        out.add(Arguments.of("aoe GeGLU d_low 3", aoe.expertType(ExpertType.GEGLU).build()));
        out.add(Arguments.of("aoe SwiGLU renorm + shared expert",
                aoe.expertType(ExpertType.SWIGLU).normalizeTopK(true).sharedExperts(1).sharedHidden(3).build()));
        return out.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("configs")
    void backwardMatchesFiniteDifferences(String name, MoeConfig c) {
        gradientCheck(name, c, null);
    }

    /** Tokens 1 and 4 are padding: every loss, count and gradient must ignore them (their dx rows stay 0). */
    static final boolean[] MASK = {true, false, true, true, false, true, true};

    @ParameterizedTest(name = "{0} (padding mask)")
    @MethodSource("configs")
    void backwardWithPaddingMaskMatchesFiniteDifferences(String name, MoeConfig c) {
        gradientCheck(name + " masked", c, MASK);
    }

    private void gradientCheck(String name, MoeConfig c, boolean[] mask) {
        WorkerPool pool = WorkerPool.common();
        MoeLayer layer = new MoeLayer(c, arena, Kernels.get(), pool);
        layer.init(new SplittableRandom(42), 0.5, 1.0);
        SplittableRandom rng = new SplittableRandom(43);
        float[] xs = MoeLayerTest.randn(rng, T * D, 1.0);
        float[] rs = MoeLayerTest.randn(rng, T * D, 1.0);
        MemorySegment x = F32.alloc(arena, (long) T * D), y = F32.alloc(arena, (long) T * D);
        MemorySegment dy = F32.alloc(arena, (long) T * D), dx = F32.alloc(arena, (long) T * D);
        F32.copyIn(xs, x, 0);
        F32.copyIn(rs, dy, 0);

        for (Param p : layer.params()) p.zeroGrad();
        resetNoise(layer);
        layer.forward(x, 0, T, TOKEN_IDS, null, mask, y, 0, true);
        layer.backward(x, 0, dy, 0, dx, 0);
        float[] dxA = F32.toArray(dx, 0, T * D);
        if (mask != null) {
            for (int i = 0; i < T; i++) {
                for (int j = 0; j < D; j++) {
                    if (!mask[i]) {
                        assertThat(dxA[i * D + j]).as("dx of padding token %d", i).isEqualTo(0f);
                        assertThat(F32.get(y, i * D + j)).as("y of padding token %d", i).isEqualTo(0f);
                    }
                }
            }
        }

        List<float[]> analytic = new ArrayList<>();
        for (Param p : layer.params()) analytic.add(p.gradToArray());

        int checked = 0, probed = 0;
        // input gradient
        for (int i = 0; i < T * D; i += 3) {
            probed++;
            int xi = i;
            if (check(name + " dx[" + i + "]", dxA[i], h -> {
                float[] xp = xs.clone();
                xp[xi] += h;
                F32.copyIn(xp, x, 0);
                double l = loss(layer, x, y, rs, mask);
                F32.copyIn(xs, x, 0);
                return l;
            })) checked++;
        }
        // parameter gradients, a spread of coordinates of each
        List<Param> params = layer.params();
        for (int pi = 0; pi < params.size(); pi++) {
            Param p = params.get(pi);
            float[] v = p.toArray();
            float[] g = analytic.get(pi);
            int step = Math.max(1, v.length / 12);
            for (int i = 0; i < v.length; i += step) {
                probed++;
                int idx = i;
                if (check(name + " " + p.name() + "[" + i + "]", g[i], h -> {
                    float[] vp = v.clone();
                    vp[idx] += h;
                    p.set(vp);
                    double l = loss(layer, x, y, rs, mask);
                    p.set(v);
                    return l;
                })) checked++;
            }
        }
        assertThat(checked).as("coordinates checked of %d probed", probed).isGreaterThanOrEqualTo((int) (probed * 0.9));
    }

    /** L = Σ R ⊙ y + aux, in double. */
    private static double loss(MoeLayer layer, MemorySegment x, MemorySegment y, float[] r, boolean[] mask) {
        resetNoise(layer);
        layer.forward(x, 0, T, TOKEN_IDS, null, mask, y, 0, true);
        double l = layer.routing().auxLoss();
        for (int i = 0; i < T * D; i++) l += (double) r[i] * F32.get(y, i);
        return l;
    }

    /** Every evaluation sees the same noise draw, so finite differences probe one function. */
    private static void resetNoise(MoeLayer layer) {
        if (layer.router().rng() != null) layer.router().rng().setDraws(0);
    }

    interface Fn { double at(float h); }

    /** True if checked (smooth), false if skipped; fails the test on a real mismatch. */
    static boolean check(String what, float analytic, Fn f) {
        float h1 = 4e-3f, h2 = 2e-3f;
        double fd1 = (f.at(h1) - f.at(-h1)) / (2 * h1);
        double fd2 = (f.at(h2) - f.at(-h2)) / (2 * h2);
        double scale = Math.max(1.0, Math.abs(fd2));
        if (Math.abs(fd1 - fd2) > 2e-3 * scale) return false; // non-smooth at this scale: skip
        assertThat((double) analytic).as(what + " (fd " + fd2 + ")").isCloseTo(fd2, org.assertj.core.api.Assertions.within(3e-3 * scale));
        return true;
    }
}
