package io.moe4j.train.export;

import io.moe4j.moe.MoeConfig;
import io.moe4j.moe.router.DeepSeekRouter;
import io.moe4j.nn.Param;
import io.moe4j.safetensors.SafetensorsFormatException;
import io.moe4j.safetensors.SafetensorsWriter;
import io.moe4j.train.model.CausalLm;
import io.moe4j.train.model.ModelConfig;
import io.moe4j.train.model.MoeTransformer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** moe4j's own model file: any router, bit-identical round trip, one clear error for a bad file. */
class Moe4jModelFileTest {
    @TempDir Path dir;

    private static ModelConfig deepseek() {
        return ExportModels.config(MoeConfig.builder().router("deepseek-v3").dModel(64).numExperts(4).topK(2)
                .expertHidden(32).nGroup(2).topkGroup(1).routedScale(2.5f).sharedExperts(1).sharedHidden(16).build(),
                true, false);
    }

    @Test
    void roundTripIsBitIdenticalIncludingRouterState() throws Exception {
        ModelConfig c = deepseek();
        Path file = dir.resolve("m.moe4j.safetensors");
        float[] before = new float[c.vocabSize()];
        java.util.List<float[]> saved = new java.util.ArrayList<>();
        try (MoeTransformer m = ExportModels.model(c)) {
            // "train": move every weight away from its seeded initialisation, so loading must really copy
            java.util.SplittableRandom r = new java.util.SplittableRandom(5);
            for (Param p : m.params()) {
                float[] v = p.toArray();
                for (int i = 0; i < v.length; i++) v[i] += (float) (0.01 * r.nextGaussian());
                p.set(v);
                saved.add(v);
            }
            float[] bias = ((DeepSeekRouter) m.moeLayers().get(1).router()).bias();
            bias[0] = 0.25f;
            bias[3] = -0.125f;
            m.nextLogits(ExportModels.PROMPT, ExportModels.PROMPT.length, before);
            Moe4jModelFile.save(m, Map.of("moe4j.tokenizer", "{\"kind\":\"bytes\"}"), file);
        }
        assertThat(Moe4jModelFile.readConfig(file)).isEqualTo(c);
        assertThat(Moe4jModelFile.readMetadata(file)).containsEntry("moe4j.tokenizer", "{\"kind\":\"bytes\"}");
        CausalLm back = Moe4jModelFile.load(file, ExportModels::model);
        try (MoeTransformer m = (MoeTransformer) back) {
            assertThat(((DeepSeekRouter) m.moeLayers().get(1).router()).bias()).containsExactly(0.25f, 0f, 0f, -0.125f);
            float[] after = new float[c.vocabSize()];
            m.nextLogits(ExportModels.PROMPT, ExportModels.PROMPT.length, after);
            assertThat(after).containsExactly(before);
            for (int i = 0; i < m.params().size(); i++) {
                assertThat(m.params().get(i).toArray()).as(m.params().get(i).name()).containsExactly(saved.get(i));
            }
        }
    }

    @Test
    void badFilesGiveOneClearError() throws Exception {
        ModelConfig c = deepseek();
        Path file = dir.resolve("m.safetensors");
        try (MoeTransformer m = ExportModels.model(c)) {
            Moe4jModelFile.save(m, Map.of(), file);
        }
        byte[] all = Files.readAllBytes(file);
        Path cut = dir.resolve("cut.safetensors");
        Files.write(cut, Arrays.copyOf(all, all.length / 2));
        assertThatThrownBy(() -> Moe4jModelFile.load(cut, ExportModels::model))
                .isInstanceOf(SafetensorsFormatException.class).hasMessageContaining("outside the data section");
        Path foreign = dir.resolve("foreign.safetensors");
        new SafetensorsWriter().metadata("format", "pt").write(foreign);
        assertThatThrownBy(() -> Moe4jModelFile.load(foreign, ExportModels::model))
                .isInstanceOf(SafetensorsFormatException.class).hasMessageContaining("not a moe4j model file");
        // a config the file claims but whose tensors do not match (e.g. edited by hand): names the parameter
        ModelConfig bigger = ExportModels.config(MoeConfig.builder().router("deepseek-v3").dModel(64).numExperts(4)
                .topK(2).expertHidden(48).nGroup(2).topkGroup(1).routedScale(2.5f).sharedExperts(1).sharedHidden(16).build(),
                true, false);
        assertThatThrownBy(() -> Moe4jModelFile.load(file, cfg -> ExportModels.model(bigger)))
                .isInstanceOf(SafetensorsFormatException.class).hasMessageContaining("experts.gate");
    }
}
