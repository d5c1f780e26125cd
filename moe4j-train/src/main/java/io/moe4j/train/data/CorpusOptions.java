package io.moe4j.train.data;

import java.nio.file.Path;
import java.util.List;

/**
 * What corpus to build and how to cut it.
 *
 * @param sources     source specs (see {@link Sources}): "bundled", files, directories, globs, {@code domain=spec}
 * @param valFraction share of documents held out for validation, in [0, 1)
 * @param docChars    target document size in chars: longer inputs are cut at the first blank line after this many
 *                    chars (hard cut at twice as many); the split is decided per document, so smaller documents give
 *                    a finer split
 * @param splitSeed   seed of the split hash (another seed, another split)
 * @param cacheDir    where token caches live, one subdirectory per cache key
 */
public record CorpusOptions(List<String> sources, double valFraction, int docChars, long splitSeed, Path cacheDir) {

    public static final double DEFAULT_VAL_FRACTION = 0.1;
    public static final int DEFAULT_DOC_CHARS = 16 * 1024;

    public CorpusOptions {
        if (sources == null || sources.isEmpty()) {
            throw new CorpusException("corpus: no sources given (use \"bundled\", a file, a directory or a glob)");
        }
        sources = List.copyOf(sources);
        if (!(valFraction >= 0 && valFraction < 1)) {
            throw new CorpusException("corpus valFraction must be in [0, 1), was " + valFraction);
        }
        if (docChars < 256) throw new CorpusException("corpus docChars must be ≥ 256, was " + docChars);
        if (cacheDir == null) throw new CorpusException("corpus cacheDir must be set");
    }

    /** Defaults: 10 % validation, 16 Ki-char documents, seed 0, cache in {@link #defaultCacheDir()}. */
    public static CorpusOptions of(List<String> sources) {
        return new CorpusOptions(sources, DEFAULT_VAL_FRACTION, DEFAULT_DOC_CHARS, 0, defaultCacheDir());
    }

    public CorpusOptions withSources(String... specs) {
        return new CorpusOptions(List.of(specs), valFraction, docChars, splitSeed, cacheDir);
    }

    public CorpusOptions withValFraction(double f) {
        return new CorpusOptions(sources, f, docChars, splitSeed, cacheDir);
    }

    public CorpusOptions withDocChars(int c) {
        return new CorpusOptions(sources, valFraction, c, splitSeed, cacheDir);
    }

    public CorpusOptions withSplitSeed(long s) {
        return new CorpusOptions(sources, valFraction, docChars, s, cacheDir);
    }

    public CorpusOptions withCacheDir(Path d) {
        return new CorpusOptions(sources, valFraction, docChars, splitSeed, d);
    }

    /**
     * {@code -Dmoe4j.cache} or {@code $MOE4J_CACHE}, plus {@code /corpus}; else {@code $XDG_CACHE_HOME/moe4j/corpus};
     * else {@code ~/.cache/moe4j/corpus}.
     */
    public static Path defaultCacheDir() {
        String m = System.getProperty("moe4j.cache", System.getenv("MOE4J_CACHE"));
        if (m != null && !m.isBlank()) return Path.of(m, "corpus");
        String x = System.getenv("XDG_CACHE_HOME");
        if (x != null && !x.isBlank()) return Path.of(x, "moe4j", "corpus");
        return Path.of(System.getProperty("user.home"), ".cache", "moe4j", "corpus");
    }
}
