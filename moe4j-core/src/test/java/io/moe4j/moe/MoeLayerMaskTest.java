package io.moe4j.moe;

import io.moe4j.kernel.Kernels;
import io.moe4j.moe.loss.BalanceLoss;
import io.moe4j.nn.F32;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;
import org.junit.jupiter.api.Test;
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
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Padding masks (spec §3.6 HF masking): a masked batch must behave exactly like the batch of its real tokens
 * alone — outputs, every auxiliary loss, counts, metrics, gradients — while padding rows get output 0 and no
 * gradient. Groups keep their original boundaries: the per-group losses of a masked batch equal the mean of the
 * losses of each group's real tokens run alone, and capacity is computed from a group's positions.
 */
class MoeLayerMaskTest {
    private static final int T = 7, D = 6;
    private static final int[] TOKEN_IDS = {3, 1, 4, 1, 5, 9, 2};
    private static final boolean[] MASK = MoeGradientCheckTest.MASK;
    private final Arena arena = Arena.ofAuto();

    /** Every whole-batch configuration of the gradient check (grouped ones are tested by group below). */
    static Stream<Arguments> wholeBatchConfigs() {
        return MoeGradientCheckTest.configs().filter(a -> ((MoeConfig) a.get()[1]).groupSize() == 0);
    }

    record Run(float[] y, float[] dx, List<float[]> grads, double aux, MoeMetrics metrics) {}

    private Run run(MoeConfig c, WorkerPool pool, float[] xs, float[] dys, int t, int[] ids, boolean[] mask) {
        MoeLayer layer = new MoeLayer(c, arena, Kernels.get(), pool);
        layer.init(new SplittableRandom(42), 0.5, 1.0);
        MemorySegment x = F32.alloc(arena, (long) t * D), y = F32.alloc(arena, (long) t * D);
        MemorySegment dy = F32.alloc(arena, (long) t * D), dx = F32.alloc(arena, (long) t * D);
        F32.copyIn(xs, x, 0);
        F32.copyIn(dys, dy, 0);
        for (Param p : layer.params()) p.zeroGrad();
        if (layer.router().rng() != null) layer.router().rng().setDraws(0);
        layer.forward(x, 0, t, ids, null, mask, y, 0, true);
        layer.backward(x, 0, dy, 0, dx, 0);
        List<float[]> g = new ArrayList<>();
        for (Param p : layer.params()) g.add(p.gradToArray());
        return new Run(F32.toArray(y, 0, t * D), F32.toArray(dx, 0, t * D), g, layer.routing().auxLoss(),
                layer.metrics());
    }

    private static float[] realRows(float[] a, boolean[] mask, int width) {
        int n = 0;
        for (boolean m : mask) if (m) n++;
        float[] out = new float[n * width];
        for (int i = 0, r = 0; i < mask.length; i++) {
            if (mask[i]) System.arraycopy(a, i * width, out, r++ * width, width);
        }
        return out;
    }

    private static int[] realIds(boolean[] mask) {
        List<Integer> ids = new ArrayList<>();
        for (int i = 0; i < mask.length; i++) if (mask[i]) ids.add(TOKEN_IDS[i]);
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("wholeBatchConfigs")
    void maskedBatchEqualsItsRealTokensAlone(String name, MoeConfig c) {
        SplittableRandom rng = new SplittableRandom(7);
        float[] xs = MoeLayerTest.randn(rng, T * D, 1.0), dys = MoeLayerTest.randn(rng, T * D, 1.0);
        Run masked = run(c, WorkerPool.common(), xs, dys, T, TOKEN_IDS, MASK);
        int n = 5;
        Run alone = run(c, WorkerPool.common(), realRows(xs, MASK, D), realRows(dys, MASK, D), n, realIds(MASK), null);

        assertThat(realRows(masked.y, MASK, D)).as("y of real tokens").containsExactly(alone.y);
        assertThat(realRows(masked.dx, MASK, D)).as("dx of real tokens").containsExactly(alone.dx);
        for (int i = 0; i < T; i++) {
            if (MASK[i]) continue;
            for (int j = 0; j < D; j++) {
                assertThat(masked.y[i * D + j]).isEqualTo(0f);
                assertThat(masked.dx[i * D + j]).isEqualTo(0f);
            }
        }
        for (int p = 0; p < alone.grads.size(); p++) {
            assertThat(masked.grads.get(p)).as("gradient of parameter %d", p).containsExactly(alone.grads.get(p));
        }
        assertThat(masked.aux).as("aux losses").isEqualTo(alone.aux);
        assertThat(masked.metrics.tokens()).isEqualTo(n);
        assertThat(masked.metrics.paddingTokens()).isEqualTo(T - n);
        assertThat(masked.metrics.tokensPerExpert()).containsExactly(alone.metrics.tokensPerExpert());
        assertThat(masked.metrics.routerEntropy()).isEqualTo(alone.metrics.routerEntropy());
    }

    @Test
    void oneAndTwoThreadsAreBitIdenticalWithAMask() {
        MoeConfig c = MoeConfig.builder().dModel(D).numExperts(4).topK(2).expertHidden(5).maxTokens(T)
                .balanceLoss(BalanceLoss.MEGABLOCKS).balanceCoef(0.1).zLossCoef(0.01).groupSize(4)
                .sharedExperts(1).sharedHidden(3).build();
        SplittableRandom rng = new SplittableRandom(9);
        float[] xs = MoeLayerTest.randn(rng, T * D, 1.0), dys = MoeLayerTest.randn(rng, T * D, 1.0);
        try (WorkerPool one = new WorkerPool(1); WorkerPool two = new WorkerPool(2)) {
            Run a = run(c, one, xs, dys, T, null, MASK), b = run(c, two, xs, dys, T, null, MASK);
            assertThat(a.y).containsExactly(b.y);
            assertThat(a.dx).containsExactly(b.dx);
            for (int p = 0; p < a.grads.size(); p++) assertThat(a.grads.get(p)).containsExactly(b.grads.get(p));
            assertThat(a.aux).isEqualTo(b.aux);
        }
    }

    /** An all-true mask takes the plain path: bit-identical to no mask. */
    @Test
    void allTrueMaskEqualsNoMask() {
        MoeConfig c = MoeConfig.builder().dModel(D).numExperts(4).topK(2).expertHidden(5).maxTokens(T)
                .balanceCoef(0.1).zLossCoef(0.01).build();
        SplittableRandom rng = new SplittableRandom(11);
        float[] xs = MoeLayerTest.randn(rng, T * D, 1.0), dys = MoeLayerTest.randn(rng, T * D, 1.0);
        boolean[] all = new boolean[T];
        java.util.Arrays.fill(all, true);
        Run a = run(c, WorkerPool.common(), xs, dys, T, null, all), b = run(c, WorkerPool.common(), xs, dys, T, null, null);
        assertThat(a.y).containsExactly(b.y);
        assertThat(a.dx).containsExactly(b.dx);
        assertThat(a.aux).isEqualTo(b.aux);
        assertThat(a.metrics.paddingTokens()).isZero();
    }

    /**
     * Sequence-wise losses (groupSize = S): with padding at the end of each sequence and one sequence of padding
     * only, the loss is the mean over the sequences that have real tokens of each one's loss computed alone.
     * (noisy-topk, vmoe and evomoe are left out: their noise is drawn per routed row, so a group run alone sees other draws.)
     */
    @Test
    void groupLossesAverageTheRealTokensOfEachNonEmptyGroup() {
        int s = 4, t = 12;
        boolean[] mask = {true, true, true, false, false, false, false, false, true, true, false, false};
        for (String router : List.of("softmax-topk", "deepseek-v3", "top-p")) {
            MoeConfig.Builder b = MoeConfig.builder().router(router).dModel(D).numExperts(4)
                    .topK(2).expertHidden(5).maxTokens(t)
                    .balanceLoss(BalanceLoss.MEGABLOCKS)
                    .balanceCoef(0.1).zLossCoef(0.01);
            if (router.equals("deepseek-v3")) b.nGroup(2).topkGroup(1).routedScale(2.5f);
            SplittableRandom rng = new SplittableRandom(13);
            float[] xs = MoeLayerTest.randn(rng, t * D, 1.0), dys = MoeLayerTest.randn(rng, t * D, 1.0);
            Run masked = run(b.groupSize(s).build(), WorkerPool.common(), xs, dys, t, null, mask);
            MoeConfig whole = b.groupSize(0).build();
            Run g0 = run(whole, WorkerPool.common(), java.util.Arrays.copyOfRange(xs, 0, 3 * D),
                    java.util.Arrays.copyOfRange(dys, 0, 3 * D), 3, null, null);
            Run g2 = run(whole, WorkerPool.common(), java.util.Arrays.copyOfRange(xs, 8 * D, 10 * D),
                    java.util.Arrays.copyOfRange(dys, 8 * D, 10 * D), 2, null, null);
            // z-loss and other per-token terms are means over all real tokens; the balance loss a mean over groups
            double expectedBalance = (g0.metrics.balanceLoss() + g2.metrics.balanceLoss()) / 2;
            double expectedZ = (3 * g0.metrics.zLoss() + 2 * g2.metrics.zLoss()) / 5;
            assertThat(masked.metrics.balanceLoss()).as(router + " balance loss").isCloseTo(expectedBalance,
                    org.assertj.core.api.Assertions.within(1e-9));
            assertThat(masked.metrics.zLoss()).as(router + " z-loss").isCloseTo(expectedZ,
                    org.assertj.core.api.Assertions.within(1e-6));
            assertThat(masked.metrics.balanceLoss()).as(router + " has a balance loss").isPositive();
        }
    }

    /**
     * Capacity: padding claims no slot, and each group's capacity comes from its positions (flaxformer C =
     * max(round(CF·S/E), 4) with S including padding). Differential: a FIXED capacity of that value on the real
     * tokens alone gives the same drops.
     */
    @Test
    void capacityComesFromTheGroupPositionsAndPaddingClaimsNoSlot() {
        int t = 16;
        boolean[] mask = new boolean[t];
        for (int i = 0; i < t; i++) mask[i] = i % 4 != 3; // 12 real tokens
        MoeConfig.Builder b = MoeConfig.builder().router("switch").dModel(D).numExperts(2).topK(1).expertHidden(5)
                .maxTokens(t).balanceLoss(BalanceLoss.SWITCH).balanceCoef(0.1)
                .dispatch(DispatchMode.CAPACITY).capacityRule(CapacityRule.MEGABLOCKS).capacityFactor(0.5);
        MoeConfig flax = b.build();
        int c16 = flax.capacity(16), c12 = flax.capacity(12);
        assertThat(c16).as("the rule must distinguish 16 from 12 positions").isNotEqualTo(c12);
        SplittableRandom rng = new SplittableRandom(17);
        float[] xs = MoeLayerTest.randn(rng, t * D, 1.0), dys = MoeLayerTest.randn(rng, t * D, 1.0);
        Run masked = run(flax, WorkerPool.common(), xs, dys, t, null, mask);
        Run alone = run(b.capacityRule(CapacityRule.FIXED).fixedCapacity(c16).build(), WorkerPool.common(),
                realRows(xs, mask, D), realRows(dys, mask, D), 12, null, null);
        assertThat(masked.metrics.tokensPerExpert()).containsExactly(alone.metrics.tokensPerExpert());
        assertThat(masked.metrics.droppedFraction()).isEqualTo(alone.metrics.droppedFraction()).isPositive();
        assertThat(realRows(masked.y, mask, D)).containsExactly(alone.y);
    }

    /** DeepSeek-V3's bias update counts only real tokens. */
    @Test
    void biasUpdateCountsOnlyRealTokens() {
        MoeConfig c = MoeConfig.builder().router("deepseek-v3").dModel(D).numExperts(4).topK(1).expertHidden(5)
                .maxTokens(T).biasUpdateSpeed(0.01).balanceCoef(0).build();
        SplittableRandom rng = new SplittableRandom(19);
        float[] xs = MoeLayerTest.randn(rng, T * D, 1.0);
        MoeLayer masked = new MoeLayer(c, arena, Kernels.get(), WorkerPool.common());
        MoeLayer alone = new MoeLayer(c, arena, Kernels.get(), WorkerPool.common());
        masked.init(new SplittableRandom(42), 0.5, 1.0);
        alone.init(new SplittableRandom(42), 0.5, 1.0);
        MemorySegment x = F32.alloc(arena, (long) T * D), y = F32.alloc(arena, (long) T * D);
        MemorySegment xr = F32.alloc(arena, 5L * D), yr = F32.alloc(arena, 5L * D);
        F32.copyIn(xs, x, 0);
        F32.copyIn(realRows(xs, MASK, D), xr, 0);
        for (int step = 0; step < 3; step++) {
            masked.forward(x, 0, T, null, null, MASK, y, 0, true);
            masked.router().afterStep();
            alone.forward(xr, 0, 5, null, null, null, yr, 0, true);
            alone.router().afterStep();
            assertThat(masked.router().state()).containsExactly(alone.router().state());
        }
        assertThat(masked.router().state()).as("the bias moved").isNotEqualTo(new float[4]);
    }

    /** MoE++ gating residual across two masked layers: logits() are T×E with zero padding rows; gradients too. */
    @Test
    void gatingResidualAcrossMaskedLayers() {
        MoeConfig c0 = MoeConfig.builder().router("moe++").dModel(D).numExperts(6).topK(2).expertHidden(5).maxTokens(T)
                .constantExperts(2).copyExperts(1).zeroExperts(1).routerHidden(12).gatingResidual(true)
                .balanceCoef(0.1).zLossCoef(0.01).build();
        MoeConfig c1 = c0.toBuilder().layerIndex(1).build();
        SplittableRandom rng = new SplittableRandom(23);
        float[] xs = MoeLayerTest.randn(rng, T * D, 1.0), dys = MoeLayerTest.randn(rng, T * D, 1.0);
        float[][] maskedOut = twoLayers(c0, c1, xs, dys, T, MASK);
        float[][] aloneOut = twoLayers(c0, c1, realRows(xs, MASK, D), realRows(dys, MASK, D), 5, null);
        assertThat(realRows(maskedOut[0], MASK, D)).as("y").containsExactly(aloneOut[0]);
        // dx accumulates two layers: the masked path sums each layer's compact dx before adding it, so the
        // rounding differs from accumulating in place
        assertThat(realRows(maskedOut[1], MASK, D)).as("dx").containsExactly(aloneOut[1],
                org.assertj.core.api.Assertions.within(1e-5f));
        assertThat(realRows(maskedOut[2], MASK, 6)).as("logits of layer 0").containsExactly(aloneOut[2]);
        assertThat(realRows(maskedOut[3], MASK, 6)).as("dLogits of layer 0").containsExactly(aloneOut[3]);
        for (int i = 0; i < T; i++) {
            if (MASK[i]) continue;
            for (int j = 0; j < 6; j++) {
                assertThat(maskedOut[2][i * 6 + j]).isEqualTo(0f);
                assertThat(maskedOut[3][i * 6 + j]).isEqualTo(0f);
            }
        }
    }

    /** {y, dx (both layers, x shared), logits of layer 0, ∂L/∂logits of layer 0}. */
    private float[][] twoLayers(MoeConfig c0, MoeConfig c1, float[] xs, float[] dys, int t, boolean[] mask) {
        MoeLayer l0 = new MoeLayer(c0, arena, Kernels.get(), WorkerPool.common());
        MoeLayer l1 = new MoeLayer(c1, arena, Kernels.get(), WorkerPool.common());
        l0.init(new SplittableRandom(42), 0.5, 1.0);
        l1.init(new SplittableRandom(43), 0.5, 1.0);
        MemorySegment x = F32.alloc(arena, (long) t * D), y0 = F32.alloc(arena, (long) t * D);
        MemorySegment y1 = F32.alloc(arena, (long) t * D), dy = F32.alloc(arena, (long) t * D);
        MemorySegment dx = F32.alloc(arena, (long) t * D);
        F32.copyIn(xs, x, 0);
        F32.copyIn(dys, dy, 0);
        l0.forward(x, 0, t, null, null, mask, y0, 0, true);
        float[] logits0 = java.util.Arrays.copyOf(l0.logits(), t * 6);
        l1.forward(x, 0, t, null, l0.logits(), mask, y1, 0, true);
        float[] dLogits0 = new float[t * 6];
        l1.backward(x, 0, dy, 0, dx, 0, null, dLogits0);
        l0.backward(x, 0, dy, 0, dx, 0, dLogits0, null);
        return new float[][]{F32.toArray(y1, 0, t * D), F32.toArray(dx, 0, t * D), logits0, dLogits0};
    }

    /** A batch of padding only: output 0, no gradient, no loss, no load — for every whole-batch router. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("wholeBatchConfigs")
    void allPaddingGivesZeros(String name, MoeConfig c) {
        SplittableRandom rng = new SplittableRandom(29);
        float[] xs = MoeLayerTest.randn(rng, T * D, 1.0), dys = MoeLayerTest.randn(rng, T * D, 1.0);
        Run r = run(c, WorkerPool.common(), xs, dys, T, TOKEN_IDS, new boolean[T]);
        assertThat(r.y).containsOnly(0f);
        assertThat(r.dx).containsOnly(0f);
        for (float[] g : r.grads) assertThat(g).containsOnly(0f);
        assertThat(r.aux).isZero();
        assertThat(r.metrics.tokens()).isZero();
        assertThat(r.metrics.paddingTokens()).isEqualTo(T);
        assertThat(r.metrics.tokensPerExpert()).containsOnly(0);
    }

    @Test
    void aShortMaskIsRejected() {
        MoeConfig c = MoeConfig.builder().dModel(D).numExperts(4).topK(2).expertHidden(5).maxTokens(T).build();
        MoeLayer layer = new MoeLayer(c, arena, Kernels.get(), WorkerPool.common());
        MemorySegment x = F32.alloc(arena, (long) T * D), y = F32.alloc(arena, (long) T * D);
        assertThatThrownBy(() -> layer.forwardMasked(x, 0, T, new boolean[3], y, 0, false))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("mask has 3 entries");
    }
}
