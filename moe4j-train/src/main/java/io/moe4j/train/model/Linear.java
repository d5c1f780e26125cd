package io.moe4j.train.model;

import io.moe4j.kernel.gemm.Gemm;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * A bias-free linear layer over all B·T rows at once: {@code y = x·Wᵀ}, W stored (out, in) like nn.Linear (and
 * like a GGUF tensor {in, out}), so export needs no transpose. Holds no activations: the caller keeps x.
 *
 * <pre>
 *   forward   y (n, out) = x (n, in) · Wᵀ          gemm nt
 *   backward  dW (out, in) += dyᵀ · x               gemm tn
 *             dx (n, in)  (+)= dy · W               gemm nn
 * </pre>
 */
final class Linear {
    final Param w; // (out, in)
    final int in, out;

    Linear(Arena arena, String name, int out, int in) {
        this.w = new Param(arena, name, out, in);
        this.in = in;
        this.out = out;
    }

    /** y (n, out) = x (n, in)·Wᵀ, overwritten. */
    void forward(Gemm g, WorkerPool pool, int n, MemorySegment x, long xOff, MemorySegment y, long yOff) {
        g.nt(pool, n, out, in, x, xOff, in, w.data(), 0, in, y, yOff, out, false);
    }

    /** dW += dyᵀ·x; dx = dy·W, added to dx when {@code accumulate}, overwriting it otherwise. */
    void backward(Gemm g, WorkerPool pool, int n, MemorySegment x, long xOff, MemorySegment dy, long dyOff,
                  MemorySegment dx, long dxOff, boolean accumulate) {
        g.tn(pool, out, in, n, dy, dyOff, out, x, xOff, in, w.gradData(), 0, in, true);
        g.nn(pool, n, in, out, dy, dyOff, out, w.data(), 0, in, dx, dxOff, in, accumulate);
    }
}
