package io.moe4j.gguf;

import io.moe4j.testutil.LlamaPeer;
import io.moe4j.testutil.TinyGgufModels;
import io.moe4j.testutil.TinyGgufModels.Config;
import io.moe4j.testutil.TinyGgufModels.Model;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.CleanupMode;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * GGUF files written by {@link GgufWriter} load and run in llama.cpp: the base of the differential tests that
 * compare moe4j's forward pass with llama.cpp's logits. Skipped when the peer is not installed (dev/setup-peers).
 */
class LlamaPeerTest {
    private static final int[] PROMPT = {TinyGgufModels.BOS, 17, 5, 42, 9, 63, 30};

    @TempDir(cleanup = CleanupMode.ON_SUCCESS) Path dir;   // a failure leaves the .gguf behind to load by hand

    @Test
    void denseLlamaLoadsRunsAndRepeats() throws Exception {
        LlamaPeer.assumeAvailable();
        Model m = TinyGgufModels.llama(Config.dense(1));
        Path file = dir.resolve("dense.gguf");
        m.write(file);

        LlamaPeer.Result first = LlamaPeer.logits(file, PROMPT, 1, 4, dir);
        checkSane(first, m);
        // A second process over the same file gives the same bits: the reference is stable enough to compare with.
        LlamaPeer.Result again = LlamaPeer.logits(file, PROMPT, 1, 4, dir);
        assertThat(again.logits()).containsExactly(first.logits());
        assertThat(again.greedy()).containsExactly(first.greedy());
    }

    @Test
    void mixtralStyleMoeLoadsAndRuns() throws Exception {
        LlamaPeer.assumeAvailable();
        Model m = TinyGgufModels.llama(Config.mixtral(2));
        Path file = dir.resolve("mixtral.gguf");
        m.write(file);
        checkSane(LlamaPeer.logits(file, PROMPT, 1, 4, dir), m);
    }

    @Test
    void fileCarriesTheWeightsAsWritten() throws Exception {
        // What llama.cpp read must be what the fixture holds, or later comparisons test the wrong model.
        Model m = TinyGgufModels.llama(Config.mixtral(3));
        Path file = dir.resolve("roundtrip.gguf");
        m.write(file);
        try (GgufFile f = GgufFile.open(file)) {
            assertThat(f.tensors()).hasSize(m.weights().size());
            for (TinyGgufModels.Weight w : m.weights().values()) {
                GgufTensorInfo info = f.tensorInfo(w.name());
                assertThat(info.type()).isEqualTo(GgmlType.F32);
                assertThat(info.ne()).as(w.name()).containsExactly(w.ne());
                assertThat(f.tensor(w.name()).toFloatArray()).as(w.name()).containsExactly(w.data());
            }
        }
    }

    private static void checkSane(LlamaPeer.Result r, Model m) {
        int vocab = m.config().vocab();
        assertThat(r.vocabSize()).isEqualTo(vocab);
        assertThat(r.logits()).hasSize(vocab);
        float min = Float.POSITIVE_INFINITY, max = Float.NEGATIVE_INFINITY;
        int argmax = 0;
        for (int i = 0; i < vocab; i++) {
            float v = r.logits()[i];
            assertThat(Float.isFinite(v)).as("logit %d = %s", i, v).isTrue();
            if (v > max) { max = v; argmax = i; }
            min = Math.min(min, v);
        }
        assertThat(max - min).as("logit spread").isGreaterThan(0.1f);
        assertThat(r.greedy()).hasSize(4);
        for (int t : r.greedy()) assertThat(t).isBetween(0, vocab - 1);
        assertThat(r.greedy()[0]).as("first greedy token is the argmax").isEqualTo(argmax);
    }
}
