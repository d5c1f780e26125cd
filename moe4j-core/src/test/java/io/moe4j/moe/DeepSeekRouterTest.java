package io.moe4j.moe;

import io.moe4j.kernel.Kernels;
import io.moe4j.moe.loss.BalanceLoss;
import io.moe4j.moe.router.DeepSeekRouter;
import io.moe4j.moe.router.Routers;
import io.moe4j.parallel.WorkerPool;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/** DeepSeek-V2/V3 routing: golden vectors §5.5 and §5.6 and the properties of §4.7/§4.8. */
class DeepSeekRouterTest {
    private final Arena arena = Arena.ofAuto();

    private static MoeConfig.Builder v3() {
        return MoeConfig.builder().router("deepseek-v3").dModel(8).numExperts(8).topK(2).expertHidden(4).nGroup(4)
                .topkGroup(2).routedScale(2.5f).normalizeTopK(true).balanceLoss(BalanceLoss.MEGABLOCKS).balanceCoef(1)
                .maxTokens(64);
    }

    /** Routes the rows of z (fed exactly through W_r = I). */
    private Routing route(DeepSeekRouter router, MoeConfig c, float[]... z) {
        return RouterHarness.routeLogits(router, c, arena, z, true);
    }

    private DeepSeekRouter create(MoeConfig c) {
        return (DeepSeekRouter) Routers.create(c, arena, Kernels.get(), WorkerPool.common());
    }

    @Test
    void goldenV3Routing() {
        float[] z = {0.5f, -0.2f, 1.5f, 0.3f, -1.0f, 2.0f, 0.1f, 0.0f};
        MoeConfig c = v3().build();
        DeepSeekRouter router = create(c);
        System.arraycopy(new float[]{0.0f, 0.3f, -0.5f, 0.0f, 0.2f, 0.0f, 0.0f, 0.4f}, 0, router.bias(), 0, 8);
        Routing r = route(router, c, z);
        assertThat(r.expert[0]).isEqualTo(7);
        assertThat(r.expert[1]).isEqualTo(1);
        assertThat(r.weight[0]).isCloseTo(1.315560f, within(1e-5f));
        assertThat(r.weight[1]).isCloseTo(1.184440f, within(1e-5f));
        assertThat(r.balanceLoss).isCloseTo(0.819222, within(1e-5));

        DeepSeekRouter noBias = create(c);
        Routing r0 = route(noBias, c, z);
        assertThat(new int[]{r0.expert[0], r0.expert[1]}).containsExactly(5, 2);
        assertThat(r0.weight[0]).isCloseTo(1.296532f, within(1e-5f));
        assertThat(r0.weight[1]).isCloseTo(1.203468f, within(1e-5f));
    }

    @Test
    void unbiasedLossIndicatorCountsTheRawTopK() {
        // §4.8 / §6 item 13: the paper's f_i counts TopK(s) without bias or group mask; the default counts the
        // actual routing. With the golden bias the actual choice is {7, 1}, the unbiased top-2 is {5, 2}.
        float[] z = {0.5f, -0.2f, 1.5f, 0.3f, -1.0f, 2.0f, 0.1f, 0.0f};
        float[] bias = {0.0f, 0.3f, -0.5f, 0.0f, 0.2f, 0.0f, 0.0f, 0.4f};
        MoeConfig c = v3().balanceUnbiasedTopK(true).build();
        DeepSeekRouter router = create(c);
        System.arraycopy(bias, 0, router.bias(), 0, 8);
        Routing r = route(router, c, z);
        assertThat(new int[]{r.expert[0], r.expert[1]}).containsExactly(7, 1);   // routing itself unchanged
        double sum = 0;
        double[] s = new double[8];
        for (int j = 0; j < 8; j++) sum += s[j] = 1 / (1 + Math.exp(-z[j]));
        // L = coef · E · Σ f_i P_i, f_i = 1/(T·k) for i ∈ {5, 2}, P_i = s_i / Σ s (T = 1)
        double expected = 8 * (0.5 * s[5] / sum + 0.5 * s[2] / sum);
        assertThat(r.balanceLoss).isCloseTo(expected, within(1e-5)).isNotCloseTo(0.819222, within(1e-3));
    }

    @Test
    void goldenBiasUpdate() {
        float[] b = new float[8];
        DeepSeekRouter.updateBias(b, new long[]{10, 2, 6, 6, 0, 8, 4, 12}, 0.001);
        assertThat(b).containsExactly(new float[]{-0.001f, 0.001f, 0, 0, 0.001f, -0.001f, 0.001f, -0.001f}, within(1e-9f));
    }

    @Test
    void v3Properties() {
        MoeConfig c = v3().topK(3).build();
        DeepSeekRouter router = create(c);
        SplittableRandom rng = new SplittableRandom(3);
        float[][] z = new float[40][8];
        for (float[] row : z) for (int j = 0; j < 8; j++) row[j] = (float) (2 * MoeLayerTest.randn(rng, 1, 1)[0]);
        for (int j = 0; j < 8; j++) router.bias()[j] = (float) (0.3 * MoeLayerTest.randn(rng, 1, 1)[0]);
        Routing r = route(router, c, z);
        int[] sel = java.util.Arrays.copyOf(r.expert, 40 * 3);
        float[] w = java.util.Arrays.copyOf(r.weight, 40 * 3);
        for (int t = 0; t < 40; t++) {
            // weights sum to the routed scale; selected experts lie in ≤ topkGroup groups
            assertThat(w[t * 3] + w[t * 3 + 1] + w[t * 3 + 2]).isCloseTo(2.5f, within(1e-5f));
            java.util.Set<Integer> groups = new java.util.HashSet<>();
            for (int j = 0; j < 3; j++) groups.add(sel[t * 3 + j] / 2);
            assertThat(groups.size()).isLessThanOrEqualTo(2);
        }
        // adding a constant to every bias changes no selection, and given the selection the weights ignore b
        for (int j = 0; j < 8; j++) router.bias()[j] += 0.7f;
        Routing r2 = route(router, c, z);
        assertThat(java.util.Arrays.copyOf(r2.expert, 120)).isEqualTo(sel);
        assertThat(java.util.Arrays.copyOf(r2.weight, 120)).isEqualTo(w);
    }

    @Test
    void groupLimitedWithAllGroupsEqualsPlainTopK() {
        SplittableRandom rng = new SplittableRandom(5);
        float[][] z = new float[20][8];
        for (float[] row : z) for (int j = 0; j < 8; j++) row[j] = (float) MoeLayerTest.randn(rng, 1, 1)[0];
        for (String name : new String[]{"deepseek-v2", "deepseek-v3"}) {
            MoeConfig grouped = v3().router(name).nGroup(4).topkGroup(4).build();
            MoeConfig plain = v3().router(name).nGroup(1).topkGroup(1).build();
            Routing a = route(create(grouped), grouped, z), b = route(create(plain), plain, z);
            assertThat(java.util.Arrays.copyOf(a.expert, 40)).isEqualTo(java.util.Arrays.copyOf(b.expert, 40));
        }
    }

    @Test
    void biasUpdatesMoveLoadTowardUniform() {
        // fixed, strongly skewed logits: repeated route → count → update must shrink the max deviation
        MoeConfig c = v3().nGroup(1).topkGroup(1).topK(2).biasUpdateSpeed(0.01).build();
        DeepSeekRouter router = create(c);
        SplittableRandom rng = new SplittableRandom(9);
        float[][] z = new float[64][8];
        for (float[] row : z) for (int j = 0; j < 8; j++) row[j] = (float) (MoeLayerTest.randn(rng, 1, 1)[0] + (j < 2 ? 1.5 : 0));
        double first = -1, last = -1;
        for (int step = 0; step < 200; step++) {
            Routing r = route(router, c, z);
            double mean = 64 * 2 / 8.0, dev = 0;
            for (int j = 0; j < 8; j++) dev = Math.max(dev, Math.abs(r.assigned[j] - mean));
            if (step == 0) first = dev;
            last = dev;
            router.afterStep();
        }
        assertThat(last).isLessThan(first / 3);
    }
}
