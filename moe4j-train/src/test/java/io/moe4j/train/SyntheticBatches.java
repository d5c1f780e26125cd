package io.moe4j.train;

import io.moe4j.train.data.BatchSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * Test-only deterministic token stream: row r is a walk through a fixed random Markov chain with two successors
 * per token (so a model can learn it down to ~ln 2 nats), seeded by (seed, r). The position counts rows, so
 * {@code accum} micro-batches of B rows read exactly the rows of one batch of accum·B. Rows in {@code poisonRows}
 * start with the marker token vocab − 1 (see {@link FakeLm}). Validation rows come from a disjoint range;
 * "bytes" are 1.5 per token.
 */
final class SyntheticBatches implements BatchSource {
    private final int vocab;
    private final long seed;
    private final int[][] next;  // (V−1, 2) successors
    private final Set<Long> poisonRows;
    private long row;

    SyntheticBatches(int vocab, long seed, Set<Long> poisonRows) {
        this.vocab = vocab;
        this.seed = seed;
        this.poisonRows = poisonRows;
        int n = vocab - 1;
        next = new int[n][2];
        for (int i = 0; i < n; i++) {
            next[i][0] = (int) Long.remainderUnsigned(mix(seed * 31 + i), n);
            next[i][1] = (int) Long.remainderUnsigned(mix(seed * 37 + i + 1000), n);
        }
    }

    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    private void fillRow(long r, int[] out, int off, int len) {
        int cur = (int) Long.remainderUnsigned(mix(seed ^ (r * 0x9E3779B97F4A7C15L)), vocab - 1);
        for (int i = 0; i < len; i++) {
            out[off + i] = cur;
            cur = next[cur][(int) (mix(r * 1315423911L + i + seed) & 1)];
        }
        if (poisonRows.contains(r)) out[off] = vocab - 1;
    }

    @Override
    public void nextTrain(int[] tokens, int batch, int seqLen) {
        for (int b = 0; b < batch; b++) fillRow(row++, tokens, b * (seqLen + 1), seqLen + 1);
    }

    @Override
    public ValidationSet validation(int batch, int seqLen, int maxBatches) {
        List<int[]> batches = new ArrayList<>();
        List<String[]> domains = new ArrayList<>();
        for (int k = 0; k < Math.min(maxBatches, 2); k++) {
            int[] t = new int[batch * (seqLen + 1)];
            for (int b = 0; b < batch; b++) fillRow(1_000_000_000L + (long) k * batch + b, t, b * (seqLen + 1), seqLen + 1);
            batches.add(t);
            domains.add(new String[batch]);
        }
        long tokens = (long) batches.size() * batch * seqLen;
        return new ValidationSet(batches, tokens, tokens * 3 / 2, domains);
    }

    @Override public long position() { return row; }
    @Override public void seek(long position) { row = position; }
}
