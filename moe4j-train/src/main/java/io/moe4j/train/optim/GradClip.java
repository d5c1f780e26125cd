package io.moe4j.train.optim;

import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;

import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * Global-norm gradient clipping (as torch.nn.utils.clip_grad_norm_): g ← g · min(1, maxNorm / (‖g‖₂ + 1e-6)), where
 * ‖g‖₂ runs over all parameters' gradients at once.
 *
 * <p>The norm is summed in double over fixed chunks in a fixed order, so it is bit-identical whatever the thread
 * count (the pool only decides which thread sums which chunk) and vector width (each chunk sums in the order
 * {@link OptimKernels#sumSquares} defines).
 */
public final class GradClip {
    private static final int CHUNK = 1 << 16;

    private GradClip() {}

    /** ‖g‖₂ over all gradients (NaN or +Inf when some gradient is not finite). */
    public static double globalNorm(List<Param> params, WorkerPool pool) {
        // One parallel loop over the chunks of all parameters (one pool hand-off, not one per parameter); the sum
        // is then taken per parameter over its chunks in order, then over parameters in order.
        int n = params.size(), tasks = 0;
        int[] first = new int[n + 1]; // (params + 1) first task of each parameter
        for (int i = 0; i < n; i++) {
            first[i] = tasks;
            tasks += (int) ((params.get(i).numel() + CHUNK - 1) / CHUNK);
        }
        first[n] = tasks;
        int[] taskParam = new int[tasks];
        for (int i = 0; i < n; i++) java.util.Arrays.fill(taskParam, first[i], first[i + 1], i);
        double[] partial = new double[tasks];
        OptimKernels k = OptimKernels.get();
        // Parameters of one chunk are summed by the calling thread (callers may keep small models in a confined
        // arena); the chunks of the larger ones are the tasks of the parallel loop.
        int[] big = new int[tasks];
        int bigCount = 0;
        for (int i = 0; i < n; i++) {
            Param p = params.get(i);
            if (first[i + 1] - first[i] == 1) partial[first[i]] = k.sumSquares(p.gradData(), 0, p.numel());
            else for (int t = first[i]; t < first[i + 1]; t++) big[bigCount++] = t;
        }
        if (bigCount > 0) {
            pool.parallelFor(bigCount, (b, w) -> {
                int t = big[b];
                Param p = params.get(taskParam[t]);
                long from = (long) (t - first[taskParam[t]]) * CHUNK, to = Math.min(p.numel(), from + CHUNK);
                partial[t] = k.sumSquares(p.gradData(), from, to);
            });
        }
        double sum = 0;
        for (int i = 0; i < n; i++) {
            double s = 0;
            for (int t = first[i]; t < first[i + 1]; t++) s += partial[t];
            sum += s;
        }
        return Math.sqrt(sum);
    }

    /**
     * Scales the gradients so that their global norm is at most {@code maxNorm}; returns the norm before clipping.
     * {@code maxNorm <= 0} only measures. Non-finite norms are returned without touching the gradients.
     */
    public static double clip(List<Param> params, double maxNorm, WorkerPool pool) {
        return clip(params, maxNorm, globalNorm(params, pool), pool);
    }

    /** As {@link #clip(List, double, WorkerPool)} with the norm already measured ({@link #globalNorm}) since the
     *  gradients last changed: saves the second pass over every gradient. */
    public static double clip(List<Param> params, double maxNorm, double norm, WorkerPool pool) {
        float scale = factor(maxNorm, norm);
        if (scale != 1f) {
            for (Param p : params) scale(p.gradData(), p.numel(), scale, pool);
        }
        return norm;
    }

    /**
     * The factor clipping multiplies the gradients by: {@code maxNorm / (norm + 1e-6)} when the norm is finite and
     * above {@code maxNorm > 0}, else 1. {@link AdamW#step(double, float)} takes it to clip inside the update.
     */
    public static float factor(double maxNorm, double norm) {
        return maxNorm > 0 && Double.isFinite(norm) && norm > maxNorm ? (float) (maxNorm / (norm + 1e-6)) : 1f;
    }

    private static void scale(MemorySegment g, long n, float scale, WorkerPool pool) {
        int chunks = (int) ((n + CHUNK - 1) / CHUNK);
        pool.parallelFor(chunks, (c, w) -> {
            long from = (long) c * CHUNK, to = Math.min(n, from + CHUNK);
            OptimKernels.get().scale(g, from, to, scale);
        });
    }
}
