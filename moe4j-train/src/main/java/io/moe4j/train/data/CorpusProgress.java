package io.moe4j.train.data;

/**
 * Told how far tokenising has got while a token cache is built (large corpora take minutes). Called from the
 * building thread, at most about once per MiB of input and at the end of every source file.
 */
@FunctionalInterface
public interface CorpusProgress {

    /**
     * @param bytesRead  input bytes consumed so far (compressed bytes for gzip sources)
     * @param bytesTotal input bytes of all sources
     * @param tokens     tokens written so far, both splits
     * @param source     name of the source being read
     */
    void update(long bytesRead, long bytesTotal, long tokens, String source);

    CorpusProgress NONE = (bytesRead, bytesTotal, tokens, source) -> { };
}
