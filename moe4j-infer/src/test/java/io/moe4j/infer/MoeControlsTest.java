package io.moe4j.infer;

import io.moe4j.parallel.WorkerPool;
import io.moe4j.testutil.TinyGgufModels;
import io.moe4j.testutil.TinyGgufModels.Config;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.StringWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Inference-time MoE controls ({@link MoeOptions}) against the engine's own routing: an override equal to the
 * model's k and β = 0 change no bit; k overridden to E equals the same weights saved with expert_used_count = E;
 * β = 1 equals top-1; the trace has one line per token and MoE layer, and agrees with the stats.
 */
class MoeControlsTest {
    @TempDir static Path dir;
    private static WorkerPool pool;
    private static final int[] PROMPT = {1, 17, 5, 42, 9, 63, 30, 11, 2, 50};
    private static final Config[] CONFIGS = {Config.mixtral(11), Config.qwen2moe(12), Config.deepseek2(13)};
    private static final Path[] FILES = new Path[CONFIGS.length];

    @BeforeAll
    static void writeModels() throws Exception {
        for (int i = 0; i < CONFIGS.length; i++) {
            FILES[i] = dir.resolve(CONFIGS[i].arch() + ".gguf");
            TinyGgufModels.llama(CONFIGS[i]).write(FILES[i]);
        }
        pool = new WorkerPool(2);
    }

    @AfterAll
    static void close() { pool.close(); }

    private static float[] logits(Path file, MoeOptions moe) throws Exception {
        try (Model m = Model.open(file); Engine e = new Engine(m, pool, Engine.Options.defaults().withContextLength(32).withMoe(moe))) {
            return e.evaluate(0, PROMPT);
        }
    }

    private static Config withExpertsUsed(Config c, int k) {
        return new Config(c.arch(), c.vocab(), c.dim(), c.layers(), c.heads(), c.kvHeads(), c.ff(), c.experts(), k,
                c.sharedFf(), c.contextLength(), c.ropeBase(), c.rmsEps(), c.seed());
    }

    @Test
    void neutralSettingsChangeNothing() throws Exception {
        for (int i = 0; i < FILES.length; i++) {
            float[] base = logits(FILES[i], MoeOptions.defaults());
            assertThat(logits(FILES[i], MoeOptions.defaults().withSkipBeta(0f))).as("β=0 %s", CONFIGS[i].arch()).isEqualTo(base);
            assertThat(logits(FILES[i], MoeOptions.defaults().withExpertsPerToken(CONFIGS[i].expertsUsed())))
                    .as("k = model's %s", CONFIGS[i].arch()).isEqualTo(base);
        }
    }

    @Test
    void topKOverriddenToAllExpertsEqualsAModelSavedWithThatK() throws Exception {
        for (int i = 0; i < 2; i++) {   // deepseek2's groups limit a token to 2 of 4 groups
            Config c = CONFIGS[i];
            Path dense = dir.resolve(c.arch() + "-k" + c.experts() + ".gguf");
            TinyGgufModels.llama(withExpertsUsed(c, c.experts())).write(dense);
            float[] want = logits(dense, MoeOptions.defaults());
            float[] got = logits(FILES[i], MoeOptions.defaults().withExpertsPerToken(c.experts()));
            assertThat(got).as("k = E %s", c.arch()).isEqualTo(want);
            assertThat(got).as("k = E differs from the model's k").isNotEqualTo(logits(FILES[i], MoeOptions.defaults()));
        }
    }

    @Test
    void betaOneKeepsOnlyTheTopExpert() throws Exception {
        for (int i = 0; i < FILES.length; i++) {
            float[] top1 = logits(FILES[i], MoeOptions.defaults().withExpertsPerToken(1));
            assertThat(logits(FILES[i], MoeOptions.defaults().withSkipBeta(1f))).as("β=1 %s", CONFIGS[i].arch()).isEqualTo(top1);
        }
    }

    @Test
    void traceHasOneLinePerTokenAndMoeLayerAndAgreesWithStats() throws Exception {
        Config c = CONFIGS[0];
        StringWriter sw = new StringWriter();
        ExpertTrace trace = new ExpertTrace(sw);
        ExpertStats stats = new ExpertStats(c.layers(), c.experts());
        List<float[]> weights = new ArrayList<>();
        ExpertObserver sums = (l, s, p, ex, w, n, sel) -> {
            float[] copy = new float[n];
            System.arraycopy(w, 0, copy, 0, n);
            weights.add(copy);
        };
        float[] skipped = logits(FILES[0], MoeOptions.defaults().withSkipBeta(0.6f)
                .withObserver(ExpertObserver.both(trace, ExpertObserver.both(stats, sums))));
        trace.flush();
        String[] lines = sw.toString().split("\n");
        assertThat(lines).hasSize(PROMPT.length * c.layers());
        assertThat(trace.lines()).isEqualTo(PROMPT.length * c.layers());
        assertThat(lines[0]).matches("\\{\"slot\":0,\"pos\":0,\"layer\":0,\"experts\":\\[\\d(,\\d)?],\"weights\":\\[[0-9.E-]+(,[0-9.E-]+)?]}");
        long assignments = 0;
        for (float[] w : weights) {
            float s = 0;
            for (float x : w) s += x;
            assertThat(s).as("Mixtral renormalises over the surviving experts").isCloseTo(1f, org.assertj.core.data.Offset.offset(1e-6f));
            assignments += w.length;
        }
        long statsAssignments = 0;
        for (int l = 0; l < c.layers(); l++) {
            assertThat(stats.tokens(l)).isEqualTo(PROMPT.length);
            statsAssignments += stats.assignments(l);
        }
        assertThat(statsAssignments).isEqualTo(assignments);
        assertThat(assignments).as("β=0.6 skipped some of the top-2 choices").isLessThan((long) PROMPT.length * c.layers() * 2)
                .isGreaterThanOrEqualTo((long) PROMPT.length * c.layers());
        assertThat(skipped).isNotEqualTo(logits(FILES[0], MoeOptions.defaults()));
        assertThat(stats.summary()).contains("layer   0:").contains("layer   1:");
    }

    @Test
    void badSettingsAreOneClearError() throws Exception {
        assertThatThrownBy(() -> MoeOptions.defaults().withSkipBeta(1.5f)).hasMessageContaining("beta must be in [0, 1]");
        assertThatThrownBy(() -> logits(FILES[0], MoeOptions.defaults().withExpertsPerToken(5)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("experts per token 5 exceeds the 4 experts");
        assertThatThrownBy(() -> logits(FILES[2], MoeOptions.defaults().withExpertsPerToken(5)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("exceeds the 4 experts");
    }
}
