package io.moe4j.moe;

import io.moe4j.kernel.Kernels;
import io.moe4j.moe.loss.BalanceLoss;
import io.moe4j.moe.router.Routers;
import io.moe4j.moe.router.VMoeRouter;
import io.moe4j.parallel.WorkerPool;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

/** The V-MoE router (spec §4.10): softmax before top-k, no renormalisation, noise std noiseStd/E, its two losses. */
class VMoeRouterTest {
    private final Arena arena = Arena.ofAuto();
    private static final float[] Z = {0.5f, -0.2f, 1.5f, 0.3f};

    private static MoeConfig.Builder cfg() {
        return MoeConfig.builder().router("vmoe").dModel(4).numExperts(4).topK(2).expertHidden(4).maxTokens(256)
                .balanceLoss(BalanceLoss.SWITCH).balanceCoef(1);
    }

    private VMoeRouter create(MoeConfig c) {
        return (VMoeRouter) Routers.create(c, arena, Kernels.get(), WorkerPool.common());
    }

    private static double[] softmax(float[] z) {
        double m = Double.NEGATIVE_INFINITY, s = 0;
        for (float v : z) m = Math.max(m, v);
        double[] p = new double[z.length];
        for (int i = 0; i < z.length; i++) s += p[i] = Math.exp(z[i] - m);
        for (int i = 0; i < z.length; i++) p[i] /= s;
        return p;
    }

    @Test
    void evalWeightsAreTheFullSoftmaxOfTheChosenExperts() {
        MoeConfig c = cfg().build();
        Routing r = RouterHarness.routeLogits(create(c), c, arena, new float[][]{Z}, false);
        double[] p = softmax(Z);
        assertThat(new int[]{r.expert[0], r.expert[1]}).containsExactly(2, 0);
        assertThat(r.weight[0]).isCloseTo((float) p[2], within(1e-6f));
        assertThat(r.weight[1]).isCloseTo((float) p[0], within(1e-6f));
        assertThat(r.weight[0] + r.weight[1]).isLessThan(0.99f);            // not renormalised
        // one token: importance = p, CV²(p); load P_e = 1 − Φ((z_thr − z_e)/σ), σ = 1/4, thr = z_0 (2nd largest)
        double sigma = 0.25;
        double[] load = new double[4];
        for (int j = 0; j < 4; j++) load[j] = 1 - phi((Z[0] - Z[j]) / sigma);
        assertThat(r.balanceLoss).isCloseTo(cv2(p) + cv2(load), within(1e-6));
    }

    @Test
    void trainingNoiseHasStdNoiseStdOverE() {
        MoeConfig c = cfg().noiseStd(2.0).build();      // σ = 2/4 = 0.5
        VMoeRouter router = create(c);
        float[][] rows = new float[200][];
        for (int i = 0; i < rows.length; i++) rows[i] = Z.clone();
        RouterHarness.routeLogits(router, c, arena, rows, true);
        double s2 = 0, mean = 0;
        int n = 200 * 4;
        for (int i = 0; i < n; i++) mean += router.noisyLogits()[i] - Z[i % 4];
        mean /= n;
        for (int i = 0; i < n; i++) {
            double d = router.noisyLogits()[i] - Z[i % 4] - mean;
            s2 += d * d;
        }
        assertThat(Math.sqrt(s2 / n)).isCloseTo(0.5, within(0.05));
        assertThat(mean).isCloseTo(0, within(0.06));
    }

    @Test
    void kEqualsEGivesTheDenseSoftmax() {
        MoeConfig c = cfg().topK(4).build();
        Routing r = RouterHarness.routeLogits(create(c), c, arena, new float[][]{Z}, false);
        float sum = 0;
        for (int j = 0; j < 4; j++) sum += r.weight[j];
        assertThat(sum).isCloseTo(1f, within(1e-6f));
    }

    @Test
    void jitterIsRejected() {
        assertThatThrownBy(() -> create(cfg().jitter(0.1).build())).hasMessageContaining("moe.jitter must be 0 for the vmoe");
        assertThatThrownBy(() -> cfg().noiseStd(0).build()).hasMessageContaining("moe.noiseStd must be > 0");
    }

    private static double phi(double u) {
        return 0.5 * (1 + io.moe4j.moe.router.Gaussian.erf(u / Math.sqrt(2)));
    }

    /** population CV² with t2t's epsilons */
    private static double cv2(double[] v) {
        double n = v.length + 1e-10, m = 0, var = 0;
        for (double x : v) m += x;
        m /= n;
        for (double x : v) var += (x - m) * (x - m);
        var /= n;
        return var / (m * m + 1e-10);
    }
}
