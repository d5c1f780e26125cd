package io.moe4j.train.model;

import io.moe4j.kernel.Kernels;
import io.moe4j.moe.MoeConfig;
import io.moe4j.moe.NonFiniteException;
import io.moe4j.moe.loss.BalanceLoss;
import io.moe4j.nn.F32;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static io.moe4j.train.model.TinyConfigs.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

/** Determinism, generation, modes, gradient scaling, errors and parameter bookkeeping of {@link MoeTransformer}. */
class MoeTransformerTest {

    /** Big enough that every parallel loop splits (rows > chunks, several heads and GEMM tiles). */
    private static ModelConfig medium(boolean qkNorm) {
        MoeConfig moe = MoeConfig.builder().dModel(32).numExperts(4).topK(2).expertHidden(24).sharedExperts(1)
                .sharedHidden(16).balanceLoss(BalanceLoss.HF).balanceCoef(0.01).zLossCoef(1e-3).groupSize(24).build();
        return new ModelConfig(50, 32, 3, 4, 2, 8, 32, 10000.0, 1e-5, qkNorm, false, 1, 48, moe, 0.05, 9L);
    }

    @Test
    void bitIdenticalForOneAndTwoThreads() {
        ModelConfig c = medium(true);
        int[] tokens = tokens(3, 4, 24, c.vocabSize());
        try (WorkerPool p1 = new WorkerPool(1); WorkerPool p2 = new WorkerPool(2);
             MoeTransformer m1 = MoeTransformer.create(c, Kernels.get(), p1, 4);
             MoeTransformer m2 = MoeTransformer.create(c, Kernels.get(), p2, 4)) {
            for (int step = 0; step < 2; step++) {
                LossBreakdown l1 = m1.forwardBackward(tokens, 4, 24, 1f);
                LossBreakdown l2 = m2.forwardBackward(tokens, 4, 24, 1f);
                assertThat(l2).isEqualTo(l1);
            }
            for (int i = 0; i < m1.params().size(); i++) {
                Param a = m1.params().get(i), b = m2.params().get(i);
                assertThat(b.toArray()).as("init " + a.name()).isEqualTo(a.toArray());
                assertThat(b.gradToArray()).as("grad " + a.name()).isEqualTo(a.gradToArray());
            }
            assertThat(m2.evaluate(tokens, 4, 24)).isEqualTo(m1.evaluate(tokens, 4, 24));
            float[] o1 = new float[c.vocabSize()], o2 = new float[c.vocabSize()];
            m1.nextLogits(tokens, 17, o1);
            m2.nextLogits(tokens, 17, o2);
            assertThat(o2).isEqualTo(o1);
        }
    }

    @Test
    void nextLogitsEqualsThatPositionOfAFullForward() {
        ModelConfig c = medium(false);
        int b = 2, t = 20, v = c.vocabSize();
        int[] tokens = tokens(4, b, t, v);
        try (MoeTransformer m = MoeTransformer.create(c, Kernels.get(), WorkerPool.common(), b)) {
            float[] all = m.allLogits(tokens, b, t);
            float[] out = new float[v];
            for (int row = 0; row < b; row++) {
                for (int len : new int[] {1, 7, t}) {
                    int[] prefix = java.util.Arrays.copyOfRange(tokens, row * (t + 1), row * (t + 1) + len);
                    m.nextLogits(prefix, len, out);
                    // causal: position len-1 of the long sequence sees exactly the prefix
                    int base = (row * t + len - 1) * v;
                    for (int j = 0; j < v; j++) {
                        assertThat(out[j]).as("row %d len %d logit %d", row, len, j).isCloseTo(all[base + j], within(1e-5f));
                    }
                }
            }
            // the nextLogits calls (smaller shapes) must not disturb later full batches
            assertThat(m.allLogits(tokens, b, t)).containsExactly(all);
        }
    }

    @Test
    void trainingAndEvaluationAgreeWithoutRouterNoise() {
        ModelConfig c = medium(true);
        int[] tokens = tokens(5, 3, 16, c.vocabSize());
        try (MoeTransformer m = MoeTransformer.create(c, Kernels.get(), WorkerPool.common(), 3)) {
            LossBreakdown train = m.forwardBackward(tokens, 3, 16, 1f);
            LossBreakdown eval = m.evaluate(tokens, 3, 16);
            assertThat(eval.ce()).isEqualTo(train.ce());
            assertThat(eval.tokens()).isEqualTo(48);
            assertThat(train.aux()).isPositive();
        }
    }

    @Test
    void gradScaleScalesEveryGradientIncludingAuxLosses() {
        ModelConfig c = model(softmaxTopK().balanceCoef(0.5).zLossCoef(0.1).build(), 0, false, false);
        int[] tokens = tokens(6, B, T, VOCAB);
        try (MoeTransformer m = MoeTransformer.create(c, Kernels.get(), WorkerPool.common(), B)) {
            m.forwardBackward(tokens, B, T, 1f);
            List<float[]> full = grads(m);
            for (Param p : m.params()) p.zeroGrad();
            m.forwardBackward(tokens, B, T, 0.25f);
            m.forwardBackward(tokens, B, T, 0.75f);
            List<float[]> acc = grads(m);
            for (int i = 0; i < full.size(); i++) {
                String name = m.params().get(i).name();
                float max = 1e-6f;
                for (float g : full.get(i)) max = Math.max(max, Math.abs(g));
                for (int j = 0; j < full.get(i).length; j++) {
                    assertThat(acc.get(i)[j]).as("%s[%d]", name, j).isCloseTo(full.get(i)[j], within(1e-5f * max));
                }
            }
            // the router's gradient contains aux-loss terms: it must be scaled with the rest
            for (Param p : m.params()) p.zeroGrad();
            m.forwardBackward(tokens, B, T, 0.25f);
            float[] router = m.params().stream().filter(p -> p.name().equals("layers.0.moe.router.weight")).findFirst()
                    .orElseThrow().gradToArray();
            int ri = indexOf(m, "layers.0.moe.router.weight");
            for (int j = 0; j < router.length; j++) assertThat(router[j]).isCloseTo(0.25f * full.get(ri)[j], within(1e-6f));
        }
    }

    private static int indexOf(MoeTransformer m, String name) {
        for (int i = 0; i < m.params().size(); i++) if (m.params().get(i).name().equals(name)) return i;
        throw new AssertionError(name);
    }

    private static List<float[]> grads(MoeTransformer m) {
        List<float[]> out = new ArrayList<>();
        for (Param p : m.params()) out.add(p.gradToArray());
        return out;
    }

    @Test
    void paramNamesAreStableAndCountsMatch() {
        ModelConfig c = model(softmaxTopK().build(), 1, true, false);
        try (MoeTransformer m = MoeTransformer.create(c, Kernels.get(), WorkerPool.common(), B)) {
            List<String> names = m.params().stream().map(Param::name).toList();
            assertThat(names).startsWith("tok_embd", "layers.0.attn_norm", "layers.0.attn.wq", "layers.0.attn.wk",
                    "layers.0.attn.wv", "layers.0.attn.wo", "layers.0.attn.q_norm", "layers.0.attn.k_norm",
                    "layers.0.ffn_norm", "layers.0.ffn.gate", "layers.0.ffn.up", "layers.0.ffn.down",
                    "layers.1.attn_norm");
            assertThat(names).contains("layers.1.moe.router.weight", "layers.1.moe.experts.gate",
                    "layers.1.moe.experts.down", "layers.1.moe.shared.up");
            assertThat(names).endsWith("output_norm", "output");
            Set<String> unique = new HashSet<>(names);
            assertThat(unique).hasSameSizeAs(names);
            long total = m.params().stream().mapToLong(Param::numel).sum();
            ParamCounts pc = ParamCounts.of(c);
            assertThat(pc.total()).isEqualTo(total);
            assertThat(pc.perExpert()).isEqualTo(3L * 6 * D);
            assertThat(pc.active()).isEqualTo(total - 2 * pc.perExpert()); // 4 experts, k = 2, one MoE layer
            // bit-reproducible init from the seed
            try (MoeTransformer m2 = MoeTransformer.create(c, Kernels.get(), WorkerPool.common(), B)) {
                for (int i = 0; i < names.size(); i++) {
                    assertThat(m2.params().get(i).toArray()).isEqualTo(m.params().get(i).toArray());
                }
            }
            float[] norm = m.params().get(1).toArray();
            for (float v : norm) assertThat(v).isEqualTo(1f);
        }
        ModelConfig dense = dense(true);
        try (MoeTransformer m = MoeTransformer.create(dense, Kernels.get(), WorkerPool.common(), B)) {
            assertThat(m.params().stream().map(Param::name)).doesNotContain("output");
            long total = m.params().stream().mapToLong(Param::numel).sum();
            assertThat(ParamCounts.of(dense)).isEqualTo(new ParamCounts(total, total, 0));
            assertThat(m.moeLayers()).isEmpty();
        }
    }

    @Test
    void nonFiniteValuesNameTheLayer() {
        ModelConfig c = model(softmaxTopK().build(), 0, false, false);
        int[] tokens = tokens(7, B, T, VOCAB);
        try (MoeTransformer m = MoeTransformer.create(c, Kernels.get(), WorkerPool.common(), B)) {
            Param wo = m.params().stream().filter(p -> p.name().equals("layers.1.attn.wo")).findFirst().orElseThrow();
            F32.set(wo.data(), 3, Float.NaN);
            assertThatThrownBy(() -> m.forwardBackward(tokens, B, T, 1f)).isInstanceOf(NonFiniteException.class)
                    .hasMessageContaining("layers.1.attn output");
            F32.set(wo.data(), 3, 0f);
            Param wq = m.params().stream().filter(p -> p.name().equals("layers.0.attn.wq")).findFirst().orElseThrow();
            F32.set(wq.data(), 0, Float.POSITIVE_INFINITY);
            assertThatThrownBy(() -> m.evaluate(tokens, B, T)).isInstanceOf(NonFiniteException.class)
                    .hasMessageContaining("layers.0.attn");
        }
    }

    @Test
    void badInputGivesOneClearError() {
        assertThatThrownBy(() -> MoeTransformer.create(new ModelConfig(VOCAB, D, 2, 2, 3, 4, 16, 1e4, 1e-5, false,
                false, 2, 8, null, 0.02, 1), Kernels.get(), WorkerPool.common()))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("model.kvHeads");
        assertThatThrownBy(() -> MoeTransformer.create(model(null, 1, false, false), Kernels.get(), WorkerPool.common()))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("model.moe");
        try (MoeTransformer m = MoeTransformer.create(dense(false), Kernels.get(), WorkerPool.common(), B)) {
            int[] tokens = tokens(8, B, T, VOCAB);
            tokens[3] = VOCAB;
            assertThatThrownBy(() -> m.forwardBackward(tokens, B, T, 1f)).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("token id 11 at index 3");
            assertThatThrownBy(() -> m.evaluate(new int[4], B, T)).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("needs 12");
            assertThatThrownBy(() -> m.evaluate(new int[100], 1, 17)).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("maxSeqLen");
            assertThatThrownBy(() -> m.evaluate(new int[100], 3, 16)).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("maxTokens");
            assertThatThrownBy(() -> m.nextLogits(new int[] {1}, 1, new float[3])).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("vocabSize");
        }
    }
}
