package io.moe4j.train;

import io.moe4j.kernel.Kernels;
import io.moe4j.parallel.WorkerPool;
import io.moe4j.tokenizer.BpeTrainer;
import io.moe4j.tokenizer.ByteLevelBpe;
import io.moe4j.tokenizer.TokenizerFiles;
import io.moe4j.train.data.CorpusOptions;
import io.moe4j.train.data.CorpusProgress;
import io.moe4j.train.data.Documents;
import io.moe4j.train.data.Sources;
import io.moe4j.train.data.Split;
import io.moe4j.train.data.TextSource;
import io.moe4j.train.data.TokenCorpus;
import io.moe4j.train.model.MoeTransformer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.function.BiFunction;
import java.util.function.Supplier;

/**
 * The single wiring point between the run orchestration and the pieces it is written against: the transformer
 * ({@link MoeTransformer}, a {@link io.moe4j.train.model.CausalLm}), the corpus ({@link TokenCorpus}, a
 * {@link io.moe4j.train.data.BatchSource}) and the byte-level BPE tokenizer ({@link ByteLevelBpe}).
 *
 * <p>Tokenizer: {@code data.tokenizer} when set; else {@code tokenizer.json} in the run directory (a resumed run or
 * {@code generate} finds the one it trained with); else one trained on the corpus's training split with
 * {@code data.bpeVocab} tokens — cached under the corpus cache directory by sources and size, so a demo's MoE and
 * dense runs, and the next demo, share it — and copied into the run directory.
 *
 * <p>Everything else (train, demo, experiment, generate) calls {@link #inputs} and is tested with fakes through
 * {@link #override}.
 */
public final class Wiring {
    private static final Logger LOG = LoggerFactory.getLogger(Wiring.class);
    /** At most this much text trains the tokenizer (a larger corpus is sampled by taking its first documents). */
    static final long TOKENIZER_TEXT_CHARS = 24L << 20;
    public static final String EOT = "<|endoftext|>";

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
        List<String> src = cfg.data().paths() == null || cfg.data().paths().isEmpty()
                ? List.of(Sources.BUNDLED) : cfg.data().paths();
        CorpusOptions opts = CorpusOptions.of(src).withValFraction(cfg.data().valFraction());
        ByteLevelBpe tok = tokenizer(cfg, opts, runDir);
        // opened on first use: `generate` needs the tokenizer but no corpus
        TokenCorpus[] corpus = {null};
        Supplier<TokenCorpus> open = () -> {
            synchronized (corpus) {
                if (corpus[0] == null) {
                    long t0 = System.nanoTime();
                    corpus[0] = TokenCorpus.open(opts, tok, progress());
                    if (corpus[0].built()) {
                        System.err.printf(Locale.ROOT, "%ncorpus tokenised in %.1f s%n", (System.nanoTime() - t0) / 1e9);
                    }
                }
                return corpus[0];
            }
        };
        int maxBatch = cfg.train().batch();
        return new RunInputs(mc -> MoeTransformer.create(mc, Kernels.get(), WorkerPool.common(), maxBatch),
                () -> open.get().batches(cfg.train().seed()), tok, tok.vocabSize());
    }

    private static ByteLevelBpe tokenizer(TrainConfig cfg, CorpusOptions opts, Path runDir) {
        try {
            String given = cfg.data().tokenizer();
            if (given != null && !given.isBlank()) {
                Path f = Path.of(given);
                if (!Files.isRegularFile(f)) throw new ConfigException("data.tokenizer: no such file " + f);
                return TokenizerFiles.load(f);
            }
            Path inRun = runDir.resolve("tokenizer.json");
            if (Files.isRegularFile(inRun)) return TokenizerFiles.load(inRun);
            Path cached = opts.cacheDir().resolve("tokenizers").resolve(key(opts, cfg.data().bpeVocab()) + ".json");
            ByteLevelBpe tok;
            if (Files.isRegularFile(cached)) {
                tok = TokenizerFiles.load(cached);
            } else {
                tok = train(opts, cfg.data().bpeVocab());
                Files.createDirectories(cached.getParent());
                TokenizerFiles.save(tok, cached);
            }
            Files.createDirectories(runDir);
            TokenizerFiles.save(tok, inRun);
            return tok;
        } catch (IOException e) {
            throw new UncheckedIOException("tokenizer: " + e.getMessage(), e);
        }
    }

    private static ByteLevelBpe train(CorpusOptions opts, int vocab) {
        List<String> texts = new ArrayList<>();
        long[] chars = {0};
        long t0 = System.nanoTime();
        System.err.printf("training a %d-token byte-level BPE tokenizer on the corpus...%n", vocab);
        Documents.forEach(opts, d -> {
            if (d.split() == Split.TRAIN && chars[0] < TOKENIZER_TEXT_CHARS) {
                texts.add(d.text());
                chars[0] += d.text().length();
            }
        });
        if (texts.isEmpty()) throw new ConfigException("the corpus has no training text to train a tokenizer on");
        ByteLevelBpe tok = new BpeTrainer().vocabSize(vocab).specials(List.of(EOT)).eos(EOT).train(texts);
        System.err.printf(Locale.ROOT, "tokenizer: %d tokens from %.1f MB of text in %.1f s%n", tok.vocabSize(),
                chars[0] / 1e6, (System.nanoTime() - t0) / 1e9);
        LOG.debug("tokenizer trained: {}", tok);
        return tok;
    }

    /** A name for the tokenizer a corpus and vocabulary size give. */
    private static String key(CorpusOptions opts, int vocab) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            md.update(("v1|" + vocab + "|" + opts.valFraction() + "|" + opts.splitSeed() + "|" + opts.docChars())
                    .getBytes(StandardCharsets.UTF_8));
            for (TextSource s : Sources.resolve(opts.sources())) {
                md.update((s.name() + "|" + s.location() + "|" + s.size() + "|" + s.version() + "\n").getBytes(StandardCharsets.UTF_8));
            }
            return HexFormat.of().formatHex(md.digest(), 0, 12);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** One line redrawn on a terminal (a line every few seconds otherwise) while the corpus is tokenised. */
    private static CorpusProgress progress() {
        boolean tty = System.console() != null;
        long[] last = {0};
        return (read, total, tokens, source) -> {
            long now = System.nanoTime();
            if (read < total && now - last[0] < (tty ? 250_000_000L : 5_000_000_000L)) return;
            last[0] = now;
            String line = String.format(Locale.ROOT, "tokenising corpus %5.1f%%  %.1f / %.1f MB  %,d tokens  %s",
                    100.0 * read / Math.max(1, total), read / 1e6, total / 1e6, tokens, source);
            System.err.print(tty ? "\r" + line : line + "\n");
        };
    }
}
