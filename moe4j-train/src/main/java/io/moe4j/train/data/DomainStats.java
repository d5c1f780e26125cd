package io.moe4j.train.data;

/**
 * How much of one domain a split holds.
 *
 * @param domain    label ("drama", "code", ...) or {@link #UNLABELLED} for sources without one
 * @param documents documents
 * @param bytes     UTF-8 bytes of their text
 * @param tokens    tokens, end-of-text separators included
 */
public record DomainStats(String domain, long documents, long bytes, long tokens) {

    public static final String UNLABELLED = "(unlabelled)";

    /** Compression of the tokenizer on this domain (bytes per token; 0 when empty). */
    public double bytesPerToken() {
        return tokens == 0 ? 0 : (double) bytes / tokens;
    }

    DomainStats plus(long docs, long b, long t) {
        return new DomainStats(domain, documents + docs, bytes + b, tokens + t);
    }
}
