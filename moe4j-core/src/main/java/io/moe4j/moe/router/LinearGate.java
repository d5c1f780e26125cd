package io.moe4j.moe.router;

import io.moe4j.kernel.Kernels;
import io.moe4j.nn.CounterRng;
import io.moe4j.nn.F32;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * The bias-free linear router map {@code z = x̃·W_rᵀ} with {@code W_r} stored [E, d] (PyTorch layout), in F32
 * (spec §3.10), and its backward {@code dW_r += dzᵀ·x̃}, {@code dx += (dz·W_r) ⊙ u}.
 *
 * <p>Jitter (spec §3.8, HF Switch / MegaBlocks semantics): in training, {@code x̃ = x ⊙ u} with
 * {@code u ~ U[1−ε, 1+ε]} per element, applied to the router input only (the experts see x). Off when ε = 0 or
 * not training, in which case x̃ = x and no copy is made.
 */
public final class LinearGate {
    private final Kernels kernels;
    private final WorkerPool pool;
    private final int d, e;
    private final Param weight; // (E, d)
    private final double jitter;
    private final CounterRng rng;
    private final MemorySegment xJit; // (maxT, d) jittered input, when jitter > 0
    private final MemorySegment uJit; // (maxT, d) the multipliers u
    private final MemorySegment dxJit; // (maxT, d)
    private boolean jittered;         // the last forward used x̃

    public LinearGate(Arena arena, String name, int d, int e, Kernels kernels, WorkerPool pool) {
        this(arena, name, d, e, kernels, pool, 0, 0, 0);
    }

    public LinearGate(Arena arena, String name, int d, int e, Kernels kernels, WorkerPool pool,
                      double jitter, long seed, int maxTokens) {
        this.kernels = kernels;
        this.pool = pool;
        this.d = d;
        this.e = e;
        this.weight = new Param(arena, name, e, d);
        this.jitter = jitter;
        this.rng = new CounterRng(seed ^ 0x6a09e667f3bcc908L);
        long n = jitter > 0 ? (long) maxTokens * d : 1;
        this.xJit = jitter > 0 ? F32.alloc(arena, n) : null;
        this.uJit = jitter > 0 ? F32.alloc(arena, n) : null;
        this.dxJit = jitter > 0 ? F32.alloc(arena, n) : null;
    }

    public Param weight() { return weight; }
    public CounterRng rng() { return rng; }

    /** logits (T×E, heap) = x̃ (T×d) · W_rᵀ; jitter only when training. */
    public void forward(MemorySegment x, long xOff, int t, float[] logits, boolean training) {
        jittered = training && jitter > 0;
        MemorySegment in = x;
        long inOff = xOff;
        if (jittered) {
            long draw = rng.next();
            for (long i = 0; i < (long) t * d; i++) {
                float u = (float) (1 - jitter + 2 * jitter * rng.uniform(draw, i));
                F32.set(uJit, i, u);
                F32.set(xJit, i, F32.get(x, xOff + i) * u);
            }
            in = xJit;
            inOff = 0;
        }
        kernels.gemm().nt(pool, t, e, d, in, inOff, d, weight.data(), 0, d, MemorySegment.ofArray(logits), 0, e, false);
    }

    /** Without jitter (inference and routers that never jitter). */
    public void forward(MemorySegment x, long xOff, int t, float[] logits) {
        forward(x, xOff, t, logits, false);
    }

    /** dW_r += dzᵀ·x̃ and dx += (dz·W_r) ⊙ u, dz (T×E, heap). x is the forward's input. */
    public void backward(MemorySegment x, long xOff, int t, float[] dLogits, MemorySegment dx, long dxOff) {
        MemorySegment dz = MemorySegment.ofArray(dLogits);
        if (!jittered) {
            kernels.gemm().tn(pool, e, d, t, dz, 0, e, x, xOff, d, weight.gradData(), 0, d, true);
            kernels.gemm().nn(pool, t, d, e, dz, 0, e, weight.data(), 0, d, dx, dxOff, d, true);
            return;
        }
        kernels.gemm().tn(pool, e, d, t, dz, 0, e, xJit, 0, d, weight.gradData(), 0, d, true);
        kernels.gemm().nn(pool, t, d, e, dz, 0, e, weight.data(), 0, d, dxJit, 0, d, false);
        for (long i = 0; i < (long) t * d; i++) {
            F32.set(dx, dxOff + i, F32.get(dx, dxOff + i) + F32.get(dxJit, i) * F32.get(uJit, i));
        }
    }
}
