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
    // The update loop: tasks over the chunks of all parameters, and this step's coefficients.
    private final int[] taskParam;        // (tasks) parameter index
    private final long[] taskFrom;        // (tasks) first element of the chunk
    private final int[] inlineParams;     // parameters of one chunk, updated by the calling thread
    private final float[] keepI, stepSizeI; // per param: decay factor and step size of the current step
    private final float b1, b2, omb1, omb2, eps;
    private float gradScale, bc2s;
    private final WorkerPool.Body updateBody = this::update;

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
        // Parameters of one chunk are updated by the calling thread (as they always were: callers may keep small
        // models in a confined arena); the chunks of the larger ones are the tasks of one parallel loop.
        int tasks = 0, small = 0;
        for (Param p : this.params) {
            if (p.numel() <= CHUNK) small++;
            else tasks += (int) ((p.numel() + CHUNK - 1) / CHUNK);
        }
        this.taskParam = new int[tasks];
        this.taskFrom = new long[tasks];
        this.inlineParams = new int[small];
        for (int i = 0, t = 0, q = 0; i < n; i++) {
            long numel = this.params.get(i).numel();
            if (numel <= CHUNK) {
                inlineParams[q++] = i;
                continue;
            }
            for (long from = 0; from < numel; from += CHUNK, t++) {
                taskParam[t] = i;
                taskFrom[t] = from;
            }
        }
        this.keepI = new float[n];
        this.stepSizeI = new float[n];
        this.b1 = (float) config.beta1();
        this.b2 = (float) config.beta2();
        this.omb1 = (float) (1 - config.beta1());
        this.omb2 = (float) (1 - config.beta2());
        this.eps = (float) config.eps();
    }

    /**
     * Whether weight decay applies: matrices only. Norm gains and 1-D vectors (biases, gains, scalars) are not
     * decayed — shrinking a norm gain towards 0 fights the normalisation it exists for.
     */
    public static boolean decays(Param p) {
        return p.value().rank() >= 2 && !p.name().toLowerCase(java.util.Locale.ROOT).contains("norm");
    }

    public List<Param> params() { return params; }
    /** The loops the updates run in (Vector API or the scalar reference). */
    public OptimKernels kernels() { return kernels; }
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
        double bc1 = 1 - Math.pow(config.beta1(), step);
        for (int i = 0; i < params.size(); i++) {
            double lrI = lr * lrMult[i];
            keepI[i] = decay[i] ? (float) (1 - lrI * config.weightDecay()) : 1f;
            stepSizeI[i] = (float) (lrI / bc1);
        }
        this.gradScale = gradScale;
        this.bc2s = (float) Math.sqrt(1 - Math.pow(config.beta2(), step));
        // One parallel loop over the chunks of all parameters: a model has dozens of small parameters, and one
        // pool hand-off per parameter cost more than their updates (tiny model on a loaded machine).
        for (int i : inlineParams) update(i, 0, params.get(i).numel());
        if (taskParam.length > 0) pool.parallelFor(taskParam.length, updateBody);
    }

    /** Task t: chunk [taskFrom[t], +CHUNK) of parameter taskParam[t]. */
    private void update(int t, int worker) {
        int i = taskParam[t];
        update(i, taskFrom[t], Math.min(params.get(i).numel(), taskFrom[t] + CHUNK));
    }

    private void update(int i, long from, long to) {
        Param p = params.get(i);
        kernels.adamw(p.data(), p.gradData(), m[i], v[i], from, to, gradScale, keepI[i], b1, omb1, b2, omb2, bc2s, eps,
                stepSizeI[i]);
    }
}
