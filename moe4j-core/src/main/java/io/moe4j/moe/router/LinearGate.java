package io.moe4j.moe.router;

import io.moe4j.kernel.Kernels;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * The bias-free linear router map {@code z = x·W_rᵀ} with {@code W_r} stored [E, d] (PyTorch layout), in F32
 * (spec §3.10), and its backward {@code dW_r += dzᵀ·x}, {@code dx += dz·W_r}.
 */
public final class LinearGate {
    private final Kernels kernels;
    private final WorkerPool pool;
    private final int d, e;
    private final Param weight; // (E, d)

    public LinearGate(Arena arena, String name, int d, int e, Kernels kernels, WorkerPool pool) {
        this.kernels = kernels;
        this.pool = pool;
        this.d = d;
        this.e = e;
        this.weight = new Param(arena, name, e, d);
    }

    public Param weight() { return weight; }

    /** logits (T×E, heap) = x (T×d) · W_rᵀ. */
    public void forward(MemorySegment x, long xOff, int t, float[] logits) {
        kernels.gemm().nt(pool, t, e, d, x, xOff, d, weight.data(), 0, d, MemorySegment.ofArray(logits), 0, e, false);
    }

    /** dW_r += dzᵀ·x and dx += dz·W_r, dz (T×E, heap). */
    public void backward(MemorySegment x, long xOff, int t, float[] dLogits, MemorySegment dx, long dxOff) {
        MemorySegment dz = MemorySegment.ofArray(dLogits);
        kernels.gemm().tn(pool, e, d, t, dz, 0, e, x, xOff, d, weight.gradData(), 0, d, true);
        kernels.gemm().nn(pool, t, d, e, dz, 0, e, weight.data(), 0, d, dx, dxOff, d, true);
    }
}
