package io.moe4j.moe;

import io.moe4j.kernel.Kernels;
import io.moe4j.moe.loss.BalanceLoss;
import io.moe4j.moe.router.Routers;
import io.moe4j.nn.F32;
import io.moe4j.parallel.WorkerPool;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/** Dynamic top-p routing (spec §4.12): golden vector §5.4, test properties 1–3, aux losses, batch invariance. */
class TopPRouterTest {
    private static final float[][] Z = {
            {2.0f, 1.0f, 0.5f, -1.0f},
            {0.4f, 0.3f, 0.2f, 0.1f},
            {-1.0f, 3.0f, 0.0f, 1.0f},
            {0.5f, 0.25f, 2.0f, 0.0f}};
    private final Arena arena = Arena.ofAuto();

    private static MoeConfig.Builder base() {
        return MoeConfig.builder().router("top-p").dModel(4).numExperts(4).topK(2).expertHidden(4).maxTokens(64)
                .balanceLoss(BalanceLoss.NONE);
    }

    /** Routes the rows of z, fed exactly through W_r = I (dModel = E). */
    private Routing route(MoeConfig c, float[][] z) {
        return RouterHarness.routeLogits(Routers.create(c, arena, Kernels.get(), WorkerPool.common()), c, arena, z, true);
    }

    @Test
    void goldenThresholdPointFour() {
        Routing r = route(base().topPThreshold(0.4).build(), Z);
        assertThat(r.slots).isEqualTo(4);
        int[][] experts = {{0}, {0, 1}, {1}, {2}};
        float[][] weights = {{0.609460f}, {0.288651f, 0.261183f}, {0.830953f}, {0.652640f}};
        for (int t = 0; t < 4; t++) {
            for (int s = 0; s < 4; s++) {
                int slot = t * 4 + s;
                if (s < experts[t].length) {
                    assertThat(r.expert[slot]).as("token %d rank %d", t, s).isEqualTo(experts[t][s]);
                    assertThat(r.weight[slot]).isCloseTo(weights[t][s], within(1e-6f));
                    assertThat(r.kept[slot]).isTrue();
                } else {
                    assertThat(r.expert[slot]).as("token %d rank %d empty", t, s).isEqualTo(-1);
                }
            }
        }
        assertThat(r.totalAssignments()).isEqualTo(5);
    }

    @Test
    void propertiesAtLeastOneAndMinimalPrefix() {
        SplittableRandom rng = new SplittableRandom(11);
        int t = 50, e = 8;
        float[][] z = new float[t][e];
        for (float[] row : z) for (int j = 0; j < e; j++) row[j] = (float) (1.5 * MoeLayerTest.randn(rng, 1, 1)[0]);
        for (double thr : new double[]{0.05, 0.3, 0.5, 0.8, 0.95}) {
            Routing r = route(base().dModel(e).numExperts(e).topPThreshold(thr).build(), z);
            for (int i = 0; i < t; i++) {
                int n = 0;
                double cum = 0, top1 = 0;
                for (int j = 0; j < e; j++) top1 = Math.max(top1, r.scores[i * e + j]);
                float prev = Float.POSITIVE_INFINITY;
                while (n < e && r.expert[i * e + n] >= 0) {
                    float w = r.weight[i * e + n];
                    assertThat(w).as("descending order").isLessThanOrEqualTo(prev);
                    assertThat(w).isEqualTo(r.scores[i * e + r.expert[i * e + n]]);
                    prev = w;
                    cum += w;
                    n++;
                }
                assertThat(n).as("property 1: at least one expert").isGreaterThanOrEqualTo(1);
                if (top1 > thr) assertThat(n).as("property 1: top-1 above the threshold ⇒ one expert").isEqualTo(1);
                assertThat(cum).as("property 2: selection exceeds p_thr").isGreaterThan(thr);
                assertThat(cum - r.weight[i * e + n - 1]).as("property 2: minimal").isLessThanOrEqualTo(thr);
            }
        }
    }

    @Test
    void strictComparisonAddsAnExpertOnAnExactTie() {
        // p = [0.5, 0.25, 0.25]: c_0 = 0.5 equals p_thr = 0.5 exactly ⇒ not ">" ⇒ one more expert
        float[][] z = {{(float) Math.log(2), 0f, 0f}};
        Routing r = route(base().dModel(3).numExperts(3).topPThreshold(0.5).build(), z);
        assertThat(r.expert[0]).isEqualTo(0);
        assertThat(r.expert[1]).as("the tie goes to the lower index").isEqualTo(1);
        assertThat(r.expert[2]).isEqualTo(-1);
    }

    /** Property 3: p_thr = 1 ⇒ all experts with non-zero probability ⇒ the layer is the dense mixture. */
    @Test
    void thresholdOneIsTheDenseMixture() {
        int d = 8, f = 6, e = 4, t = 5;
        MoeConfig c = MoeConfig.builder().router("top-p").topPThreshold(1.0).dModel(d).numExperts(e).expertHidden(f)
                .maxTokens(t).build();
        MoeLayer layer = new MoeLayer(c, arena, Kernels.get(), WorkerPool.common());
        layer.init(new SplittableRandom(3), 0.5, 1.0);
        float[] xs = MoeLayerTest.randn(new SplittableRandom(4), t * d, 1.0);
        MemorySegment x = F32.alloc(arena, (long) t * d), y = F32.alloc(arena, (long) t * d);
        F32.copyIn(xs, x, 0);
        layer.forward(x, 0, t, y, 0, false);
        assertThat(layer.metrics().activeExperts()).isEqualTo(e);
        RefFfn.assertDenseMixture(layer, xs, y, t);
    }

    @Test
    void entropyAndBalanceLossesOnTheGoldenLogits() {
        // p in double from the logits (the rounded §5.1 table is only good to ~1e-6 per entry)
        double h = 0;
        double[] meanP = new double[4];
        for (float[] row : Z) {
            double[] p = MoeLayerTest.softmax(new double[]{row[0], row[1], row[2], row[3]});
            for (int j = 0; j < 4; j++) {
                h -= p[j] * Math.log(p[j]);
                meanP[j] += p[j] / 4;
            }
        }
        assertThat(meanP).containsExactly(new double[]{0.264739, 0.357439, 0.266582, 0.111241}, within(1e-6));
        // selection of §5.4 counts e0: tokens 0,1; e1: 1,2; e2: 3 ⇒ counts [2, 2, 1, 0], every selected expert
        double sumCountP = 2 * meanP[0] + 2 * meanP[1] + meanP[2];
        Routing hf = route(base().topPThreshold(0.4).entropyCoef(0.5).balanceLoss(BalanceLoss.HF).balanceCoef(1).build(), Z);
        assertThat(hf.otherLoss).isCloseTo(0.5 * h / 4, within(1e-6));
        assertThat(hf.balanceLoss).isCloseTo(4 * sumCountP / 4, within(1e-6));
        // MEGABLOCKS normalises by the nominal k = topK = 2
        Routing mb = route(base().topPThreshold(0.4).balanceLoss(BalanceLoss.MEGABLOCKS).balanceCoef(1).build(), Z);
        assertThat(mb.balanceLoss).isCloseTo(4 * sumCountP / (4 * 2), within(1e-6));
        assertThat(mb.otherLoss).isZero();
    }

    /** Per-token routing: a token's output does not depend on the rest of the batch (§5.8.4). */
    @Test
    void batchInvariant() {
        int d = 8, t = 9;
        MoeConfig c = MoeConfig.builder().router("top-p").topPThreshold(0.6).dModel(d).numExperts(4).expertHidden(6)
                .maxTokens(t).build();
        MoeLayer layer = new MoeLayer(c, arena, Kernels.get(), WorkerPool.common());
        layer.init(new SplittableRandom(5), 0.5, 1.0);
        MemorySegment x = F32.alloc(arena, (long) t * d), y = F32.alloc(arena, (long) t * d), y2 = F32.alloc(arena, (long) t * d);
        F32.copyIn(MoeLayerTest.randn(new SplittableRandom(6), t * d, 1.0), x, 0);
        layer.forward(x, 0, t, y, 0, false);
        layer.forward(x, 4L * d, 3, y2, 0, false);
        assertThat(F32.toArray(y2, 0, 3 * d)).containsExactly(F32.toArray(y, 4L * d, 3 * d), within(1e-6f));
    }
}
