package io.moe4j.moe;

import io.moe4j.kernel.Kernels;
import io.moe4j.moe.router.ReMoERouter;
import io.moe4j.moe.router.Routers;
import io.moe4j.nn.F32;
import io.moe4j.parallel.WorkerPool;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/** ReMoE (spec §4.13): golden §5.7, λ update both ways, continuity at an on/off boundary, ReLU'(0) = 0. */
class ReMoERouterTest {
    private final Arena arena = Arena.ofAuto();

    private static MoeConfig.Builder base(int e) {
        return MoeConfig.builder().router("remoe").dModel(e).numExperts(e).topK(1).expertHidden(4).maxTokens(16);
    }

    private ReMoERouter create(MoeConfig c) {
        ReMoERouter router = (ReMoERouter) Routers.create(c, arena, Kernels.get(), WorkerPool.common());
        int e = c.numExperts();
        float[] eye = new float[e * e];
        for (int i = 0; i < e; i++) eye[i * e + i] = 1;
        router.params().get(0).set(eye);
        return router;
    }

    /** Routes the rows of z, fed exactly through W_r = I (dModel = E). */
    private Routing route(ReMoERouter router, MoeConfig c, float[][] z, boolean training) {
        return RouterHarness.route(router, c, arena, z, null, training);
    }

    @Test
    void goldenRegulariserAndLambdaUpdate() {
        // r = [[0.5, 0], [1.0, 0.2]], E = 2, k = 1, T = 2 ⇒ L_reg = 1.6·λ; S = 0.25 < S* = 0.5 ⇒ λ ← 1.2·λ
        MoeConfig c = base(2).l1Init(0.5).l1Multiplier(1.2).build();
        ReMoERouter router = create(c);
        Routing r = route(router, c, new float[][]{{0.5f, -0.3f}, {1.0f, 0.2f}}, true);
        assertThat(r.otherLoss).isCloseTo(1.6 * 0.5, within(1e-7));
        assertThat(r.scores).startsWith(0.5f, 0f, 1.0f, 0.2f);
        assertThat(new int[]{r.expert[0], r.expert[1], r.expert[2], r.expert[3]}).containsExactly(0, -1, 0, 1);
        assertThat(new float[]{r.weight[0], r.weight[2], r.weight[3]}).containsExactly(0.5f, 1.0f, 0.2f);
        assertThat(router.stepSparsity()).isEqualTo(0.25);
        router.afterStep();
        assertThat(router.l1Coef()).isCloseTo(0.6f, within(1e-7f));
        assertThat(router.state()).containsExactly(router.l1Coef());
        assertThat(ReMoERouter.updateL1(1f, 0.25, 0.5, 1.2)).isCloseTo(1.2f, within(1e-7f));
    }

    @Test
    void lambdaFallsWhenSparseEnoughAndIgnoresInferenceBatches() {
        MoeConfig c = base(2).l1Init(0.5).l1Multiplier(1.2).build();
        ReMoERouter router = create(c);
        route(router, c, new float[][]{{0.5f, -0.3f}, {1.0f, -0.2f}}, true); // S = 0.5 = S* ⇒ divide
        router.afterStep();
        assertThat(router.l1Coef()).isCloseTo(0.5f / 1.2f, within(1e-7f));
        route(router, c, new float[][]{{-0.5f, -0.3f}, {-1.0f, -0.2f}}, true); // S = 1 > S* ⇒ divide
        router.afterStep();
        assertThat(router.l1Coef()).isCloseTo(0.5f / 1.2f / 1.2f, within(1e-7f));
        float before = router.l1Coef();
        route(router, c, new float[][]{{1f, 1f}, {1f, 1f}}, false); // dense, but not a training forward
        router.afterStep();
        assertThat(router.l1Coef()).as("no training forward since the last step ⇒ λ unchanged").isEqualTo(before);
        router.setL1Coef(3e-8f); // checkpoint restore
        assertThat(router.state()).containsExactly(3e-8f);
    }

    @Test
    void sparsityCountsEveryTrainingMicroBatchOfTheStep() {
        MoeConfig c = base(4).topK(2).l1Init(1).l1Multiplier(2).build(); // S* = 0.5
        ReMoERouter router = create(c);
        route(router, c, new float[][]{{1, 1, 1, 1}}, true);     // 0 zeros of 4
        route(router, c, new float[][]{{-1, -1, -1, 1}}, true);  // 3 zeros of 4 ⇒ S = 3/8 < 0.5
        assertThat(router.stepSparsity()).isEqualTo(3 / 8.0);
        router.afterStep();
        assertThat(router.l1Coef()).isEqualTo(2f);
    }

    /** ReLU gradient at exactly 0 is 0: an expert whose logit is exactly 0 gets no gradient, reg or task. */
    @Test
    void reluAtZeroPassesNoGradient() {
        MoeConfig c = base(2).l1Init(1).build();
        ReMoERouter router = create(c);
        router.params().get(0).zeroGrad();
        float[][] z = {{0.7f, 0f}, {0.3f, 0f}};
        Routing r = route(router, c, z, true);
        assertThat(r.expert[1]).isEqualTo(-1);
        MemorySegment x = F32.alloc(arena, 4), dx = F32.alloc(arena, 4);
        F32.copyIn(new float[]{0.7f, 0f, 0.3f, 0f}, x, 0);
        float[] dWeight = {1f, 0f, 1f, 0f};
        router.backward(x, 0, 2, r, dWeight, dx, 0);
        float[] g = router.params().get(0).gradToArray(); // dW[e, j] = Σ_t dz[t, e]·x[t, j]
        // expert 0: dz = 1 + λ·E·count/(k·T²) = 1 + 2·2/4 = 2 per token ⇒ dW[0,0] = 2·(0.7 + 0.3)
        assertThat(g[0]).isCloseTo(2f, within(1e-6f));
        assertThat(new float[]{g[2], g[3]}).as("expert 1 (z = 0) gets nothing").containsExactly(0f, 0f);
        assertThat(F32.toArray(dx, 0, 4)).containsExactly(new float[]{2f, 0f, 2f, 0f}, within(1e-6f));
    }

    /** Property 1: the output is continuous in W_r where an expert switches on (its weight is 0 there). */
    @Test
    void outputIsContinuousAcrossAnOnOffBoundary() {
        int d = 3, e = 2;
        MoeConfig c = MoeConfig.builder().router("remoe").dModel(d).numExperts(e).topK(1).expertHidden(5).maxTokens(1).build();
        MoeLayer layer = new MoeLayer(c, arena, Kernels.get(), WorkerPool.common());
        layer.init(new SplittableRandom(2), 0.5, 1.0);
        MemorySegment x = F32.alloc(arena, d), y = F32.alloc(arena, d);
        F32.copyIn(new float[]{1.0f, 0.5f, -0.25f}, x, 0);
        // W_r row 0 makes expert 0 clearly on; row 1 is [w, 0.5, 1] so that z_1 = w + 0.25 − 0.25 = w: on for w > 0
        double[] jumps = new double[2];
        double[] hs = {1e-2, 1e-3};
        for (int i = 0; i < 2; i++) {
            float[] below = run(layer, x, y, -(float) hs[i]), above = run(layer, x, y, (float) hs[i]);
            double jump = 0;
            for (int j = 0; j < d; j++) jump = Math.max(jump, Math.abs(above[j] - below[j]));
            jumps[i] = jump;
        }
        assertThat(layer.routing().expert[1]).as("expert 1 is on above the boundary").isEqualTo(1);
        assertThat(jumps[0]).isPositive();
        assertThat(jumps[1]).as("the jump shrinks with the step (O(h), no discontinuity)").isLessThan(jumps[0] / 5);
        assertThat(jumps[1]).isLessThan(1e-2);
    }

    private static float[] run(MoeLayer layer, MemorySegment x, MemorySegment y, float w) {
        layer.router().params().get(0).set(new float[]{1f, 0f, 0f, w, 0.5f, 1f});
        layer.forward(x, 0, 1, y, 0, false);
        return F32.toArray(y, 0, 3);
    }

    /** Per-token routing: a token's output does not depend on the rest of the batch (§5.8.4); L_reg does. */
    @Test
    void outputIsBatchInvariant() {
        int d = 8, t = 9;
        MoeConfig c = MoeConfig.builder().router("remoe").dModel(d).numExperts(4).topK(1).expertHidden(6).l1Init(0.1)
                .maxTokens(t).build();
        MoeLayer layer = new MoeLayer(c, arena, Kernels.get(), WorkerPool.common());
        layer.init(new SplittableRandom(5), 0.5, 1.0);
        MemorySegment x = F32.alloc(arena, (long) t * d), y = F32.alloc(arena, (long) t * d), y2 = F32.alloc(arena, (long) t * d);
        F32.copyIn(MoeLayerTest.randn(new SplittableRandom(6), t * d, 1.0), x, 0);
        layer.forward(x, 0, t, y, 0, false);
        double fullReg = layer.routing().otherLoss;
        layer.forward(x, 4L * d, 3, y2, 0, false);
        assertThat(F32.toArray(y2, 0, 3 * d)).containsExactly(F32.toArray(y, 4L * d, 3 * d), within(1e-6f));
        assertThat(layer.routing().otherLoss).isNotEqualTo(fullReg);
    }

    /** A token with no active expert produces 0 (the residual carries it); metrics count the active experts. */
    @Test
    void tokenWithNoActiveExpertGivesZero() {
        int d = 2;
        MoeConfig c = MoeConfig.builder().router("remoe").dModel(d).numExperts(2).topK(1).expertHidden(3).maxTokens(2).build();
        MoeLayer layer = new MoeLayer(c, arena, Kernels.get(), WorkerPool.common());
        layer.init(new SplittableRandom(4), 0.5, 1.0);
        layer.router().params().get(0).set(new float[]{1, 0, 0, 1}); // z = x
        MemorySegment x = F32.alloc(arena, 4), y = F32.alloc(arena, 4);
        F32.copyIn(new float[]{-1f, -2f, 1f, 2f}, x, 0);
        layer.forward(x, 0, 2, y, 0, false);
        assertThat(F32.toArray(y, 0, 2)).containsExactly(0f, 0f);
        assertThat(F32.toArray(y, 2, 2)).isNotEqualTo(new float[]{0f, 0f});
        assertThat(layer.metrics().activeExperts()).isEqualTo(1.0);
        assertThat(layer.metrics().otherLoss()).isPositive();
    }
}
