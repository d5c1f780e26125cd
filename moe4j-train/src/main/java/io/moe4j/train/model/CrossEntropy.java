package io.moe4j.train.model;

import io.moe4j.kernel.row.RowOps;
import io.moe4j.moe.NonFiniteException;
import io.moe4j.nn.F32;
import io.moe4j.parallel.WorkerPool;

import java.lang.foreign.MemorySegment;

/**
 * Mean next-token cross-entropy over rows of vocabulary logits, and its gradient written over the logits.
 * <pre>
 *   loss_r = logsumexp(z_r) − z_r[target_r]        L = (1/N) Σ_r loss_r
 *   ∂L/∂z_r = (softmax(z_r) − onehot(target_r)) / N
 * </pre>
 * logsumexp without a second pass of exps: after the max-shifted softmax, p[argmax] = 1/Σexp(z − max), so
 * {@code loss = (max − z_t) − log p[argmax]}; p[argmax] ≥ 1/V never underflows, unlike p[target].
 * Per-row losses are summed in row order in double, so the result does not depend on the thread count.
 */
final class CrossEntropy {
    private CrossEntropy() {}

    /**
     * Returns Σ_r loss_r over {@code rows} rows of {@code vocab} logits; the logits are overwritten by the
     * softmax, and, when {@code gradScale != 0}, by gradScale·(softmax − onehot).
     */
    static double run(RowOps ops, WorkerPool pool, int rows, int vocab, MemorySegment logits, int[] targets,
                      double[] rowLoss, float gradScale) {
        pool.parallelRanges(rows, 8, (from, to, w) -> {
            for (int r = from; r < to; r++) {
                long o = (long) r * vocab;
                float max = Float.NEGATIVE_INFINITY;
                int arg = 0;
                boolean finite = true;
                for (int j = 0; j < vocab; j++) {
                    float v = F32.get(logits, o + j);
                    if (!Float.isFinite(v)) finite = false;
                    if (v > max) {
                        max = v;
                        arg = j;
                    }
                }
                if (!finite) throw new NonFiniteException("NaN or Inf in output logits (row " + r + ")");
                float zt = F32.get(logits, o + targets[r]);
                ops.softmax(vocab, logits, o);
                rowLoss[r] = ((double) max - zt) - Math.log(F32.get(logits, o + arg));
                if (gradScale != 0f) {
                    F32.set(logits, o + targets[r], F32.get(logits, o + targets[r]) - 1f);
                    ops.scale(vocab, gradScale, logits, o);
                }
            }
        });
        double sum = 0;
        for (int r = 0; r < rows; r++) sum += rowLoss[r];
        return sum;
    }
}
