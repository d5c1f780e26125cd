package io.moe4j.train.model;

import io.moe4j.kernel.row.RowOps;
import io.moe4j.nn.F32;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * RMSNorm with a learned weight over contiguous rows of {@code n} floats: {@code out = x·rstd ⊙ w}, rstd saved per
 * row for the backward (RowOps rmsnorm / rmsnormBackward). Used for the block norms (n = d, one row per token)
 * and the per-head q/k norms (n = headDim, one row per token and head).
 *
 * <p>The weight gradient is a sum over all rows. To keep it bit-identical for any thread count, rows are cut into
 * fixed chunks of {@link #CHUNK} (independent of the pool), each chunk accumulates into its own partial row, and
 * the partials are added to the gradient in chunk order. Costs chunks·n floats of scratch.
 */
final class RmsNorm {
    static final int CHUNK = 32;

    final Param w;   // (n)
    final int n;
    final float eps;
    private MemorySegment partial; // (chunks, n) per-chunk weight gradients
    private int partialRows;

    RmsNorm(Arena arena, String name, int n, double eps) {
        this.w = new Param(arena, name, n);
        this.n = n;
        this.eps = (float) eps;
    }

    /** Sizes the weight-gradient scratch for up to {@code rows} rows (activation arena). */
    void allocate(Arena arena, int rows) {
        partial = F32.alloc(arena, (long) chunks(rows) * n);
        partialRows = rows;
    }

    private static int chunks(int rows) { return (rows + CHUNK - 1) / CHUNK; }

    /** out row r = rmsnorm(x row r); rstd[r] saved. out may alias x. */
    void forward(RowOps ops, WorkerPool pool, int rows, MemorySegment x, long xOff, MemorySegment out, long outOff,
                 float[] rstd) {
        MemorySegment wd = w.data();
        pool.parallelRanges(rows, CHUNK, (from, to, worker) -> {
            for (int r = from; r < to; r++) {
                long o = (long) r * n;
                rstd[r] = ops.rmsnorm(n, x, xOff + o, wd, 0, eps, out, outOff + o);
            }
        });
    }

    /** dx += ∂L/∂x given dout = ∂L/∂out; w.grad += Σ_rows dout ⊙ x·rstd (fixed chunk order). */
    void backward(RowOps ops, WorkerPool pool, int rows, MemorySegment dout, long doutOff, MemorySegment x, long xOff,
                  float[] rstd, MemorySegment dx, long dxOff) {
        if (rows > partialRows) throw new IllegalStateException(w.name() + ": scratch sized for " + partialRows + " rows");
        int chunks = chunks(rows);
        F32.zero(partial, 0, (long) chunks * n);
        MemorySegment wd = w.data();
        pool.parallelFor(chunks, (c, worker) -> {
            int from = c * CHUNK, to = Math.min(rows, from + CHUNK);
            for (int r = from; r < to; r++) {
                long o = (long) r * n;
                ops.rmsnormBackward(n, dout, doutOff + o, x, xOff + o, wd, 0, rstd[r], dx, dxOff + o,
                        partial, (long) c * n);
            }
        });
        MemorySegment g = w.gradData();
        for (int c = 0; c < chunks; c++) ops.axpy(n, 1f, partial, (long) c * n, g, 0);
    }
}
