package io.moe4j.train;

import java.nio.file.Path;
import java.util.function.BiFunction;

/**
 * THE single wiring point between the run orchestration and the pieces built in parallel packages: the
 * transformer ({@code io.moe4j.train.model}, a {@code CausalLm}), the corpus ({@code io.moe4j.train.data}, a
 * {@code BatchSource}) and the BPE tokenizer ({@code io.moe4j.tokenizer}).
 *
 * <p>TODO(lead): replace the body of {@link #defaultInputs} with the real factories after the merge, e.g.
 * <pre>
 *   Tokenizer tok = data.tokenizer().isEmpty() ? Bpe.train(corpus, cfg.data().bpeVocab()) : Bpe.load(...);
 *   tok.save(runDir.resolve("tokenizer.json"));             // so that `generate` can find it next to checkpoints
 *   return new RunInputs(mc -&gt; new MoeTransformer(mc, ...), () -&gt; new CorpusBatches(corpus, tok, seed), tok, tok.vocabSize());
 * </pre>
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
