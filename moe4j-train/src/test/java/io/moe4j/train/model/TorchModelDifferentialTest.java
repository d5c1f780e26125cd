package io.moe4j.train.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moe4j.kernel.Kernels;
import io.moe4j.moe.MoeConfig;
import io.moe4j.moe.loss.BalanceLoss;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;
import io.moe4j.testutil.TorchPeer;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The whole model against an independent PyTorch float64 implementation (test resource torch/model_reference.py:
 * nn.Linear layout, adjacent-pair RoPE, repeat_interleave GQA, masked softmax, loop-over-experts MoE, autograd) on
 * the same weights and tokens: CE, aux loss and EVERY parameter gradient. Tolerance: CE and aux within 1e-5
 * absolute; each gradient tensor within 2e-5 of the tensor's largest magnitude (F32 against float64; measured ~2e-6).
 * Skipped when Debian's /usr/bin/python3 has no torch.
 */
class TorchModelDifferentialTest {
    private static final int B = 3, T = 8;

    static Stream<Arguments> configs() {
        MoeConfig moe = MoeConfig.builder().dModel(16).numExperts(4).topK(2).expertHidden(12).sharedExperts(1)
                .sharedHidden(8).sharedGate(true).balanceLoss(BalanceLoss.HF).balanceCoef(0.05).zLossCoef(1e-3)
                .groupSize(T).build();
        return Stream.of(
                Arguments.of("dense, untied", new ModelConfig(32, 16, 2, 4, 2, 4, 16, 10000.0, 1e-5, false, false,
                        2, 24, null, 0.3, 3L), B, T),
                Arguments.of("softmax-topk k=2 + gated shared expert + balance/z loss, qkNorm, tied, 1 dense layer",
                        new ModelConfig(32, 16, 3, 4, 2, 4, 16, 500.0, 1e-5, true, true, 1, 24, moe, 0.3, 4L), B, T),
                // longer than Attention.QB: several causal blocks, the last one partial
                Arguments.of("dense, T = 75 (3 causal blocks), qkNorm", new ModelConfig(32, 16, 1, 4, 2, 4, 80, 10000.0,
                        1e-5, true, false, 1, 24, null, 0.3, 5L), 2, 75));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("configs")
    void lossAndAllGradientsMatchPyTorch(String name, ModelConfig c, int B, int T, @TempDir Path dir) throws Exception {
        assumeTrue(TorchPeer.available(), "Debian python3-torch not installed");
        try (MoeTransformer m = MoeTransformer.create(c, Kernels.get(), WorkerPool.common(), B)) {
            int[] tokens = TinyConfigs.tokens(5, B, T, c.vocabSize());
            Map<String, Object> in = new LinkedHashMap<>();
            in.put("config", c);
            in.put("batch", B);
            in.put("seqLen", T);
            in.put("tokens", tokens);
            Map<String, Object> ps = new LinkedHashMap<>();
            for (Param p : m.params()) ps.put(p.name(), Map.of("shape", p.value().shape(), "data", p.toArray()));
            in.put("params", ps);
            JsonNode ref = TorchPeer.run("model_reference.py", in, dir);

            for (Param p : m.params()) p.zeroGrad();
            LossBreakdown l = m.forwardBackward(tokens, B, T, 1f);
            assertThat(l.ce()).as("ce").isCloseTo(ref.get("ce").asDouble(), within(1e-5));
            assertThat(l.aux()).as("aux").isCloseTo(ref.get("aux").asDouble(), within(1e-5));
            if (c.moe() != null) assertThat(l.aux()).isPositive();
            double worst = 0;
            for (Param p : m.params()) {
                JsonNode g = ref.get("grad." + p.name());
                assertThat(g).as("reference has grad." + p.name()).isNotNull();
                worst = Math.max(worst, assertClose(p.name(), p.gradToArray(), g));
            }
            System.out.printf("%s: ce %.6f vs %.6f, worst relative gradient error %.2e%n", name, l.ce(),
                    ref.get("ce").asDouble(), worst);
        }
    }

    /** Relative to the tensor's largest magnitude; returns the worst relative error. */
    private static double assertClose(String what, float[] got, JsonNode want) {
        assertThat(got.length).as(what + " length").isEqualTo(want.size());
        double max = 1e-9;
        for (int i = 0; i < got.length; i++) max = Math.max(max, Math.abs(want.get(i).asDouble()));
        double worst = 0;
        for (int i = 0; i < got.length; i++) {
            double err = Math.abs(got[i] - want.get(i).asDouble()) / max;
            worst = Math.max(worst, err);
            assertThat(err).as("%s[%d]: %s vs torch %s", what, i, got[i], want.get(i).asDouble()).isLessThan(2e-5);
        }
        return worst;
    }
}
