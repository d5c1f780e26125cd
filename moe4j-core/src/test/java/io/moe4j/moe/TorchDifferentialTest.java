package io.moe4j.moe;

import com.fasterxml.jackson.databind.JsonNode;
import io.moe4j.kernel.Kernels;
import io.moe4j.moe.loss.BalanceLoss;
import io.moe4j.moe.router.DeepSeekRouter;
import io.moe4j.nn.F32;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;
import io.moe4j.testutil.TorchPeer;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The MoE layer against an independent PyTorch implementation (test resource torch/moe_reference.py, float64,
 * loop over experts with index_select/index_add_, autograd) on the same weights: output, aux losses, routing and
 * every gradient. Skipped when Debian's python3-torch is not installed (dev/setup-peers installs it).
 */
class TorchDifferentialTest {
    private static final int T = 24;

    static Stream<Arguments> configs() {
        MoeConfig.Builder b = MoeConfig.builder().dModel(16).numExperts(4).topK(2).expertHidden(12).maxTokens(T);
        return Stream.of(
                Arguments.of("softmax top-2 + gated shared expert", b.balanceLoss(BalanceLoss.HF).balanceCoef(0.01)
                        .zLossCoef(1e-3).sharedExperts(1).sharedHidden(8).sharedGate(true).build()),
                Arguments.of("softmax top-2 no renorm, GeGLU", b.sharedExperts(0).sharedHidden(0).sharedGate(false)
                        .normalizeTopK(false).expertType(ExpertType.GEGLU).build()),
                Arguments.of("switch top-1 with capacity", MoeConfig.builder().dModel(16).numExperts(4).topK(1)
                        .router("switch").expertHidden(12).maxTokens(T).dispatch(DispatchMode.CAPACITY)
                        .capacityRule(CapacityRule.FIXED).fixedCapacity(2).groupSize(8)
                        .balanceLoss(BalanceLoss.SWITCH).balanceCoef(0.01).zLossCoef(1e-3).build()),
                Arguments.of("switch top-1, flaxformer capacity, ReLU MLP", MoeConfig.builder().dModel(16).numExperts(4)
                        .topK(1).router("switch").expertHidden(12).expertType(ExpertType.MLP_RELU).maxTokens(T)
                        .dispatch(DispatchMode.CAPACITY).capacityRule(CapacityRule.FLAXFORMER).capacityFactor(1.0)
                        .balanceLoss(BalanceLoss.SWITCH).balanceCoef(0.01).build()),
                Arguments.of("deepseek-v3", MoeConfig.builder().router("deepseek-v3").dModel(16).numExperts(8).topK(2)
                        .expertHidden(6).nGroup(4).topkGroup(2).routedScale(2.5f).sharedExperts(1).sharedHidden(6)
                        .balanceLoss(BalanceLoss.MEGABLOCKS).balanceCoef(1e-2).groupSize(8).maxTokens(T).build()),
                // the configured HF balance loss must be ignored: expert choice has none
                Arguments.of("expert-choice, flaxformer CF 1 in groups of 12 + shared expert", MoeConfig.builder()
                        .router("expert-choice").dModel(16).numExperts(4).expertHidden(12).capacityFactor(1.0)
                        .groupSize(12).zLossCoef(1e-3).sharedExperts(1).sharedHidden(8).maxTokens(T).build()),
                Arguments.of("expert-choice, fixed C = 5, ReLU MLP", MoeConfig.builder().router("expert-choice")
                        .dModel(16).numExperts(4).expertHidden(12).expertType(ExpertType.MLP_RELU)
                        .capacityRule(CapacityRule.FIXED).fixedCapacity(5).maxTokens(T).build()),
                Arguments.of("gshard top-2, policy all, lingvo capacity", gshard().build()),
                Arguments.of("gshard top-2, renormalised after drops", gshard().legacyNormalize(false)
                        .capacityFactor(1.5).build()),
                // MoE++ released-code recipe: 2-layer gate (8E), 2 constant + copy + zero, input × k, gating
                // residual from a (random) previous layer, logits norm
                Arguments.of("moe++ with gating residual", MoeConfig.builder().router("moe++").dModel(16).numExperts(8)
                        .topK(2).expertHidden(12).constantExperts(2).copyExperts(1).zeroExperts(1).routerHidden(64)
                        .gatingResidual(true).logitsNormStd(1.0).balanceLoss(BalanceLoss.HF).balanceCoef(0.01)
                        .zLossCoef(1e-3).maxTokens(T).build()),
                Arguments.of("aoe GeGLU d_low 4 + shared expert", MoeConfig.builder().router("aoe").dModel(16)
                        .numExperts(6).topK(2).expertHidden(12).expertGateRank(4).expertType(ExpertType.GEGLU)
                        .normalizeTopK(false).sharedExperts(1).sharedHidden(8).balanceLoss(BalanceLoss.MEGABLOCKS)
                        .balanceCoef(0.01).zLossCoef(1e-3).maxTokens(T).build()));
    }

    /** GShard with capacity C = floor(8·CF/4) per group of 8: drops both top-1 and top-2 choices. */
    private static MoeConfig.Builder gshard() {
        return MoeConfig.builder().router("gshard").dModel(16).numExperts(4).topK(2).expertHidden(12).maxTokens(T)
                .dispatch(DispatchMode.CAPACITY).capacityRule(CapacityRule.GSHARD).capacityFactor(1.0).groupSize(8)
                .balanceLoss(BalanceLoss.SWITCH).balanceCoef(0.01).zLossCoef(1e-3);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("configs")
    void matchesPyTorch(String name, MoeConfig c, @TempDir Path dir) throws Exception {
        assumeTrue(TorchPeer.available(), "Debian python3-torch not installed");
        Arena arena = Arena.ofAuto();
        MoeLayer layer = new MoeLayer(c, arena, Kernels.get(), WorkerPool.common());
        SplittableRandom rng = new SplittableRandom(name.hashCode());
        layer.init(rng, 0.4, 1.0);
        float[] xs = MoeLayerTest.randn(rng, T * c.dModel(), 1.0), dys = MoeLayerTest.randn(rng, T * c.dModel(), 1.0);
        Map<String, Object> in = new LinkedHashMap<>();
        in.put("config", c);
        in.put("tokens", T);
        in.put("x", xs);
        in.put("dy", dys);
        String prefix = "layers." + c.layerIndex() + ".moe.";
        for (Param p : layer.params()) in.put(p.name().substring(prefix.length()), p.toArray());
        if (layer.router() instanceof DeepSeekRouter ds) {
            for (int j = 0; j < c.numExperts(); j++) ds.bias()[j] = (float) (0.2 * MoeLayerTest.randn(rng, 1, 1)[0]);
            in.put("bias", ds.bias());
        }
        // gating residual: a previous layer's logits and the gradient a next layer would send into ours
        float[] prev = c.gatingResidual() ? MoeLayerTest.randn(rng, T * c.numExperts(), 1.0) : null;
        float[] dLogits = c.gatingResidual() ? MoeLayerTest.randn(rng, T * c.numExperts(), 1.0) : null;
        float[] dPrev = c.gatingResidual() ? new float[T * c.numExperts()] : null;
        in.put("prevLogits", prev);
        in.put("dLogits", dLogits);
        JsonNode ref = TorchPeer.run("moe_reference.py", in, dir);

        int n = T * c.dModel();
        MemorySegment x = F32.alloc(arena, n), y = F32.alloc(arena, n), dy = F32.alloc(arena, n), dx = F32.alloc(arena, n);
        F32.copyIn(xs, x, 0);
        F32.copyIn(dys, dy, 0);
        layer.forward(x, 0, T, null, prev, y, 0, true);
        float[] logits = java.util.Arrays.copyOf(layer.logits(), T * c.numExperts());
        layer.backward(x, 0, dy, 0, dx, 0, dLogits == null ? null : dLogits.clone(), dPrev);

        Routing r = layer.routing();
        for (int e = c.ffnExperts(); e < c.numExperts(); e++) {
            assertThat(r.assigned[e]).as("the case routes tokens to special expert %d", e).isPositive();
        }
        JsonNode experts = ref.get("experts"), kept = ref.get("kept");
        for (int s = 0; s < T * r.slots; s++) {
            assertThat(r.expert[s]).as("expert of slot %d", s).isEqualTo(experts.get(s).asInt());
            assertThat(r.kept[s]).as("kept slot %d", s).isEqualTo(kept.get(s).asBoolean());
        }
        assertClose("y", F32.toArray(y, 0, n), TorchPeer.floats(ref.get("y")));
        assertThat(r.balanceLoss).isCloseTo(ref.get("balanceLoss").asDouble(), org.assertj.core.api.Assertions.within(1e-6));
        assertThat(r.zLoss).isCloseTo(ref.get("zLoss").asDouble(), org.assertj.core.api.Assertions.within(1e-6));
        assertClose("grad x", F32.toArray(dx, 0, n), TorchPeer.floats(ref.get("grad.x")));
        if (prev != null) {
            assertClose("logits", logits, TorchPeer.floats(ref.get("logits")));
            assertClose("grad prevLogits", dPrev, TorchPeer.floats(ref.get("grad.prevLogits")));
        }
        for (Param p : layer.params()) {
            String key = "grad." + p.name().substring(prefix.length());
            assertThat(ref.has(key)).as("reference has " + key).isTrue();
            assertClose(key, p.gradToArray(), TorchPeer.floats(ref.get(key)));
        }
    }

    /** Relative to the tensor's largest magnitude: F32 against a float64 reference. */
    private static void assertClose(String what, float[] got, float[] want) {
        assertThat(got.length).as(what + " length").isEqualTo(want.length);
        double max = 1e-6;
        for (float v : want) max = Math.max(max, Math.abs(v));
        for (int i = 0; i < got.length; i++) {
            assertThat(Math.abs(got[i] - want[i]) / max).as("%s[%d]: %s vs torch %s", what, i, got[i], want[i])
                    .isLessThan(2e-5);
        }
    }
}
