package io.moe4j.moe.router;

import io.moe4j.kernel.Kernels;
import io.moe4j.kernel.gemm.Gemm;
import io.moe4j.nn.F32;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * MoE++'s two-layer router map (spec §4.14, {@code moe_2layer_gate}): {@code z = tanh(x·W1ᵀ)·W2ᵀ}, no biases, in
 * F32 (§3.10). W1 is (h, d), W2 (E, h), PyTorch layout; MoE++ uses h = 8E.
 * <pre>
 *   forward:  H = tanh(X·W1ᵀ)  (T, h)            z = H·W2ᵀ  (T, E)
 *   backward: dW2 += dzᵀ·H     dP = (dz·W2) ⊙ (1 − H²)     dW1 += dPᵀ·X     dx += dP·W1
 * </pre>
 * H is kept from the forward (tanh' needs it); no router jitter (the reference has none).
 */
public final class TwoLayerGate {
    private final Kernels kernels;
    private final WorkerPool pool;
    private final int d, e, h;
    private final Param w1;            // (h, d)
    private final Param w2;            // (E, h)
    private final MemorySegment hid;   // (maxT, h) tanh(X·W1ᵀ)
    private final MemorySegment dHid;  // (maxT, h)

    public TwoLayerGate(Arena arena, String prefix, int d, int e, int hidden, int maxTokens, Kernels kernels,
                        WorkerPool pool) {
        this.kernels = kernels;
        this.pool = pool;
        this.d = d;
        this.e = e;
        this.h = hidden;
        this.w1 = new Param(arena, prefix + ".w1", hidden, d);
        this.w2 = new Param(arena, prefix + ".w2", e, hidden);
        this.hid = F32.alloc(arena, (long) maxTokens * hidden);
        this.dHid = F32.alloc(arena, (long) maxTokens * hidden);
    }

    public List<Param> params() { return List.of(w1, w2); }

    /** logits (T×E, heap) = tanh(x·W1ᵀ)·W2ᵀ. */
    public void forward(MemorySegment x, long xOff, int t, float[] logits) {
        Gemm g = kernels.gemm();
        g.nt(pool, t, h, d, x, xOff, d, w1.data(), 0, d, hid, 0, h, false);
        for (long i = 0; i < (long) t * h; i++) F32.set(hid, i, (float) Math.tanh(F32.get(hid, i)));
        g.nt(pool, t, e, h, hid, 0, h, w2.data(), 0, h, MemorySegment.ofArray(logits), 0, e, false);
    }

    /** Accumulates dW1, dW2 and dx from dz (T×E, heap). x is the forward's input. */
    public void backward(MemorySegment x, long xOff, int t, float[] dLogits, MemorySegment dx, long dxOff) {
        Gemm g = kernels.gemm();
        MemorySegment dz = MemorySegment.ofArray(dLogits);
        g.tn(pool, e, h, t, dz, 0, e, hid, 0, h, w2.gradData(), 0, h, true);
        g.nn(pool, t, h, e, dz, 0, e, w2.data(), 0, h, dHid, 0, h, false);
        for (long i = 0; i < (long) t * h; i++) {
            float a = F32.get(hid, i);
            F32.set(dHid, i, F32.get(dHid, i) * (1 - a * a));
        }
        g.tn(pool, h, d, t, dHid, 0, h, x, xOff, d, w1.gradData(), 0, d, true);
        g.nn(pool, t, d, h, dHid, 0, h, w1.data(), 0, d, dx, dxOff, d, true);
    }
}
