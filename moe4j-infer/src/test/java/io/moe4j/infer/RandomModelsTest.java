package io.moe4j.infer;

import io.moe4j.gguf.GgmlType;
import io.moe4j.gguf.GgufFile;
import io.moe4j.infer.tokenizer.ChatTemplate;
import io.moe4j.infer.tokenizer.GgufTokenizers;
import io.moe4j.parallel.WorkerPool;
import io.moe4j.testutil.LlamaPeer;
import io.moe4j.tokenizer.GgufVocab;
import io.moe4j.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Random models of named shapes: the file loads with its shape, its tokenizer round-trips text and has the
 * specials chat needs, the chat template renders, the same seed gives the same bytes; unknown names are refused.
 */
class RandomModelsTest {
    @TempDir Path dir;

    @Test
    void tinyModelLoadsRunsAndTokenizes() throws Exception {
        Path a = dir.resolve("a.gguf"), b = dir.resolve("b.gguf");
        RandomModels.write(RandomModels.TINY, GgmlType.Q8_0, 3, a);
        RandomModels.write(RandomModels.TINY, GgmlType.Q8_0, 3, b);
        assertThat(Files.readAllBytes(a)).as("same seed, same file").isEqualTo(Files.readAllBytes(b));
        try (Model m = Model.open(a); WorkerPool pool = new WorkerPool(1);
             Engine e = new Engine(m, pool, Engine.Options.defaults().withContextLength(64))) {
            HyperParams hp = m.hyperParams();
            assertThat(hp.layers()).isEqualTo(2);
            assertThat(hp.experts()).isEqualTo(4);
            assertThat(hp.vocab()).isEqualTo(512);
            Tokenizer t = GgufTokenizers.load(m.gguf());
            assertThat(t.vocabSize()).isEqualTo(512);
            String text = "The quick brown fox, 42 times!";
            int[] ids = t.encode(text);
            assertThat(t.decode(ids)).isEqualTo(text);
            assertThat(t.encode("<|im_start|>user", true)[0]).isEqualTo(t.encode("<|im_start|>", true)[0]);
            assertThat(t.stopTokens()).contains(t.eos());
            String chat = ChatTemplate.fromGguf(m.gguf(), t).render(List.of(ChatTemplate.Message.user("hi")), true);
            assertThat(chat).isEqualTo("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
            float[] logits = e.evaluate(0, ids);
            float min = Float.MAX_VALUE, max = -Float.MAX_VALUE;
            for (float x : logits) {
                min = Math.min(min, x);
                max = Math.max(max, x);
            }
            assertThat(max - min).as("random weights give spread logits").isGreaterThan(0.5f).isLessThan(100f);
        }
    }

    @Test
    void vocabularyOfEachShapeHasItsSizeAndLearnedMerges() {
        GgufVocab v = RandomModels.vocabulary(2048);
        assertThat(v.tokens()).hasSize(2048);
        assertThat(v.merges()).hasSizeGreaterThan(1000);
    }

    @Test
    void llamaCppLoadsTheTinyModelsAndAgrees() throws Exception {
        LlamaPeer.assumeAvailable();
        int[] ids = {5, 300, 17, 99, 511, 0};
        for (RandomModels.Shape shape : List.of(RandomModels.TINY, RandomModels.TINY_OLMOE)) {
            for (GgmlType type : List.of(GgmlType.Q8_0, GgmlType.Q4_0)) {
                Path a = dir.resolve(shape.name() + "-" + type + ".gguf");
                RandomModels.write(shape, type, 5, a);
                float[] want = LlamaPeer.logits(a, ids, 1, 0, dir).logits();
                try (Model m = Model.open(a); WorkerPool pool = new WorkerPool(1);
                     Engine e = new Engine(m, pool, Engine.Options.defaults().withContextLength(64))) {
                    assertThat(m.hyperParams().arch().ggufName()).isEqualTo(shape.arch());
                    float[] got = e.evaluate(0, ids);
                    assertThat(LlamaDiff.maxAbsDiff(got, want)).as("%s %s", shape.name(), type).isLessThanOrEqualTo(1e-3 * LlamaDiff.range(want));
                }
            }
        }
    }

    @Test
    void unknownShapeIsRefusedByName() {
        assertThatThrownBy(() -> RandomModels.shape("gpt-9")).hasMessageContaining("unknown model shape 'gpt-9'").hasMessageContaining("olmoe-1b-7b");
        assertThat(RandomModels.shape("OLMoE-1B-7B")).isSameAs(RandomModels.OLMOE_1B_7B);
        assertThat(RandomModels.OLMOE_1B_7B.parameters()).isBetween(6_800_000_000L, 7_100_000_000L);
    }
}
