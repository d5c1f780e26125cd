package io.moe4j.train.export;

import io.moe4j.gguf.GgufFile;
import io.moe4j.moe.MoeConfig;
import io.moe4j.testutil.LlamaPeer;
import io.moe4j.train.model.ModelConfig;
import io.moe4j.train.model.MoeTransformer;
import org.junit.jupiter.api.io.CleanupMode;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Path;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * A trained model exported to GGUF runs in llama.cpp with the logits moe4j computes: the same next-token
 * distribution, max |Δ| ≤ 1e-4 of the logit range (llama.cpp in exact mode: F32 KV cache, no flash attention).
 */
class GgufExportTest {
    @TempDir(cleanup = CleanupMode.ON_SUCCESS) Path dir;

    static Stream<Arguments> families() {
        return Stream.of(
                Arguments.of("llama dense", ExportModels.config(null, false, false), ExportFamily.LLAMA),
                Arguments.of("llama dense tied", ExportModels.config(null, false, true), ExportFamily.LLAMA),
                Arguments.of("qwen3 dense", ExportModels.config(null, true, false), ExportFamily.QWEN3),
                Arguments.of("mixtral", ExportModels.config(ExportModels.moe().build(), false, false), ExportFamily.MIXTRAL),
                Arguments.of("qwen3moe", ExportModels.config(ExportModels.moe().build(), true, true), ExportFamily.QWEN3_MOE),
                Arguments.of("qwen2moe", ExportModels.config(ExportModels.moe().normalizeTopK(false).sharedExperts(1)
                        .sharedHidden(48).sharedGate(true).build(), false, false), ExportFamily.QWEN2_MOE));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("families")
    void llamaCppComputesOurLogits(String name, ModelConfig c, ExportFamily family) throws Exception {
        assertThat(ExportFamily.of(c).family()).isEqualTo(family);
        LlamaPeer.assumeAvailable();
        Path file = dir.resolve(name.replace(' ', '-') + ".gguf");
        float[] ours = new float[c.vocabSize()];
        try (MoeTransformer m = ExportModels.model(c)) {
            GgufExport.write(m, ExportModels.vocab(), "moe4j-test-" + name, file);
            m.nextLogits(ExportModels.PROMPT, ExportModels.PROMPT.length, ours);
        }
        try (GgufFile g = GgufFile.open(file)) {
            assertThat(g.architecture()).isEqualTo(family.ggufArch);
        }
        float[] theirs = LlamaPeer.logits(file, ExportModels.PROMPT, 1, 0, dir).logits();
        float lo = Float.POSITIVE_INFINITY, hi = Float.NEGATIVE_INFINITY, maxDiff = 0;
        int argOurs = 0, argTheirs = 0;
        for (int i = 0; i < ours.length; i++) {
            lo = Math.min(lo, theirs[i]);
            hi = Math.max(hi, theirs[i]);
            maxDiff = Math.max(maxDiff, Math.abs(ours[i] - theirs[i]));
            if (ours[i] > ours[argOurs]) argOurs = i;
            if (theirs[i] > theirs[argTheirs]) argTheirs = i;
        }
        assertThat(hi - lo).as("logit range").isGreaterThan(1f);
        assertThat(maxDiff / (hi - lo)).as("max |Δlogit| / range").isLessThan(1e-4f);
        assertThat(argOurs).isEqualTo(argTheirs);
    }

    @Test
    void routersNoEngineKnowsAreRefusedWithTheReasons() {
        ModelConfig ds = ExportModels.config(MoeConfig.builder().router("deepseek-v3").dModel(64).numExperts(4).topK(2)
                .expertHidden(32).routedScale(2.5f).build(), false, false);
        ExportFamily.Match m = ExportFamily.of(ds);
        assertThat(m.ok()).isFalse();
        assertThat(m.reasons()).anyMatch(r -> r.contains("router deepseek-v3")).anyMatch(r -> r.contains("routed scale"));
        try (MoeTransformer model = ExportModels.model(ds)) {
            assertThatThrownBy(() -> GgufExport.write(model, ExportModels.vocab(), "x", dir.resolve("x.gguf")))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("moe4j's own format");
        }
        ModelConfig mixedDense = new ModelConfig(64, 64, 2, 4, 2, 16, 64, 10000.0, 1e-5, false, false, 1, 96,
                ExportModels.moe().build(), 0.3, 1L);
        assertThat(ExportFamily.of(mixedDense).reasons()).anyMatch(r -> r.contains("leading dense"));
    }
}
