package io.moe4j.train;

import java.nio.file.Path;
import java.util.function.BiFunction;

/**
 * THE single wiring point between the run orchestration and the pieces built in parallel packages: the
 * transformer ({@code io.moe4j.train.model}, a {@code CausalLm}), the corpus ({@code io.moe4j.train.data}, a
 * {@code BatchSource}) and the BPE tokenizer ({@code io.moe4j.tokenizer}).
 *
 * <p>TODO(lead): replace the body of {@link #defaultInputs} after the merge. With the APIs on the parallel
 * branches as last seen (names to check):
 * <pre>
 *   List&lt;String&gt; src = cfg.data().paths().isEmpty() ? List.of(Sources.BUNDLED) : cfg.data().paths();
 *   CorpusOptions opts = CorpusOptions.of(src).withValFraction(cfg.data().valFraction());
 *   Path tokFile = cfg.data().tokenizer().isEmpty() ? runDir.resolve("tokenizer.json") : Path.of(cfg.data().tokenizer());
 *   ByteLevelBpe tok = Files.exists(tokFile) ? TokenizerFiles.load(tokFile)
 *           : new BpeTrainer().vocabSize(cfg.data().bpeVocab()).train(texts of Documents.forEach(opts, ...) train split);
 *   TokenizerFiles.save(tok, runDir.resolve("tokenizer.json"));   // `generate` finds it next to the checkpoints
 *   Supplier&lt;TokenCorpus&gt; corpus = memoized(() -&gt; TokenCorpus.open(opts, tok)); // lazy: `generate` needs no corpus
 *   return new RunInputs(mc -&gt; MoeTransformer.create(mc, Kernels.get(), WorkerPool.common(), cfg.train().batch()),
 *           () -&gt; corpus.get().batches(cfg.train().seed()), tok, tok.vocabSize());
 * </pre>
 * (Tried on a scratch merge of the train-model, corpus and tokenizer branches: `demo`, `experiment routers`,
 * `generate` and kill-and-resume ran end to end.)
 * Everything else (train, demo, experiment, generate) calls {@link #inputs} and is tested with fakes through
 * {@link #override}.
 */
public final class Wiring {
    private static volatile BiFunction<TrainConfig, Path, RunInputs> override;

    private Wiring() {}

    /**
     * Model, data and tokenizer for {@code cfg}; {@code runDir} is where the run keeps (or, for {@code generate},
     * finds) its tokenizer.
     */
    public static RunInputs inputs(TrainConfig cfg, Path runDir) {
        BiFunction<TrainConfig, Path, RunInputs> o = override;
        return o != null ? o.apply(cfg, runDir) : defaultInputs(cfg, runDir);
    }

    /** Replaces the wiring (tests, embedding applications); null restores the default. */
    public static void override(BiFunction<TrainConfig, Path, RunInputs> factory) { override = factory; }

    private static RunInputs defaultInputs(TrainConfig cfg, Path runDir) {
        throw new UnsupportedOperationException("training needs the MoE transformer, the corpus and the tokenizer, "
                + "which are not wired into this build yet (io.moe4j.train.Wiring)");
    }
}
