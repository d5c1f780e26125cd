package io.moe4j.moe.variant;

import io.moe4j.kernel.Kernels;
import io.moe4j.kernel.row.RowOps;
import io.moe4j.moe.ExpertBank;
import io.moe4j.moe.router.LinearGate;
import io.moe4j.moe.router.RouterMath;
import io.moe4j.nn.F32;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Multi-gate Mixture-of-Experts (spec §4.19; Ma et al. KDD 2018, reference DeepCTR {@code MMOE}): n experts shared
 * by K tasks, one bias-free softmax gate per task, every expert active.
 *
 * <pre>
 *   O_i  = f_i(x)                       (T, h) per expert, computed once for all tasks; h = expertOutput (d → f → h)
 *   g^k  = softmax(x·W_{g,k}ᵀ)          (T, n) per task, W_{g,k} (n, d)
 *   y_k  = Σ_i g^k_i · O_i              (T, h) per task — the input of task k's tower (the caller's)
 * </pre>
 * Outputs are task-major: y is (K, T, h) with task k's rows at {@code yOff + k·T·h}; the backward takes dy in the
 * same layout, one gradient per task output (a task without labels in this batch passes zeros and its gate gets
 * no gradient). Backward: {@code dO_i = Σ_k g^k_i·dy_k} into the experts; {@code dg^k_i = ⟨dy_k, O_i⟩} through
 * task k's softmax into its own gate only.
 *
 * <p>Contract: {@link #backward} uses the activations of the most recent {@link #forward} and its unchanged input.
 * Preallocated for {@code maxTokens}; the hot path allocates nothing. Non-goals: towers, heads, task losses and
 * their weights λ_k, gate MLPs before the softmax.
 */
public final class MmoeLayer {
    private static final int TOKEN_CHUNK = 8;

    private final MmoeConfig config;
    private final Kernels kernels;
    private final WorkerPool pool;
    private final int d, h, n, tasks;   // h: expert output width
    private final ExpertBank experts;  // n experts over n·maxT rows
    private final DenseExperts dense;
    private final LinearGate[] gates;  // (K) each W_{g,k} (n, d)

    private final float[][] logits;    // (K)(maxT·n)
    private final float[][] probs;     // (K)(maxT·n)
    private final float[][] dProbs;    // (K)(maxT·n)
    private final float[][] dLogits;   // (K)(maxT·n)
    private final MemorySegment dOut;  // (n·maxT, h) gradient of the expert outputs, expert-major
    private int tokens;

    public MmoeLayer(MmoeConfig config, Arena arena, Kernels kernels, WorkerPool pool) {
        this.config = config;
        this.kernels = kernels;
        this.pool = pool;
        this.d = config.dModel();
        this.h = config.expertOutput();
        this.n = config.numExperts();
        this.tasks = config.numTasks();
        int maxT = config.maxTokens();
        String prefix = "layers." + config.layerIndex() + ".mmoe";
        this.experts = new ExpertBank(arena, prefix + ".experts", config.expertType(), n, d, config.expertHidden(), d,
                h, n * maxT, kernels, pool);
        this.dense = new DenseExperts(arena, experts, n, d, maxT, kernels, pool);
        this.gates = new LinearGate[tasks];
        for (int k = 0; k < tasks; k++) {
            gates[k] = new LinearGate(arena, prefix + ".gates." + k + ".weight", d, n, kernels, pool);
        }
        this.logits = new float[tasks][maxT * n];
        this.probs = new float[tasks][maxT * n];
        this.dProbs = new float[tasks][maxT * n];
        this.dLogits = new float[tasks][maxT * n];
        this.dOut = F32.alloc(arena, (long) n * maxT * h);
    }

    public MmoeConfig config() { return config; }
    public ExpertBank experts() { return experts; }
    public LinearGate gate(int task) { return gates[task]; }
    public int numTasks() { return tasks; }
    /** Task k's gate probabilities (T·n, row-major) of the last forward. */
    public float[] gateProbs(int task) { return probs[task]; }
    /** Float offset of task k's output rows in the (K, T, h) output of a forward over {@code t} tokens. */
    public long taskOffset(int task, int t) { return (long) task * t * h; }

    /** h, the width of each task's output rows (the experts' output width). */
    public int outputWidth() { return h; }

    public List<Param> params() {
        List<Param> ps = new ArrayList<>(experts.params());
        for (LinearGate g : gates) ps.add(g.weight());
        return ps;
    }

    /** N(0, std²) for experts and gates, down projections scaled by {@code downScale}. */
    public void init(SplittableRandom rng, double std, double downScale) {
        for (Param p : params()) p.initNormal(rng, p.name().endsWith(".down") ? std * downScale : std);
    }

    /** y (K, T, h) = the K task mixtures of x (T, d); overwritten. */
    public void forward(MemorySegment x, long xOff, int t, MemorySegment y, long yOff) {
        if (t < 0 || t > config.maxTokens()) {
            throw new IllegalArgumentException("batch of " + t + " tokens exceeds mmoe.maxTokens = " + config.maxTokens());
        }
        tokens = t;
        for (int k = 0; k < tasks; k++) {
            gates[k].forward(x, xOff, t, logits[k]);
            RouterMath.requireFinite(logits[k], t, n, config.layerIndex());
            for (int i = 0; i < t; i++) RouterMath.softmax(logits[k], probs[k], i * n, n);
        }
        dense.forward(x, xOff, t);
        MemorySegment out = dense.output();
        RowOps ops = kernels.rows();
        pool.parallelRanges(t, TOKEN_CHUNK, (from, to, w) -> {
            for (int i = from; i < to; i++) {
                for (int k = 0; k < tasks; k++) {
                    long yo = yOff + taskOffset(k, t) + (long) i * h;
                    F32.zero(y, yo, h);
                    for (int j = 0; j < n; j++) ops.axpy(h, probs[k][i * n + j], out, dense.offset(j, i), y, yo);
                }
            }
        });
    }

    /**
     * Backward of the last forward: dy (K, T, h) → dx (T, d) accumulated (+=); expert and gate gradients
     * accumulated.
     */
    public void backward(MemorySegment x, long xOff, MemorySegment dy, long dyOff, MemorySegment dx, long dxOff) {
        int t = tokens;
        MemorySegment out = dense.output();
        RowOps ops = kernels.rows();
        pool.parallelRanges(t, TOKEN_CHUNK, (from, to, w) -> {
            for (int i = from; i < to; i++) {
                for (int j = 0; j < n; j++) F32.zero(dOut, dense.offset(j, i), h);
                for (int k = 0; k < tasks; k++) {
                    long dyo = dyOff + taskOffset(k, t) + (long) i * h;
                    float[] g = probs[k], dg = dProbs[k], dz = dLogits[k];
                    for (int j = 0; j < n; j++) {
                        long o = dense.offset(j, i);
                        dg[i * n + j] = ops.dot(h, dy, dyo, out, o);
                        ops.axpy(h, g[i * n + j], dy, dyo, dOut, o);
                        dz[i * n + j] = 0f;
                    }
                    RouterMath.softmaxBackward(g, dg, dz, i * n, n);
                }
            }
        });
        for (int k = 0; k < tasks; k++) gates[k].backward(x, xOff, t, dLogits[k], dx, dxOff);
        dense.backward(dOut, 0, dx, dxOff);
    }
}
