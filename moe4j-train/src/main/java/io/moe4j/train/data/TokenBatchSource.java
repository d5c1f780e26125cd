package io.moe4j.train.data;

import java.util.ArrayList;
import java.util.List;

/**
 * {@link BatchSource} over a {@link TokenCorpus}.
 *
 * <p>Training rows are windows of seqLen + 1 tokens at random offsets of the training stream (documents follow
 * each other with an EOS between them, so a window may span a document boundary, as in GPT-2-style training).
 * Row number {@code r} — counted from the start of the run over all batches — starts at
 * {@code splitmix64(seed, r) mod (trainTokens − seqLen)}: a counter-based RNG, so the position is just the number of
 * rows drawn, {@link #seek} is free and a resumed run sees bit-identical batches (even with another batch size).
 *
 * <p>Validation rows are non-overlapping windows {@code [s·seqLen, s·seqLen + seqLen]} of the validation stream, on
 * the grid of seqLen-token slots. When every slot is used, every validation token except the first is a target
 * exactly once. When {@code maxBatches} asks for fewer rows than there are slots, the rows are spread evenly over the
 * whole stream (slot {@code ⌊i·slots/rows⌋} for row i) rather than taken from its start: the split is ordered by
 * document, so the first rows alone would measure the first documents' domain only. The set is the same on every
 * call.
 *
 * <p>Not thread-safe (one position); the corpus underneath is, so several sources may share it.
 */
public final class TokenBatchSource implements BatchSource {

    private final TokenCorpus corpus;
    private final long seed;
    private long row; // rows drawn so far = the position

    TokenBatchSource(TokenCorpus corpus, long seed) {
        this.corpus = corpus;
        this.seed = seed;
    }

    @Override
    public void nextTrain(int[] tokens, int batch, int seqLen) {
        checkShape(tokens, batch, seqLen);
        long n = corpus.trainTokens();
        if (n < seqLen + 1L) {
            throw new CorpusException("training split has " + n + " tokens, fewer than one window of seqLen + 1 = "
                    + (seqLen + 1) + "; use a shorter seqLen or more text");
        }
        long starts = n - seqLen; // offsets 0 .. n − seqLen − 1 keep the whole window inside the stream
        for (int b = 0; b < batch; b++, row++) {
            long off = Long.remainderUnsigned(mix(seed, row), starts);
            corpus.read(Split.TRAIN, off, tokens, b * (seqLen + 1), seqLen + 1);
        }
    }

    /** Offset of training row {@code r} (what {@link #nextTrain} uses; exposed for tests). */
    long trainOffset(long r, int seqLen) {
        return Long.remainderUnsigned(mix(seed, r), corpus.trainTokens() - seqLen);
    }

    @Override
    public ValidationSet validation(int batch, int seqLen, int maxBatches) {
        if (batch < 1 || seqLen < 1 || maxBatches < 1) {
            throw new IllegalArgumentException("validation: batch, seqLen and maxBatches must be ≥ 1, were "
                    + batch + ", " + seqLen + ", " + maxBatches);
        }
        long n = corpus.validationTokens();
        long rowsAvailable = n > seqLen ? (n - 1) / seqLen : 0;
        long batches = Math.min(maxBatches, rowsAvailable / batch);
        if (batches == 0) {
            throw new CorpusException("validation split has " + n + " tokens, too few for one batch of " + batch
                    + " × (seqLen " + seqLen + " + 1) = needs " + ((long) batch * seqLen + 1)
                    + "; raise valFraction, add text, or use a smaller batch or seqLen");
        }
        List<int[]> out = new ArrayList<>();
        List<String[]> domains = new ArrayList<>();
        long bytes = 0;
        long rows = batches * batch;
        for (int bi = 0; bi < batches; bi++) {
            int[] t = new int[batch * (seqLen + 1)];
            String[] d = new String[batch];
            for (int b = 0; b < batch; b++) {
                long i = (long) bi * batch + b;
                long slot = spreadSlot(i, rows, rowsAvailable);
                long start = slot * seqLen;
                int o = b * (seqLen + 1);
                corpus.read(Split.VALIDATION, start, t, o, seqLen + 1);
                for (int j = 1; j <= seqLen; j++) bytes += corpus.utf8Bytes(t[o + j]);
                d[b] = rowDomain(start + 1, start + seqLen + 1);
            }
            out.add(t);
            domains.add(d);
        }
        return new ValidationSet(List.copyOf(out), batches * batch * (long) seqLen, bytes, List.copyOf(domains));
    }

    /** Slot ⌊i·slots/rows⌋ of row i when {@code rows ≤ slots} rows are spread over {@code slots} (exact, no overflow). */
    static long spreadSlot(long i, long rows, long slots) {
        if (Math.multiplyHigh(i, slots) == 0 && i * slots >= 0) return i * slots / rows;
        return java.math.BigInteger.valueOf(i).multiply(java.math.BigInteger.valueOf(slots))
                .divide(java.math.BigInteger.valueOf(rows)).longValueExact();
    }

    /** Domain of the document holding most of the target tokens [from, to) of a row (ties: the earlier one). */
    private String rowDomain(long from, long to) {
        int best = -1;
        long bestCount = -1;
        for (int doc = corpus.valDocumentAt(from); doc < corpus.valDocuments(); doc++) {
            long s = Math.max(from, corpus.valDocStart(doc));
            if (s >= to) break;
            long count = Math.min(to, corpus.valDocStart(doc + 1)) - s;
            if (count > bestCount) {
                best = doc;
                bestCount = count;
            }
        }
        return best < 0 ? null : corpus.valDocDomain(best);
    }

    @Override
    public long position() {
        return row;
    }

    @Override
    public void seek(long position) {
        if (position < 0) throw new IllegalArgumentException("position must be ≥ 0, was " + position);
        row = position;
    }

    public TokenCorpus corpus() {
        return corpus;
    }

    private static void checkShape(int[] tokens, int batch, int seqLen) {
        if (batch < 1 || seqLen < 1) {
            throw new IllegalArgumentException("batch and seqLen must be ≥ 1, were " + batch + ", " + seqLen);
        }
        if (tokens.length < (long) batch * (seqLen + 1)) {
            throw new IllegalArgumentException("tokens has " + tokens.length + " slots, a batch needs batch × (seqLen + 1) = "
                    + (long) batch * (seqLen + 1));
        }
    }

    /** SplitMix64 of (seed, counter): a counter-based RNG, any row is one hash away. */
    static long mix(long seed, long counter) {
        long z = seed * 0xD1B54A32D192ED03L + (counter + 1) * 0x9E3779B97F4A7C15L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
