package io.moe4j.train.data;

/**
 * Where the trainer's token batches come from. A batch is {@code int[batch * (seqLen + 1)]} row-major: each row is
 * seqLen + 1 consecutive tokens (inputs are the first seqLen, targets the last seqLen).
 *
 * <p>Deterministic: the same source at the same {@link #position()} yields the same batches, so that a resumed run
 * continues bit-identically ({@link #seek} restores the position from a checkpoint).
 */
public interface BatchSource {

    /** Fills {@code tokens} with the next training batch and advances the position. */
    void nextTrain(int[] tokens, int batch, int seqLen);

    /** The fixed validation set cut into batches of this shape (at most {@code maxBatches}); same result each call. */
    ValidationSet validation(int batch, int seqLen, int maxBatches);

    /** Opaque position in the training stream (for checkpoints). */
    long position();

    /** Returns to a position obtained from {@link #position()}. */
    void seek(long position);

    /**
     * Validation data in batches, with the UTF-8 byte count of the text the target tokens cover (for bits per
     * byte = loss_nats · targetTokens / (bytes · ln 2)) and, when the corpus has them, the domain of each row.
     *
     * @param batches      each int[batch * (seqLen + 1)]
     * @param targetTokens total target tokens over all batches
     * @param targetBytes  UTF-8 bytes of the text those target tokens decode to
     * @param rowDomains   per batch, per row: a domain label ("prose", "code", ...) or null when unknown
     */
    record ValidationSet(java.util.List<int[]> batches, long targetTokens, long targetBytes,
                         java.util.List<String[]> rowDomains) {
    }
}
