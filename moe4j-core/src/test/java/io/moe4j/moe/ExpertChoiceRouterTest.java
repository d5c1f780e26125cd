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
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

/** Expert Choice (spec §4.9): golden §5.3, perfect balance per group, non-causality, C = S ⇒ dense, config errors. */
class ExpertChoiceRouterTest {
    private static final float[][] Z = {
            {2.0f, 1.0f, 0.5f, -1.0f},
            {0.4f, 0.3f, 0.2f, 0.1f},
            {-1.0f, 3.0f, 0.0f, 1.0f},
            {0.5f, 0.25f, 2.0f, 0.0f}};
    private final Arena arena = Arena.ofAuto();

    private static MoeConfig.Builder base(int e) {
        return MoeConfig.builder().router("expert-choice").dModel(e).numExperts(e).expertHidden(4).maxTokens(64);
    }

    /** Routes the rows of z, fed exactly through W_r = I (dModel = E). */
    private Routing route(MoeConfig c, float[][] z) {
        return RouterHarness.routeLogits(Routers.create(c, arena, Kernels.get(), WorkerPool.common()), c, arena, z, true);
    }

    /** combine[t][e] rebuilt from the slots; also checks that ranks are in ascending expert id. */
    private static float[][] combine(Routing r) {
        int t = r.tokens(), e = r.numExperts;
        float[][] m = new float[t][e];
        for (int i = 0; i < t; i++) {
            int prev = -1;
            for (int s = 0; s < r.slots; s++) {
                int ex = r.expert[i * r.slots + s];
                if (ex < 0) {
                    for (int q = s; q < r.slots; q++) assertThat(r.expert[i * r.slots + q]).isEqualTo(-1);
                    break;
                }
                assertThat(ex).as("ascending expert id").isGreaterThan(prev);
                assertThat(r.kept[i * r.slots + s]).isTrue();
                prev = ex;
                m[i][ex] = r.weight[i * r.slots + s];
            }
        }
        return m;
    }

    @Test
    void goldenCapacityTwo() {
        // C = 2 via the FIXED rule (flaxformer's rule would give max(round(CF·4/4), 4) = 4 = S, the dense case)
        Routing r = route(base(4).capacityRule(CapacityRule.FIXED).fixedCapacity(2)
                .balanceLoss(BalanceLoss.HF).balanceCoef(1).build(), Z);
        float[][] want = {
                {0.609460f, 0, 0, 0},
                {0.288651f, 0.261183f, 0.236328f, 0.213838f},
                {0, 0.830953f, 0, 0.112457f},
                {0, 0, 0.652640f, 0}};
        float[][] got = combine(r);
        for (int t = 0; t < 4; t++) assertThat(got[t]).as("combine row %d", t).containsExactly(want[t], within(1e-6f));
        // tokens per expert: e0 → {0,1}, e1 → {2,1}, e2 → {3,1}, e3 → {1,2}
        boolean[][] picks = {{true, true, false, false}, {false, true, true, false}, {false, true, false, true},
                {false, true, true, false}};
        for (int e = 0; e < 4; e++) for (int t = 0; t < 4; t++) assertThat(got[t][e] > 0).isEqualTo(picks[e][t]);
        int[] perToken = new int[4];
        for (int t = 0; t < 4; t++) for (float w : got[t]) if (w > 0) perToken[t]++;
        assertThat(perToken).containsExactly(1, 4, 2, 1);
        assertThat(r.load).containsExactly(2, 2, 2, 2);
        assertThat(r.balanceLoss).as("no balance loss, whatever the config says").isZero();
    }

    /** Property 1: every expert processes exactly min(C, S) tokens of every group (the last group is shorter). */
    @Test
    void everyExpertTakesExactlyMinCSPerGroup() {
        SplittableRandom rng = new SplittableRandom(7);
        int t = 40, e = 4;
        float[][] z = new float[t][e];
        for (float[] row : z) for (int j = 0; j < e; j++) row[j] = (float) (2 * MoeLayerTest.randn(rng, 1, 1)[0]);
        // flaxformer CF 1.0: groups 16, 16, 8 ⇒ C = max(round(16/4), 4) = 4 and max(round(8/4), 4) = 4
        // CF 3.0: C = 12, 12 and 6; FIXED 10 on a last group of 8 ⇒ capped at 8 = S
        MoeConfig[] cs = {
                base(e).groupSize(16).capacityFactor(1.0).build(),
                base(e).groupSize(16).capacityFactor(3.0).build(),
                base(e).groupSize(16).capacityRule(CapacityRule.FIXED).fixedCapacity(10).build(),
                base(e).capacityRule(CapacityRule.GSHARD).capacityFactor(0.5).build()};
        int[][] wantC = {{4, 4, 4}, {12, 12, 6}, {10, 10, 8}, {5}};
        for (int ci = 0; ci < cs.length; ci++) {
            Routing r = route(cs[ci], z);
            int g = cs[ci].groupTokens(t);
            for (int start = 0, gi = 0; start < t; start += g, gi++) {
                int[] counts = new int[e];
                for (int i = start; i < Math.min(t, start + g); i++) {
                    for (int s = 0; s < e; s++) if (r.expert[i * e + s] >= 0) counts[r.expert[i * e + s]]++;
                }
                assertThat(counts).as("config %d group %d", ci, gi).containsOnly(wantC[ci][gi]);
            }
        }
    }

    @Test
    void tiesGoToTheLowerTokenIndex() {
        float[][] z = new float[6][];
        for (int i = 0; i < 6; i++) z[i] = new float[]{0.3f, -0.1f};
        Routing r = route(base(2).capacityRule(CapacityRule.FIXED).fixedCapacity(2).build(), z);
        for (int i = 0; i < 6; i++) {
            int n = 0;
            while (n < 2 && r.expert[i * 2 + n] >= 0) n++;
            assertThat(n).as("token %d", i).isEqualTo(i < 2 ? 2 : 0);
        }
    }

    /** Property 2 (and §5.8.4 non-invariance): changing a later token changes an earlier token's output. */
    @Test
    void notCausalALaterTokenChangesAnEarlierOutput() {
        int d = 2;
        MoeConfig.Builder b = MoeConfig.builder().dModel(d).numExperts(2).topK(1).expertHidden(3).maxTokens(2);
        float[] before = {1, 0, 0, 1}, after = {1, 0, 2, 0}; // token 1 moves toward expert 0
        float[][] y0 = new float[2][];
        for (String name : new String[]{"expert-choice", "softmax-topk"}) {
            MoeConfig c = b.router(name).capacityRule(CapacityRule.FIXED).fixedCapacity(1).build();
            MoeLayer layer = new MoeLayer(c, arena, Kernels.get(), WorkerPool.common());
            layer.init(new SplittableRandom(3), 0.5, 1.0);
            layer.router().params().get(0).set(new float[]{1, 0, 0, 1}); // z = x
            MemorySegment x = F32.alloc(arena, 4), y = F32.alloc(arena, 4);
            int i = 0;
            for (float[] xs : new float[][]{before, after}) {
                F32.copyIn(xs, x, 0);
                layer.forward(x, 0, 2, y, 0, false);
                y0[i++] = F32.toArray(y, 0, d);
            }
            // expert choice, C = 1: expert 0 first picks token 0 (p 0.73 > 0.27), then token 1 (p 0.88 > 0.73)
            if (name.equals("expert-choice")) assertThat(y0[1]).isNotEqualTo(y0[0]);
            else assertThat(y0[1]).as("token choice is per token").isEqualTo(y0[0]);
        }
    }

    /** Property 3: C = S ⇒ every expert takes every token ⇒ the dense mixture Σ_e p_e FFN_e(x). */
    @Test
    void capacityEqualToGroupIsTheDenseMixture() {
        int d = 8, f = 6, e = 4, t = 5;
        MoeConfig c = MoeConfig.builder().router("expert-choice").capacityRule(CapacityRule.FIXED).fixedCapacity(100)
                .dModel(d).numExperts(e).expertHidden(f).maxTokens(t).build();
        MoeLayer layer = new MoeLayer(c, arena, Kernels.get(), WorkerPool.common());
        layer.init(new SplittableRandom(3), 0.5, 1.0);
        float[] xs = MoeLayerTest.randn(new SplittableRandom(4), t * d, 1.0);
        MemorySegment x = F32.alloc(arena, (long) t * d), y = F32.alloc(arena, (long) t * d);
        F32.copyIn(xs, x, 0);
        layer.forward(x, 0, t, y, 0, false);
        assertThat(layer.metrics().activeExperts()).isEqualTo(e);
        assertThat(layer.metrics().tokensPerExpert()).containsOnly(t);
        RefFfn.assertDenseMixture(layer, xs, y, t);
    }

    @Test
    void configErrorsNameTheField() {
        MoeConfig.Builder b = MoeConfig.builder().router("expert-choice").dModel(4).numExperts(4).expertHidden(4);
        MoeConfig capacity = b.dispatch(DispatchMode.CAPACITY).build();
        assertThatThrownBy(() -> new MoeLayer(capacity, arena, Kernels.get(), WorkerPool.common()))
                .isInstanceOf(InvalidConfigException.class).hasMessageContaining("moe.dispatch")
                .hasMessageContaining("expert-choice");
        MoeConfig noFactor = b.dispatch(DispatchMode.DROPLESS).capacityFactor(0).build();
        assertThatThrownBy(() -> new MoeLayer(noFactor, arena, Kernels.get(), WorkerPool.common()))
                .isInstanceOf(InvalidConfigException.class).hasMessageContaining("moe.capacityFactor");
        MoeConfig noFixed = b.capacityFactor(1).capacityRule(CapacityRule.FIXED).fixedCapacity(0).build();
        assertThatThrownBy(() -> new MoeLayer(noFixed, arena, Kernels.get(), WorkerPool.common()))
                .isInstanceOf(InvalidConfigException.class).hasMessageContaining("moe.fixedCapacity");
        for (String name : new String[]{"expert-choice", "top-p", "remoe"}) {
            MoeConfig scaled = b.router(name).capacityRule(CapacityRule.FLAXFORMER).routedScale(2.5f).build();
            assertThatThrownBy(() -> new MoeLayer(scaled, arena, Kernels.get(), WorkerPool.common()))
                    .isInstanceOf(InvalidConfigException.class).hasMessageContaining("moe.routedScale")
                    .hasMessageContaining(name);
        }
    }
}
