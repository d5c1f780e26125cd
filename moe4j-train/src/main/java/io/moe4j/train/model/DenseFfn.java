package io.moe4j.train.model;

import io.moe4j.kernel.Kernels;
import io.moe4j.kernel.gemm.Gemm;
import io.moe4j.kernel.row.RowOps;
import io.moe4j.nn.F32;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * The dense SwiGLU FFN of the first {@code denseLayers} blocks (and of a dense baseline):
 * <pre>
 *   h = x·Wgᵀ, u = x·Wuᵀ (N, f);  a = silu(h) ⊙ u;  y = a·Wdᵀ (N, d)
 *   backward: dWd += dyᵀ·a, dA = dy·Wd;  dH, dU = swiglu'(h, u, dA);  dWg += dHᵀ·x, dWu += dUᵀ·x;  dx += dH·Wg + dU·Wu
 * </pre>
 * Weights (f, d), (f, d), (d, f) as nn.Linear. h, u, a are kept from the forward (the backward needs all three).
 */
final class DenseFfn {
    private static final int ROWS = 16;
    private final Kernels kernels;
    private final WorkerPool pool;
    final Linear gate, up, down;
    private final int f;
    private MemorySegment h, u, a; // (N, f)

    DenseFfn(Arena arena, String name, int d, int f, Kernels kernels, WorkerPool pool) {
        this.kernels = kernels;
        this.pool = pool;
        this.f = f;
        this.gate = new Linear(arena, name + ".gate", f, d);
        this.up = new Linear(arena, name + ".up", f, d);
        this.down = new Linear(arena, name + ".down", d, f);
    }

    List<Param> params() { return List.of(gate.w, up.w, down.w); }

    void allocate(Arena arena, int rows) {
        h = F32.alloc(arena, (long) rows * f);
        u = F32.alloc(arena, (long) rows * f);
        a = F32.alloc(arena, (long) rows * f);
    }

    /** y (n, d) = FFN(x), overwritten. */
    void forward(int n, MemorySegment x, long xOff, MemorySegment y, long yOff) {
        Gemm g = kernels.gemm();
        RowOps ops = kernels.rows();
        gate.forward(g, pool, n, x, xOff, h, 0);
        up.forward(g, pool, n, x, xOff, u, 0);
        pool.parallelRanges(n, ROWS, (from, to, w) -> {
            long o = (long) from * f;
            ops.swiglu((to - from) * f, h, o, u, o, a, o);
        });
        down.forward(g, pool, n, a, 0, y, yOff);
    }

    /** dx += ∂L/∂x given dy; weight gradients accumulated. */
    void backward(int n, MemorySegment x, long xOff, MemorySegment dy, long dyOff, MemorySegment dx, long dxOff,
                  Scratch s) {
        Gemm g = kernels.gemm();
        RowOps ops = kernels.rows();
        down.backward(g, pool, n, a, 0, dy, dyOff, s.dA, 0, false);
        pool.parallelRanges(n, ROWS, (from, to, w) -> {
            long o = (long) from * f;
            ops.swigluBackward((to - from) * f, h, o, u, o, s.dA, o, s.dH, o, s.dU, o);
        });
        gate.backward(g, pool, n, x, xOff, s.dH, 0, dx, dxOff, true);
        up.backward(g, pool, n, x, xOff, s.dU, 0, dx, dxOff, true);
    }
}
