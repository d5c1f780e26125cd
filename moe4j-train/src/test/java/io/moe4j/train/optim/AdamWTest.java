package io.moe4j.train.optim;

import io.moe4j.testutil.TorchPeer;

import com.fasterxml.jackson.databind.JsonNode;
import io.moe4j.nn.F32;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

class AdamWTest {

    @Test
    void oneStepMatchesHandComputedValues() {
        try (Arena arena = Arena.ofConfined(); WorkerPool pool = new WorkerPool(1)) {
            Param w = new Param(arena, "layers.0.attn.wq", 1, 2).set(new float[]{1f, -2f});
            Param g = new Param(arena, "layers.0.attn_norm", 2).set(new float[]{1f, 1f});
            F32.copyIn(new float[]{0.5f, -0.25f}, w.gradData(), 0);
            F32.copyIn(new float[]{2f, 0f}, g.gradData(), 0);
            AdamW opt = new AdamW(List.of(w, g), new AdamWConfig(0.9, 0.99, 1e-8, 0.1, List.of()), arena, pool);
            opt.step(0.01);
            // step 1: m̂ = g, v̂ = g² ⇒ update = lr·g/(|g| + ε) = ±lr; decay multiplies by 1 − 0.01·0.1 = 0.999 first
            assertThat(w.toArray()[0]).isCloseTo(1f * 0.999f - 0.01f, within(1e-6f));
            assertThat(w.toArray()[1]).isCloseTo(-2f * 0.999f + 0.01f, within(1e-6f));
            // the norm gain is not decayed; a zero gradient leaves it where it was
            assertThat(g.toArray()[0]).isCloseTo(1f - 0.01f, within(1e-6f));
            assertThat(g.toArray()[1]).isEqualTo(1f);
            assertThat(F32.get(opt.moment1(0), 0)).isCloseTo(0.05f, within(1e-7f));
            assertThat(F32.get(opt.moment2(0), 0)).isCloseTo(0.01f * 0.25f, within(1e-8f));
            // step 2 with the same gradient: m = 0.095·…, hand-computed for w[0] (g = 0.5)
            opt.step(0.01);
            double m = 0.9 * 0.05 + 0.1 * 0.5, v = 0.99 * 0.0025 + 0.01 * 0.25;
            double mh = m / (1 - 0.81), vh = Math.sqrt(v) / Math.sqrt(1 - 0.9801);
            double expected = (0.999 - 0.01) * 0.999 - 0.01 * mh / (vh + 1e-8);
            assertThat((double) w.toArray()[0]).isCloseTo(expected, within(1e-6));
            assertThat(opt.stepCount()).isEqualTo(2);
        }
    }

    @Test
    void decayRuleAndLrGroups() {
        try (Arena arena = Arena.ofConfined()) {
            assertThat(AdamW.decays(new Param(arena, "tok_emb", 4, 3))).isTrue();
            assertThat(AdamW.decays(new Param(arena, "layers.0.ffn_norm", 4))).isFalse();
            assertThat(AdamW.decays(new Param(arena, "layers.0.attn.q_norm", 1, 4))).isFalse();
            assertThat(AdamW.decays(new Param(arena, "bias", 4))).isFalse();
        }
        AdamWConfig c = new AdamWConfig(0.9, 0.95, 1e-8, 0.1,
                List.of(new AdamWConfig.LrRule("layers.*.moe.experts.*", 0.5), new AdamWConfig.LrRule("head", 2)));
        assertThat(c.lrMultiplier("layers.3.moe.experts.up")).isEqualTo(0.5);
        assertThat(c.lrMultiplier("layers.3.moe.shared.up")).isEqualTo(1.0);
        assertThat(c.lrMultiplier("layers.3.moe.router.weight")).isEqualTo(1.0);
        assertThat(c.lrMultiplier("head.weight")).isEqualTo(2.0);
    }

    @Test
    void multiThreadedUpdateIsBitIdenticalToOneThread() {
        float[] one = run(1), two = run(2);
        assertThat(two).isEqualTo(one);
    }

    private static float[] run(int threads) {
        try (Arena arena = Arena.ofShared(); WorkerPool pool = new WorkerPool(threads)) {
            int n = 100_003; // several chunks and a ragged tail
            Param p = new Param(arena, "w", 1, n).initNormal(new SplittableRandom(1), 1);
            AdamW opt = new AdamW(List.of(p), AdamWConfig.defaults(), arena, pool);
            SplittableRandom rng = new SplittableRandom(2);
            for (int s = 0; s < 3; s++) {
                for (int i = 0; i < n; i++) F32.set(p.gradData(), i, (float) Param.gaussian(rng));
                opt.step(1e-3);
            }
            return p.toArray();
        }
    }

    /** Three steps of torch.optim.AdamW on the same parameters and gradients, with decay and LR groups. */
    @Test
    void matchesTorchAdamWForThreeSteps(@TempDir Path dir) throws Exception {
        assumeTrue(TorchPeer.available(), "python3 with torch not available");
        try (Arena arena = Arena.ofShared(); WorkerPool pool = new WorkerPool(2)) {
            SplittableRandom rng = new SplittableRandom(7);
            List<Param> ps = List.of(
                    new Param(arena, "layers.0.moe.experts.up", 3, 5).initNormal(rng, 0.5),
                    new Param(arena, "layers.0.attn_norm", 5).initNormal(rng, 0.5),
                    new Param(arena, "head", 4, 5).initNormal(rng, 0.5));
            AdamWConfig cfg = new AdamWConfig(0.9, 0.95, 1e-6, 0.1,
                    List.of(new AdamWConfig.LrRule("layers.*.experts.*", 0.25)));
            double[] lrs = {0.01, 0.02, 0.005};
            List<Map<String, Object>> pin = new ArrayList<>();
            for (Param p : ps) {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("shape", p.value().shape());
                m.put("values", p.toArray());
                m.put("decay", AdamW.decays(p));
                m.put("lrMult", cfg.lrMultiplier(p.name()));
                pin.add(m);
            }
            AdamW opt = new AdamW(ps, cfg, arena, pool);
            List<List<float[]>> grads = new ArrayList<>();
            for (double lr : lrs) {
                List<float[]> gs = new ArrayList<>();
                for (Param p : ps) {
                    float[] g = new float[(int) p.numel()];
                    for (int i = 0; i < g.length; i++) g[i] = (float) (Param.gaussian(rng) * (i % 3 == 0 ? 10 : 0.1));
                    F32.copyIn(g, p.gradData(), 0);
                    gs.add(g);
                }
                grads.add(gs);
                opt.step(lr);
            }
            Map<String, Object> in = new LinkedHashMap<>();
            in.put("params", pin);
            in.put("grads", grads);
            in.put("lrs", lrs);
            in.put("beta1", cfg.beta1());
            in.put("beta2", cfg.beta2());
            in.put("eps", cfg.eps());
            in.put("weightDecay", cfg.weightDecay());
            JsonNode out = TorchPeer.run("adamw_reference.py", in, dir);
            for (int i = 0; i < ps.size(); i++) {
                Param p = ps.get(i);
                float[] mine = p.toArray();
                JsonNode ref = out.get("values").get(i), m = out.get("m").get(i), v = out.get("v").get(i);
                for (int j = 0; j < mine.length; j++) {
                    assertThat(mine[j]).as("%s[%d]", p.name(), j).isCloseTo((float) ref.get(j).asDouble(), within(2e-6f));
                    assertThat(F32.get(opt.moment1(i), j)).isCloseTo((float) m.get(j).asDouble(), within(1e-6f));
                    assertThat(F32.get(opt.moment2(i), j)).isCloseTo((float) v.get(j).asDouble(), within(1e-5f));
                }
            }
        }
    }
}
