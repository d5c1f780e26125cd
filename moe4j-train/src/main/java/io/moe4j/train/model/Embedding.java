package io.moe4j.train.model;

import io.moe4j.kernel.row.RowOps;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Token embedding {@code tok_embd} (V, d): forward gathers row token[i]; backward scatter-adds the row gradients.
 * The scatter runs sequentially in row order: a token that occurs twice adds twice, and the order (hence the
 * rounding) does not depend on the thread count. It is O(n·d), negligible next to the GEMMs.
 */
final class Embedding {
    final Param w; // (V, d)
    final int vocab, d;

    Embedding(Arena arena, String name, int vocab, int d) {
        this.w = new Param(arena, name, vocab, d);
        this.vocab = vocab;
        this.d = d;
    }

    /** out row i (n, d) = W[tokens[i]]. */
    void forward(RowOps ops, WorkerPool pool, int n, int[] tokens, MemorySegment out, long outOff) {
        MemorySegment wd = w.data();
        pool.parallelRanges(n, 64, (from, to, worker) ->
                ops.gatherRows(to - from, d, wd, 0, d, tokens, from, out, outOff + (long) from * d, d));
    }

    /** W.grad[tokens[i]] += dout row i, in row order. */
    void backward(RowOps ops, int n, int[] tokens, MemorySegment dout, long doutOff) {
        ops.scatterAddRows(n, d, dout, doutOff, d, tokens, 0, null, 0, w.gradData(), 0, d);
    }
}
