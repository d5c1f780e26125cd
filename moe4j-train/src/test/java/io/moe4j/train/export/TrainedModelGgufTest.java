package io.moe4j.train.export;

import io.moe4j.kernel.Kernels;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;
import io.moe4j.testutil.LlamaPeer;
import io.moe4j.tokenizer.BpeTrainer;
import io.moe4j.tokenizer.ByteLevelBpe;
import io.moe4j.train.model.ModelConfig;
import io.moe4j.train.model.MoeTransformer;
import io.moe4j.train.optim.AdamW;
import io.moe4j.train.optim.AdamWConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.CleanupMode;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The interop check: a model TRAINED by moe4j (a BPE tokenizer learned from text, AdamW steps on that text)
 * exported to GGUF gives llama.cpp the same next-token distribution as moe4j: max |Δlogit| ≤ 1e-4 of the range and
 * the same top-1, after a prompt tokenized by the trained tokenizer.
 */
class TrainedModelGgufTest {
    @TempDir(cleanup = CleanupMode.ON_SUCCESS) Path dir;

    @Test
    void llamaCppAgreesWithTheTrainedModel() throws Exception {
        LlamaPeer.assumeAvailable();
        List<String> texts = new ArrayList<>();
        for (int i = 0; i < 200; i++) {
            texts.add("The expert " + i % 7 + " routes token " + i + " to the mixture; the router learns the load.\n");
        }
        ByteLevelBpe tok = new BpeTrainer().vocabSize(320).specials(List.of("<|endoftext|>")).eos("<|endoftext|>").train(texts);
        int vocab = tok.vocabSize();
        ModelConfig c = new ModelConfig(vocab, 64, 2, 4, 2, 16, 64, 10000.0, 1e-5, false, false, 0, 96,
                ExportModels.moe().build(), 0.1, 3L);
        int[] ids = tok.encode(String.join("", texts));
        int b = 4, t = 32;
        int[] batch = new int[b * (t + 1)];
        try (MoeTransformer m = MoeTransformer.create(c, Kernels.get(), WorkerPool.common(), b);
             Arena arena = Arena.ofConfined()) {
            AdamW opt = new AdamW(m.params(), AdamWConfig.defaults(), arena, WorkerPool.common());
            double first = 0, last = 0;
            for (int step = 0; step < 30; step++) {
                for (int r = 0; r < b; r++) System.arraycopy(ids, (step * b + r) * 7 % (ids.length - t - 1), batch, r * (t + 1), t + 1);
                for (Param p : m.params()) p.zeroGrad();
                double loss = m.forwardBackward(batch, b, t, 1f).ce();
                if (step == 0) first = loss;
                last = loss;
                opt.step(3e-3);
                m.afterStep(step);
            }
            assertThat(last).as("it trained").isLessThan(first - 0.5);
            Path file = dir.resolve("trained.gguf");
            GgufExport.write(m, tok.toGguf(), "trained", file);
            int[] prompt = tok.encode("The expert 3 routes token");
            float[] ours = new float[vocab];
            m.nextLogits(prompt, prompt.length, ours);
            float[] theirs = LlamaPeer.logits(file, prompt, 1, 0, dir).logits();
            float lo = Float.POSITIVE_INFINITY, hi = Float.NEGATIVE_INFINITY, maxDiff = 0;
            int a1 = 0, a2 = 0;
            for (int i = 0; i < vocab; i++) {
                lo = Math.min(lo, theirs[i]);
                hi = Math.max(hi, theirs[i]);
                maxDiff = Math.max(maxDiff, Math.abs(ours[i] - theirs[i]));
                if (ours[i] > ours[a1]) a1 = i;
                if (theirs[i] > theirs[a2]) a2 = i;
            }
            assertThat(maxDiff / (hi - lo)).as("max |Δlogit| / range").isLessThan(1e-4f);
            assertThat(a1).isEqualTo(a2);
        }
    }
}
