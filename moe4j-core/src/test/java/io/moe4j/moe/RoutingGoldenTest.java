package io.moe4j.moe;

import io.moe4j.kernel.Kernels;
import io.moe4j.moe.loss.BalanceLoss;
import io.moe4j.moe.loss.ZLoss;
import io.moe4j.moe.router.Router;
import io.moe4j.moe.router.Routers;
import io.moe4j.parallel.WorkerPool;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/** Golden vectors of spec §5.1, §5.2 and balanced-routing properties §5.8.3. Router logits are fed exactly via W_r = I. */
class RoutingGoldenTest {
    private static final float[][] Z = {
            {2.0f, 1.0f, 0.5f, -1.0f},
            {0.4f, 0.3f, 0.2f, 0.1f},
            {-1.0f, 3.0f, 0.0f, 1.0f},
            {0.5f, 0.25f, 2.0f, 0.0f}};
    private final Arena arena = Arena.ofAuto();

    private Routing route(MoeConfig c, float[][] z, boolean training) {
        return RouterHarness.routeLogits(Routers.create(c, arena, Kernels.get(), WorkerPool.common()), c, arena, z, training);
    }

    private static MoeConfig.Builder base() {
        return MoeConfig.builder().dModel(4).numExperts(4).topK(2).expertHidden(4).maxTokens(8);
    }

    @Test
    void softmaxTopTwoGolden() {
        Routing r = route(base().normalizeTopK(false).balanceLoss(BalanceLoss.HF).balanceCoef(1).zLossCoef(1).build(), Z, true);
        float[] p = {0.609460f, 0.224208f, 0.135989f, 0.030343f, 0.288651f, 0.261183f, 0.236328f, 0.213838f,
                0.015219f, 0.830953f, 0.041371f, 0.112457f, 0.145624f, 0.113412f, 0.652640f, 0.088325f};
        for (int i = 0; i < 16; i++) assertThat(r.scores[i]).isCloseTo(p[i], within(1e-6f));
        assertThat(new int[]{r.expert[0], r.expert[1], r.expert[2], r.expert[3], r.expert[4], r.expert[5], r.expert[6], r.expert[7]})
                .containsExactly(0, 1, 0, 1, 1, 3, 2, 0);
        float[] raw = {0.609460f, 0.224208f, 0.288651f, 0.261183f, 0.830953f, 0.112457f, 0.652640f, 0.145624f};
        for (int i = 0; i < 8; i++) assertThat(r.weight[i]).isCloseTo(raw[i], within(1e-6f));
        assertThat(r.balanceLoss).isCloseTo(2.244355, within(1e-6));
        assertThat(r.zLoss).isCloseTo(6.239566, within(1e-5));

        Routing rn = route(base().normalizeTopK(true).balanceLoss(BalanceLoss.MEGABLOCKS).balanceCoef(1).build(), Z, true);
        float[] ren = {0.731059f, 0.268941f, 0.524979f, 0.475021f, 0.880797f, 0.119203f, 0.817574f, 0.182426f};
        for (int i = 0; i < 8; i++) assertThat(rn.weight[i]).isCloseTo(ren[i], within(1e-6f));
        assertThat(rn.balanceLoss).isCloseTo(1.122177, within(1e-6));

        Routing r1 = route(base().topK(1).balanceLoss(BalanceLoss.SWITCH).balanceCoef(1).build(), Z, true);
        assertThat(r1.balanceLoss).isCloseTo(1.153498, within(1e-6));
    }

    @Test
    void switchAuxGradientIsEfOverT() {
        // ∂(Switch aux)/∂p_{t,e} = E·f¹_e/T = [0.5, 0.25, 0.25, 0]: check through BalanceLoss directly.
        float[] p = new float[16];
        for (int t = 0; t < 4; t++) System.arraycopy(softmax(Z[t]), 0, p, t * 4, 4);
        float[] dp = new float[16];
        BalanceLoss.SWITCH.compute(p, 0, 4, 4, new int[]{0, 0, 1, 2}, null, 1, 1.0, dp);
        for (int t = 0; t < 4; t++) assertThat(new float[]{dp[t * 4], dp[t * 4 + 1], dp[t * 4 + 2], dp[t * 4 + 3]})
                .containsExactly(new float[]{0.5f, 0.25f, 0.25f, 0f}, within(1e-7f));
    }

    @Test
    void capacityAndBatchPrioritizedRouting() {
        // §5.2: top-1, E = 2, C = 2; token t picks expert choice[t] with probability priority[t].
        int[] choice = {0, 0, 0, 1, 0, 1};
        float[] prio = {0.60f, 0.90f, 0.70f, 0.80f, 0.95f, 0.55f};
        float[][] z = new float[6][];
        for (int t = 0; t < 6; t++) {
            float lp = (float) Math.log(prio[t]), lq = (float) Math.log(1 - prio[t]);
            z[t] = choice[t] == 0 ? new float[]{lp, lq} : new float[]{lq, lp};
        }
        MoeConfig.Builder b = MoeConfig.builder().dModel(2).numExperts(2).topK(1).router("switch").expertHidden(2)
                .dispatch(DispatchMode.CAPACITY).capacityRule(CapacityRule.FIXED).fixedCapacity(2).maxTokens(6);
        boolean[] vanilla = {true, true, false, true, false, true};
        boolean[] bpr = {false, true, false, true, true, true};
        for (PriorityOrder order : PriorityOrder.values()) {
            MoeConfig c = b.priority(order).build();
            Routing r = route(c, z, false);
            new CapacityPlanner(2, 6).apply(r, c.capacity(6), order);
            boolean[] kept = java.util.Arrays.copyOf(r.kept, 6);
            assertThat(kept).containsExactly(order == PriorityOrder.POSITION ? vanilla : bpr);
        }
    }

    @Test
    void balancedRoutingValues() {
        // probabilities all 1/E and every expert gets exactly T·k/E assignments (§5.8.3)
        int t = 8, e = 4, k = 2;
        float[] p = new float[t * e];
        java.util.Arrays.fill(p, 1f / e);
        int[] counts = {4, 4, 4, 4};
        int[] top1 = {0, 1, 2, 3, 0, 1, 2, 3};
        assertThat(BalanceLoss.SWITCH.compute(p, 0, t, e, top1, counts, 1, 1, null)).isCloseTo(1, within(1e-9));
        assertThat(BalanceLoss.HF.compute(p, 0, t, e, top1, counts, k, 1, null)).isCloseTo(k, within(1e-9));
        assertThat(BalanceLoss.MEGABLOCKS.compute(p, 0, t, e, top1, counts, k, 1, null)).isCloseTo(1, within(1e-9));
    }

    @Test
    void zLossIsNotShiftInvariantAndHasTheDocumentedGradient() {
        float[] z = {2.0f, 1.0f, 0.5f, -1.0f};
        float[] shifted = {3.0f, 2.0f, 1.5f, 0.0f};
        assertThat(ZLoss.compute(shifted, 1, 4, 1, null)).isGreaterThan(ZLoss.compute(z, 1, 4, 1, null));
        float[] g = new float[4];
        ZLoss.compute(z, 1, 4, 1, g);
        for (int j = 0; j < 4; j++) {
            float[] zp = z.clone(), zm = z.clone();
            zp[j] += 1e-3f;
            zm[j] -= 1e-3f;
            double fd = (ZLoss.compute(zp, 1, 4, 1, null) - ZLoss.compute(zm, 1, 4, 1, null)) / 2e-3;
            assertThat((double) g[j]).isCloseTo(fd, within(2e-3));
        }
    }

    private static float[] softmax(float[] z) {
        double max = Double.NEGATIVE_INFINITY, s = 0;
        for (float v : z) max = Math.max(max, v);
        float[] p = new float[z.length];
        for (float v : z) s += Math.exp(v - max);
        for (int i = 0; i < z.length; i++) p[i] = (float) (Math.exp(z[i] - max) / s);
        return p;
    }
}
