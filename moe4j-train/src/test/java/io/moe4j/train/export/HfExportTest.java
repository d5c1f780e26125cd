package io.moe4j.train.export;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moe4j.testutil.TorchPeer;
import io.moe4j.train.model.ModelConfig;
import io.moe4j.train.model.MoeTransformer;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Path;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * A model exported as a Hugging Face checkpoint computes our logits when run with transformers' semantics — checked
 * by an independent float64 PyTorch forward (resources/torch/hf_reference.py) that reads the safetensors and
 * config.json as transformers would (NEOX RoPE, per-family routing). Tolerance: 1e-4 of the logit range (float32
 * vs float64 accumulation).
 */
class HfExportTest {
    @TempDir Path dir;

    static java.util.stream.Stream<org.junit.jupiter.params.provider.Arguments> families() {
        return GgufExportTest.families();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("families")
    void transformersSemanticsGiveOurLogits(String name, ModelConfig c, ExportFamily family) throws Exception {
        assumeTrue(TorchPeer.available(), "python3 with torch is not installed");
        Path out = dir.resolve(name.replace(' ', '-'));
        float[] ours = new float[c.vocabSize()];
        try (MoeTransformer m = ExportModels.model(c)) {
            HfExport.write(m, out, 1, 2);
            m.nextLogits(ExportModels.PROMPT, ExportModels.PROMPT.length, ours);
        }
        JsonNode cfg = new ObjectMapper().readTree(out.resolve("config.json").toFile());
        assertThat(cfg.get("model_type").asText()).isEqualTo(family.hfModelType);
        JsonNode r = TorchPeer.run("hf_reference.py", Map.of("dir", out.toString(), "tokens", ExportModels.PROMPT), dir);
        float[] ref = TorchPeer.floats(r.get("logits"));
        float lo = Float.POSITIVE_INFINITY, hi = Float.NEGATIVE_INFINITY, maxDiff = 0;
        for (int i = 0; i < ref.length; i++) {
            lo = Math.min(lo, ref[i]);
            hi = Math.max(hi, ref[i]);
            maxDiff = Math.max(maxDiff, Math.abs(ours[i] - ref[i]));
        }
        assertThat(hi - lo).isGreaterThan(1f);
        assertThat(maxDiff / (hi - lo)).as("max |Δlogit| / range").isLessThan(1e-4f);
    }
}
