package io.moe4j.train.optim;

import io.moe4j.nn.F32;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * AdamW (Loshchilov &amp; Hutter) with decoupled weight decay and bias correction, in the operation order of
 * torch.optim.AdamW's single-tensor path (float32 arithmetic, so the two agree to rounding):
 * <pre>
 *   p ← p · (1 − lr·λ)                       (only for decayed params: rank ≥ 2 and not a norm)
 *   m ← β1·m + (1 − β1)·g
 *   v ← β2·v + (1 − β2)·g²
 *   p ← p − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + ε)
 * </pre>
 * with lr = scheduled LR × the parameter's group multiplier ({@link AdamWConfig#lrMultiplier}).
 *
 * <p>Moments are off-heap F32 buffers allocated once, one pair per parameter, exposed for checkpoints. Large
 * parameters are updated in fixed chunks over the worker pool (elementwise, so bit-identical for any thread count),
 * by {@link OptimKernels} (Vector API, bit-identical to the scalar loop).
 */
public final class AdamW {
    private static final int CHUNK = 1 << 15;

    private final List<Param> params;
    private final AdamWConfig config;
    private final WorkerPool pool;
    private final MemorySegment[] m;      // per param: (numel) first moments
    private final MemorySegment[] v;      // per param: (numel) second moments
    private final boolean[] decay;        // per param: weight decay applies
    private final double[] lrMult;        // per param: LR multiplier of its group
    private long step;                    // steps taken (t in the bias correction)
    private final OptimKernels kernels;

    public AdamW(List<Param> params, AdamWConfig config, Arena arena, WorkerPool pool) {
        this(params, config, arena, pool, OptimKernels.get());
    }

    /** With given loop kernels (tests: the scalar reference next to the Vector API path). */
    public AdamW(List<Param> params, AdamWConfig config, Arena arena, WorkerPool pool, OptimKernels kernels) {
        this.kernels = kernels;
        this.params = List.copyOf(params);
        this.config = config;
        this.pool = pool;
        int n = this.params.size();
        this.m = new MemorySegment[n];
        this.v = new MemorySegment[n];
        this.decay = new boolean[n];
        this.lrMult = new double[n];
        for (int i = 0; i < n; i++) {
            Param p = this.params.get(i);
            m[i] = F32.alloc(arena, p.numel());
            v[i] = F32.alloc(arena, p.numel());
            decay[i] = decays(p);
            lrMult[i] = config.lrMultiplier(p.name());
        }
    }

    /**
     * Whether weight decay applies: matrices only. Norm gains and 1-D vectors (biases, gains, scalars) are not
     * decayed — shrinking a norm gain towards 0 fights the normalisation it exists for.
     */
    public static boolean decays(Param p) {
        return p.value().rank() >= 2 && !p.name().toLowerCase(java.util.Locale.ROOT).contains("norm");
    }

    public List<Param> params() { return params; }
    public AdamWConfig config() { return config; }
    /** Steps taken so far (the bias-correction t of the last step). */
    public long stepCount() { return step; }
    public void setStepCount(long t) { step = t; }
    /** First moments of parameter i (numel F32, same layout as the parameter). */
    public MemorySegment moment1(int i) { return m[i]; }
    /** Second moments of parameter i. */
    public MemorySegment moment2(int i) { return v[i]; }
    public boolean decayed(int i) { return decay[i]; }
    public double lrMultiplier(int i) { return lrMult[i]; }

    /** One update of every parameter from its current gradient at learning rate {@code lr}. */
    public void step(double lr) {
        step(lr, 1f);
    }

    /**
     * One update from the gradients multiplied by {@code gradScale} — the factor of {@link GradClip#factor}, so
     * that clipping costs no pass of its own over the gradients (which are left unscaled). Same bits as
     * {@link GradClip#clip} followed by {@link #step(double)}.
     */
    public void step(double lr, float gradScale) {
        step++;
        float b1 = (float) config.beta1(), b2 = (float) config.beta2();
        float omb1 = (float) (1 - config.beta1()), omb2 = (float) (1 - config.beta2());
        float eps = (float) config.eps();
        double bc1 = 1 - Math.pow(config.beta1(), step);
        double bc2sqrt = Math.sqrt(1 - Math.pow(config.beta2(), step));
        for (int i = 0; i < params.size(); i++) {
            Param p = params.get(i);
            double lrI = lr * lrMult[i];
            float keep = decay[i] ? (float) (1 - lrI * config.weightDecay()) : 1f;
            float stepSize = (float) (lrI / bc1);
            float bc2s = (float) bc2sqrt;
            MemorySegment w = p.data(), g = p.gradData(), mi = m[i], vi = v[i];
            long n = p.numel();
            int chunks = (int) ((n + CHUNK - 1) / CHUNK);
            pool.parallelFor(chunks, (c, worker) -> {
                long from = (long) c * CHUNK, to = Math.min(n, from + CHUNK);
                kernels.adamw(w, g, mi, vi, from, to, gradScale, keep, b1, omb1, b2, omb2, bc2s, eps, stepSize);
            });
        }
    }
}
