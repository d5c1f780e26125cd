package io.moe4j.moe;

import io.moe4j.kernel.row.RowOps;
import io.moe4j.nn.Param;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * MoE++'s zero-computation experts (spec §4.14): routed experts that the dispatch does not gather and the expert
 * GEMMs do not run. They follow the FFN experts in the routed expert list, as in the released code:
 * <pre>
 *   ids:  [FFN × nFfn] [Constant × nConst] [Copy × nCopy] [Zero × nZero]
 *   Zero:      out = 0                                   no parameters
 *   Copy:      out = u                                   no parameters
 *   Constant:  out = α0·u + α1·v_c,  α = softmax(W_c·u)   W_c: (nConst, 2, d), v: (nConst, d)
 * </pre>
 * u is the expert input (x, or k·x under MoE++'s input scaling). Each costs O(d) per assignment, so the layer's
 * combine evaluates it in place from the token's row — no permuted rows, no GEMM — and only α (2 floats per slot)
 * is kept for the backward. Non-goal: capacity or balance-loss weighting specific to these experts (the paper's
 * heterogeneous loss is unverified, spec §6 item 8).
 *
 * <p>Backward of one slot with combine weight w, g = w·dy_t:
 * <pre>
 *   ∂L/∂w = ⟨dy_t, out⟩
 *   Copy:      du = g
 *   Constant:  dα0 = ⟨g, u⟩, dα1 = ⟨g, v⟩,  dz0 = α0·α1·(dα0 − dα1) = −dz1     (softmax of two)
 *              du = α0·g + dz0·(W_c0 − W_c1),  dv += α1·g,  dW_c0 += dz0·u,  dW_c1 −= dz0·u
 *   dx += s·du   (u = s·x)
 * </pre>
 * The backward accumulates parameter gradients and is called sequentially over tokens, which keeps it
 * deterministic; it is O(T·k·d), small next to the expert GEMMs.
 */
public final class SpecialExperts {
    private final int first, nConst, nCopy, d;
    private final Param constGate;   // (nConst, 2, d) W_c, null when nConst = 0
    private final Param constValue;  // (nConst, d) v, null when nConst = 0
    private final float[] alpha;     // (maxT·slots, 2) α of each constant-expert slot, from the last forward

    /**
     * @param first first special expert id (= number of FFN experts)
     */
    public SpecialExperts(Arena arena, String prefix, int first, int nConst, int nCopy, int d, int maxSlots) {
        this.first = first;
        this.nConst = nConst;
        this.nCopy = nCopy;
        this.d = d;
        this.constGate = nConst > 0 ? new Param(arena, prefix + ".wg", nConst, 2, d) : null;
        this.constValue = nConst > 0 ? new Param(arena, prefix + ".value", nConst, d) : null;
        this.alpha = new float[nConst > 0 ? 2 * maxSlots : 0];
    }

    /** True if expert id e is one of these experts (not an FFN). */
    public boolean contains(int e) { return e >= first; }

    /** W_c of the constant experts (nConst, 2, d), or null. */
    public Param constantGate() { return constGate; }

    /** v of the constant experts (nConst, d), or null. MoE++ initialises it N(0, 1). */
    public Param constantValue() { return constValue; }

    public List<Param> params() { return nConst > 0 ? List.of(constGate, constValue) : List.of(); }

    /** y (d at yo) += w · Expert_e(s·x); remembers α for slot {@code slot}. Thread-safe across distinct slots. */
    void addOutput(RowOps ops, int e, int slot, MemorySegment x, long xo, float s, float w, MemorySegment y, long yo) {
        int c = e - first;
        if (c < nConst) {
            long go = (long) c * 2 * d;
            double z0 = s * ops.dot(d, constGate.data(), go, x, xo);
            double z1 = s * ops.dot(d, constGate.data(), go + d, x, xo);
            double m = Math.max(z0, z1), e0 = Math.exp(z0 - m), e1 = Math.exp(z1 - m);
            float a0 = (float) (e0 / (e0 + e1)), a1 = (float) (e1 / (e0 + e1));
            alpha[2 * slot] = a0;
            alpha[2 * slot + 1] = a1;
            ops.axpy(d, w * a0 * s, x, xo, y, yo);
            ops.axpy(d, w * a1, constValue.data(), (long) c * d, y, yo);
        } else if (c < nConst + nCopy) {
            ops.axpy(d, w * s, x, xo, y, yo);
        }
        // zero experts add nothing
    }

    /**
     * Backward of {@link #addOutput} for one slot: accumulates dx (d at dxo) and the parameter gradients, returns
     * ∂L/∂w. Not thread-safe (parameter gradients): call in a fixed order.
     */
    float backward(RowOps ops, int e, int slot, MemorySegment x, long xo, float s, float w,
                   MemorySegment dy, long dyo, MemorySegment dx, long dxo) {
        int c = e - first;
        if (c < nConst) {
            long go = (long) c * 2 * d, vo = (long) c * d;
            float a0 = alpha[2 * slot], a1 = alpha[2 * slot + 1];
            float dyx = ops.dot(d, dy, dyo, x, xo), dyv = ops.dot(d, dy, dyo, constValue.data(), vo);
            float dz0 = a0 * a1 * (w * s * dyx - w * dyv);
            ops.axpy(d, s * a0 * w, dy, dyo, dx, dxo);
            ops.axpy(d, s * dz0, constGate.data(), go, dx, dxo);
            ops.axpy(d, -s * dz0, constGate.data(), go + d, dx, dxo);
            ops.axpy(d, a1 * w, dy, dyo, constValue.gradData(), vo);
            ops.axpy(d, dz0 * s, x, xo, constGate.gradData(), go);
            ops.axpy(d, -dz0 * s, x, xo, constGate.gradData(), go + d);
            return a0 * s * dyx + a1 * dyv;
        } else if (c < nConst + nCopy) {
            ops.axpy(d, s * w, dy, dyo, dx, dxo);
            return s * ops.dot(d, dy, dyo, x, xo);
        }
        return 0f;
    }
}
