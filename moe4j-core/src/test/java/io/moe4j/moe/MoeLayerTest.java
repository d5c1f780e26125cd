package io.moe4j.moe;

import io.moe4j.kernel.Kernels;
import io.moe4j.moe.loss.BalanceLoss;
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

/** Layer-level differential tests: exact hand-built cases, dense equivalences, dropless = capacity, determinism. */
class MoeLayerTest {
    private static final WorkerPool POOL = new WorkerPool(2);
    private final Arena arena = Arena.ofAuto();

    @AfterAll
    static void close() { POOL.close(); }

    private static MemorySegment seg(Arena a, float[] v) {
        MemorySegment s = F32.alloc(a, v.length);
        F32.copyIn(v, s, 0);
        return s;
    }

    /** Spec §5.9: experts FFN_e(x) = c_e·x (ReLU MLP with identity weights, x > 0), c = [1, 10, 100]. */
    @Test
    void handBuiltExactRouterWeightsAreApplied() {
        for (boolean renorm : new boolean[]{true, false}) {
            MoeConfig c = MoeConfig.builder().dModel(2).numExperts(3).topK(2).expertHidden(2)
                    .expertType(ExpertType.MLP_RELU).normalizeTopK(renorm).balanceLoss(BalanceLoss.NONE).maxTokens(4).build();
            MoeLayer layer = new MoeLayer(c, arena, Kernels.get(), POOL);
            // router: z_e = ln(v_e) · x_0 with x = [1, 2]
            layer.router().params().get(0).set(new float[]{(float) Math.log(1), 0, (float) Math.log(2), 0, (float) Math.log(7), 0});
            float[] cs = {1, 10, 100};
            float[] up = new float[3 * 2 * 2], down = new float[3 * 2 * 2];
            for (int e = 0; e < 3; e++) {
                up[e * 4] = 1; up[e * 4 + 3] = 1;
                down[e * 4] = cs[e]; down[e * 4 + 3] = cs[e];
            }
            layer.experts().up().set(up);
            layer.experts().down().set(down);
            MemorySegment x = seg(arena, new float[]{1, 2});
            MemorySegment y = F32.alloc(arena, 2);
            layer.forward(x, 0, 1, y, 0, false);
            float[] out = F32.toArray(y, 0, 2);
            if (renorm) assertThat(out).containsExactly(new float[]{80, 160}, within(1e-4f));
            else assertThat(out).containsExactly(new float[]{72, 144}, within(1e-4f));
            assertThat(layer.routing().expert[0]).isEqualTo(2);
            assertThat(layer.routing().expert[1]).isEqualTo(1);
        }
    }

    /** One expert, top-1, softmax: the only weight is 1, so the layer is the dense FFN (spec §5.8.9). */
    @ParameterizedTest
    @EnumSource(ExpertType.class)
    void oneExpertTopOneEqualsDenseFfn(ExpertType type) {
        int d = 13, f = 7, t = 9;
        MoeConfig c = MoeConfig.builder().dModel(d).numExperts(1).topK(1).expertHidden(f).expertType(type)
                .maxTokens(t).build();
        MoeLayer layer = new MoeLayer(c, arena, Kernels.get(), POOL);
        layer.init(new SplittableRandom(1), 0.3, 1.0);
        float[] xs = randn(new SplittableRandom(2), t * d, 1.0);
        MemorySegment x = seg(arena, xs), y = F32.alloc(arena, (long) t * d);
        layer.forward(x, 0, t, y, 0, false);
        ExpertBank b = layer.experts();
        float[] gate = b.gate() == null ? null : b.gate().toArray(), up = b.up().toArray(), down = b.down().toArray();
        for (int i = 0; i < t; i++) {
            double[] ref = RefFfn.ffn(type, xs, i * d, d, f, gate, up, down, 0);
            for (int j = 0; j < d; j++) assertThat((double) F32.get(y, (long) i * d + j)).isCloseTo(ref[j], within(1e-4));
        }
    }

    /** k = E with softmax: the output is the probability-weighted dense mixture (spec §4.5 property 1). */
    @Test
    void topKEqualsEIsTheDenseMixture() {
        int d = 8, f = 6, e = 4, t = 5;
        for (boolean renorm : new boolean[]{true, false}) {
            MoeConfig c = MoeConfig.builder().dModel(d).numExperts(e).topK(e).expertHidden(f).normalizeTopK(renorm)
                    .maxTokens(t).build();
            MoeLayer layer = new MoeLayer(c, arena, Kernels.get(), POOL);
            layer.init(new SplittableRandom(3), 0.5, 1.0);
            float[] xs = randn(new SplittableRandom(4), t * d, 1.0);
            MemorySegment x = seg(arena, xs), y = F32.alloc(arena, (long) t * d);
            layer.forward(x, 0, t, y, 0, false);
            RefFfn.assertDenseMixture(layer, xs, y, t);
        }
    }

    /** Capacity-limited dispatch with room for everything equals dropless, bit for bit (spec §5.8.10). */
    @Test
    void droplessEqualsCapacityWhenNothingDrops() {
        int d = 16, f = 12, e = 6, t = 40;
        MoeConfig base = MoeConfig.builder().dModel(d).numExperts(e).topK(2).expertHidden(f).maxTokens(t).build();
        MoeConfig cap = base.toBuilder().dispatch(DispatchMode.CAPACITY).capacityRule(CapacityRule.FIXED)
                .fixedCapacity(t).build();
        float[][] outs = new float[2][];
        float[][] grads = new float[2][];
        int i = 0;
        for (MoeConfig c : new MoeConfig[]{base, cap}) {
            MoeLayer layer = new MoeLayer(c, arena, Kernels.get(), POOL);
            layer.init(new SplittableRandom(5), 0.3, 1.0);
            MemorySegment x = seg(arena, randn(new SplittableRandom(6), t * d, 1.0));
            MemorySegment y = F32.alloc(arena, (long) t * d), dx = F32.alloc(arena, (long) t * d);
            layer.forward(x, 0, t, y, 0, true);
            layer.backward(x, 0, seg(arena, randn(new SplittableRandom(7), t * d, 1.0)), 0, dx, 0);
            assertThat(layer.metrics().droppedFraction()).isZero();
            outs[i] = F32.toArray(y, 0, t * d);
            grads[i++] = F32.toArray(dx, 0, t * d);
        }
        assertThat(outs[1]).isEqualTo(outs[0]);
        assertThat(grads[1]).isEqualTo(grads[0]);
    }

    /** Dropped tokens produce zero output (spec §5.8.6) and their count shows in the metrics. */
    @Test
    void droppedTokensGiveZeroOutput() {
        int d = 4, f = 3, e = 2, t = 12;
        MoeConfig c = MoeConfig.builder().dModel(d).numExperts(e).topK(1).router("switch").expertHidden(f)
                .dispatch(DispatchMode.CAPACITY).capacityRule(CapacityRule.FIXED).fixedCapacity(2).maxTokens(t).build();
        MoeLayer layer = new MoeLayer(c, arena, Kernels.get(), POOL);
        layer.init(new SplittableRandom(8), 0.5, 1.0);
        MemorySegment x = seg(arena, randn(new SplittableRandom(9), t * d, 1.0)), y = F32.alloc(arena, (long) t * d);
        layer.forward(x, 0, t, y, 0, false);
        Routing r = layer.routing();
        int keptTokens = 0;
        for (int i = 0; i < t; i++) {
            boolean kept = r.kept[i];
            if (kept) keptTokens++;
            float norm = 0;
            for (int j = 0; j < d; j++) norm += Math.abs(F32.get(y, (long) i * d + j));
            if (!kept) assertThat(norm).isZero();
            else assertThat(norm).isPositive();
        }
        assertThat(keptTokens).isEqualTo(4);
        assertThat(layer.metrics().droppedFraction()).isCloseTo(8 / 12.0, within(1e-9));
    }

    @Test
    void resultsAreIdenticalForOneAndTwoThreads() {
        int d = 24, f = 20, e = 8, t = 33;
        MoeConfig c = MoeConfig.builder().dModel(d).numExperts(e).topK(2).expertHidden(f).sharedExperts(1)
                .sharedHidden(10).sharedGate(true).zLossCoef(1e-3).maxTokens(t).build();
        float[][] ys = new float[2][], dxs = new float[2][], dws = new float[2][];
        int i = 0;
        for (int threads : new int[]{1, 2}) {
            try (WorkerPool pool = new WorkerPool(threads)) {
                MoeLayer layer = new MoeLayer(c, arena, Kernels.get(), pool);
                layer.init(new SplittableRandom(10), 0.3, 1.0);
                MemorySegment x = seg(arena, randn(new SplittableRandom(11), t * d, 1.0));
                MemorySegment y = F32.alloc(arena, (long) t * d), dx = F32.alloc(arena, (long) t * d);
                layer.forward(x, 0, t, y, 0, true);
                layer.backward(x, 0, seg(arena, randn(new SplittableRandom(12), t * d, 1.0)), 0, dx, 0);
                ys[i] = F32.toArray(y, 0, t * d);
                dxs[i] = F32.toArray(dx, 0, t * d);
                dws[i++] = layer.experts().gate().gradToArray();
            }
        }
        assertThat(ys[1]).isEqualTo(ys[0]);
        assertThat(dxs[1]).isEqualTo(dxs[0]);
        assertThat(dws[1]).isEqualTo(dws[0]);
    }

    /**
     * Column tiles, one expert per task and parallel-inside-each-GEMM give the same bits (fixed code path per
     * product element), for widths that are not multiples of the tiles and with several tiles per expert.
     */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.CsvSource({"32, 24, 16, 64", "192, 160, 8, 96", "640, 576, 3, 40"})
    void expertParallelAndGemmParallelAgree(int d, int f, int e, int t) {
        MoeConfig c = MoeConfig.builder().dModel(d).numExperts(e).topK(2).expertHidden(f).maxTokens(t).build();
        String[] modes = {"on", "off", "tiles", "auto"};
        float[][] ys = new float[modes.length][], dxs = new float[modes.length][], dws = new float[modes.length][];
        float[][] dgs = new float[modes.length][], dus = new float[modes.length][];
        for (int i = 0; i < modes.length; i++) {
            MoeLayer layer = new MoeLayer(c, arena, Kernels.get(), POOL);
            layer.experts().splitMode(modes[i]);
            layer.init(new SplittableRandom(20), 0.3, 1.0);
            MemorySegment x = seg(arena, randn(new SplittableRandom(21), t * d, 1.0));
            MemorySegment y = F32.alloc(arena, (long) t * d), dx = F32.alloc(arena, (long) t * d);
            layer.forward(x, 0, t, y, 0, true);
            layer.backward(x, 0, seg(arena, randn(new SplittableRandom(22), t * d, 1.0)), 0, dx, 0);
            ys[i] = F32.toArray(y, 0, t * d);
            dxs[i] = F32.toArray(dx, 0, t * d);
            dws[i] = layer.experts().down().gradToArray();
            dgs[i] = layer.experts().gate().gradToArray();
            dus[i] = layer.experts().up().gradToArray();
        }
        for (int i = 1; i < modes.length; i++) {
            assertThat(ys[i]).as(modes[i]).isEqualTo(ys[0]);
            assertThat(dxs[i]).as(modes[i]).isEqualTo(dxs[0]);
            assertThat(dws[i]).as(modes[i]).isEqualTo(dws[0]);
            assertThat(dgs[i]).as(modes[i]).isEqualTo(dgs[0]);
            assertThat(dus[i]).as(modes[i]).isEqualTo(dus[0]);
        }
        assertThat(ys[0]).as("the layer computed something").isNotEqualTo(new float[t * d]);
    }

    /**
     * Spec §5.8.4: per-token dropless routers give every token the same output whether it is routed alone or in
     * a batch (bit for bit: each expert row is computed by the same GEMM code path, whatever the bin size).
     */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"softmax-topk", "deepseek-v3", "noisy-topk", "top-p", "remoe"})
    void perTokenRoutersAreBatchInvariant(String router) {
        int d = 16, f = 12, e = 8, t = 20;
        MoeConfig c = MoeConfig.builder().router(router).dModel(d).numExperts(e).topK(2).expertHidden(f)
                .nGroup(router.equals("deepseek-v3") ? 4 : 1).topkGroup(router.equals("deepseek-v3") ? 2 : 1)
                .maxTokens(t).build();
        MoeLayer layer = new MoeLayer(c, arena, Kernels.get(), POOL);
        layer.init(new SplittableRandom(30), 0.4, 1.0);
        float[] xs = randn(new SplittableRandom(31), t * d, 1.0);
        MemorySegment x = seg(arena, xs), y = F32.alloc(arena, (long) t * d);
        layer.forward(x, 0, t, y, 0, false);
        float[] batch = F32.toArray(y, 0, t * d);
        for (int i : new int[]{0, 7, t - 1}) {
            MemorySegment xi = seg(arena, java.util.Arrays.copyOfRange(xs, i * d, (i + 1) * d)), yi = F32.alloc(arena, d);
            layer.forward(xi, 0, 1, yi, 0, false);
            for (int j = 0; j < d; j++) {
                assertThat(F32.get(yi, j)).as("%s token %d dim %d", router, i, j).isCloseTo(batch[i * d + j], within(1e-5f));
            }
        }
    }

    /** Spec §5.8.5: permuting router rows and expert parameters together leaves the output unchanged. */
    @Test
    void expertPermutationEquivariance() {
        int d = 12, f = 10, e = 5, t = 16;
        MoeConfig c = MoeConfig.builder().dModel(d).numExperts(e).topK(2).expertHidden(f).maxTokens(t).build();
        MoeLayer a = new MoeLayer(c, arena, Kernels.get(), POOL), b = new MoeLayer(c, arena, Kernels.get(), POOL);
        a.init(new SplittableRandom(40), 0.4, 1.0);
        int[] perm = {3, 0, 4, 1, 2};
        float[] wr = a.router().params().get(0).toArray(), wrP = new float[wr.length];
        float[] g = a.experts().gate().toArray(), u = a.experts().up().toArray(), dn = a.experts().down().toArray();
        float[] gP = new float[g.length], uP = new float[u.length], dP = new float[dn.length];
        for (int k = 0; k < e; k++) {
            int src = perm[k];
            System.arraycopy(wr, src * d, wrP, k * d, d);
            System.arraycopy(g, src * f * d, gP, k * f * d, f * d);
            System.arraycopy(u, src * f * d, uP, k * f * d, f * d);
            System.arraycopy(dn, src * d * f, dP, k * d * f, d * f);
        }
        b.router().params().get(0).set(wrP);
        b.experts().gate().set(gP);
        b.experts().up().set(uP);
        b.experts().down().set(dP);
        MemorySegment x = seg(arena, randn(new SplittableRandom(41), t * d, 1.0));
        MemorySegment ya = F32.alloc(arena, (long) t * d), yb = F32.alloc(arena, (long) t * d);
        a.forward(x, 0, t, ya, 0, false);
        b.forward(x, 0, t, yb, 0, false);
        assertThat(F32.toArray(yb, 0, t * d)).containsExactly(F32.toArray(ya, 0, t * d), within(1e-5f));
    }

    @Test
    void nanInRouterLogitsIsReportedWithTheLayer() {
        MoeConfig c = MoeConfig.builder().dModel(4).numExperts(4).topK(2).expertHidden(4).layerIndex(7).maxTokens(2).build();
        MoeLayer layer = new MoeLayer(c, arena, Kernels.get(), POOL);
        layer.init(new SplittableRandom(1), 0.1, 1.0);
        MemorySegment x = seg(arena, new float[]{1, 2, Float.NaN, 4, 1, 1, 1, 1});
        assertThatThrownBy(() -> layer.forward(x, 0, 2, F32.alloc(arena, 8), 0, false))
                .isInstanceOf(NonFiniteException.class).hasMessageContaining("layer 7").hasMessageContaining("token 0");
    }

    @Test
    void invalidConfigsNameTheField() {
        assertThatThrownBy(() -> MoeConfig.builder().dModel(8).numExperts(4).topK(5).expertHidden(8).build())
                .isInstanceOf(InvalidConfigException.class).hasMessageContaining("moe.topK");
        assertThatThrownBy(() -> MoeConfig.builder().dModel(8).numExperts(4).expertHidden(8)
                .dispatch(DispatchMode.CAPACITY).capacityFactor(0).build()).hasMessageContaining("moe.capacityFactor");
        assertThatThrownBy(() -> MoeConfig.builder().dModel(8).numExperts(4).expertHidden(8).router("nope").build())
                .hasMessageContaining("moe.router").hasMessageContaining("softmax-topk");
        assertThatThrownBy(() -> MoeConfig.builder().dModel(8).numExperts(4).expertHidden(8).sharedHidden(16).build())
                .hasMessageContaining("moe.sharedHidden").hasMessageContaining("sharedExperts");
    }

    @Test
    void switchRouterNeedsTopOne() {
        MoeConfig c = MoeConfig.builder().dModel(8).numExperts(4).topK(2).expertHidden(8).router("switch").build();
        assertThatThrownBy(() -> new MoeLayer(c, arena, Kernels.get(), POOL)).hasMessageContaining("moe.topK must be 1");
    }

    // ------------------------------------------------------------------ helpers

    static float[] randn(SplittableRandom rng, int n, double std) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) (std * Param.gaussian(rng));
        return v;
    }

    static double[] softmax(double[] z) {
        double max = Double.NEGATIVE_INFINITY, sum = 0;
        for (double v : z) max = Math.max(max, v);
        double[] p = new double[z.length];
        for (int i = 0; i < z.length; i++) sum += p[i] = Math.exp(z[i] - max);
        for (int i = 0; i < z.length; i++) p[i] /= sum;
        return p;
    }
}
