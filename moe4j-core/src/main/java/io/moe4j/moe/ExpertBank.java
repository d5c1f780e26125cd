package io.moe4j.moe;

import io.moe4j.kernel.Kernels;
import io.moe4j.kernel.gemm.Gemm;
import io.moe4j.kernel.row.ErfGelu;
import io.moe4j.kernel.row.RowOps;
import io.moe4j.nn.F32;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * E experts of one FFN type with stacked weights, run as a grouped GEMM over contiguous per-expert row blocks
 * (the bins of {@link Dispatch}). Also used with E = 1 over all tokens for the shared experts.
 *
 * <pre>
 *   gated (SwiGLU/GeGLU):  H = X·W_gateᵀ, U = X·W_upᵀ, A = act(H) ⊙ U, Y = A·W_downᵀ
 *   plain MLP:             H = X·W_upᵀ,                A = act(H),     Y = A·W_downᵀ
 *   W_gate, W_up: (E, f, d)    W_down: (E, d, f)      — PyTorch [out, in] layout per expert
 * </pre>
 * Backward (per expert block, all GEMMs accumulate into the weight gradients):
 * <pre>
 *   dA = dY·W_down           dW_down += dYᵀ·A
 *   gated: dH, dU from dA    plain: dH = act'(H) ⊙ dA
 *   dW_gate += dHᵀ·X         dW_up += dUᵀ·X (plain: dHᵀ·X)
 *   dX = dH·W_gate + dU·W_up (plain: dH·W_up)
 * </pre>
 * H, U and A are kept from the forward: the activation's backward needs H and U, the down projection's weight
 * gradient needs A. Recomputing A would save one (R, f) buffer for one more pass over it; memory is not the
 * constraint at the sizes this layer trains.
 *
 * <p>Factorised gate (Autonomy-of-Experts, spec §4.15): with a gate width {@code r < d} the gate projection reads a
 * separate input G (R, r) instead of X — the router's low-rank activation A_{t,e} = x_t·W_down,e, so
 * {@code W_gate,e} (f, r) is AoE's W_up,e and the full gate is W_up,e·W_down,e. Then H = G·W_gateᵀ,
 * {@code dW_gate += dHᵀ·G}, and the backward returns dG = dH·W_gate separately from dX = dU·W_up.
 */
public final class ExpertBank {
    private static final int ROW_CHUNK = 16;
    /**
     * Bins up to this many rows on average are run one expert per task (see {@link #splitByExpert}). Measured with
     * E=64, d=512, f=256 on 2 threads: one expert per task is 15–40 % faster at 8–32 rows per expert, and parallel
     * GEMMs win at 256+ rows (moe4j bench moe-layer; /tmp-style harness numbers in docs/BENCHMARKS.md).
     */
    private static final int SPLIT_MAX_ROWS = Integer.getInteger("moe4j.moe.splitMaxRows", 128);
    private static final String EXPERT_PARALLEL = System.getProperty("moe4j.moe.expertParallel", "auto");
    private String splitMode = EXPERT_PARALLEL;

    private final Kernels kernels;
    private final WorkerPool pool;
    private final ExpertType type;
    private final int e, d, f;
    private final int gw;     // gate input width: d, or the rank r of a factorised gate
    private final Param gate; // (E, f, gw), null for plain MLPs
    private final Param up;   // (E, f, d)
    private final Param down; // (E, d, f)

    // Activations, (maxRows, ·), preallocated.
    private final MemorySegment h, u, a, y;   // (R,f) (R,f) (R,f) (R,d)
    private final MemorySegment dA, dH, dU;   // (R,f)

    public ExpertBank(Arena arena, String prefix, ExpertType type, int e, int d, int f, int maxRows,
                      Kernels kernels, WorkerPool pool) {
        this(arena, prefix, type, e, d, f, d, maxRows, kernels, pool);
    }

    /** @param gateWidth width of the gate projection's input: d, or the rank of a factorised gate (gated types) */
    public ExpertBank(Arena arena, String prefix, ExpertType type, int e, int d, int f, int gateWidth, int maxRows,
                      Kernels kernels, WorkerPool pool) {
        if (gateWidth != d && !type.gated()) {
            throw new IllegalArgumentException(prefix + ": a factorised gate needs a gated expert type, got " + type);
        }
        this.kernels = kernels;
        this.pool = pool;
        this.type = type;
        this.e = e;
        this.d = d;
        this.f = f;
        this.gw = gateWidth;
        this.gate = type.gated() ? new Param(arena, prefix + ".gate", e, f, gateWidth) : null;
        this.up = new Param(arena, prefix + ".up", e, f, d);
        this.down = new Param(arena, prefix + ".down", e, d, f);
        long rf = (long) maxRows * f;
        this.h = F32.alloc(arena, rf);
        this.u = type.gated() ? F32.alloc(arena, rf) : null;
        this.a = F32.alloc(arena, rf);
        this.y = F32.alloc(arena, (long) maxRows * d);
        this.dA = F32.alloc(arena, rf);
        this.dH = F32.alloc(arena, rf);
        this.dU = type.gated() ? F32.alloc(arena, rf) : null;
    }

    public List<Param> params() {
        List<Param> ps = new ArrayList<>(3);
        if (gate != null) ps.add(gate);
        ps.add(up);
        ps.add(down);
        return ps;
    }

    /** "auto" (default), "on" (one expert per task) or "off" (parallel inside each GEMM); see {@link #splitByExpert}. */
    public void splitMode(String mode) {
        if (!java.util.List.of("auto", "on", "off").contains(mode)) {
            throw new IllegalArgumentException("split mode must be auto, on or off, got '" + mode + "'");
        }
        this.splitMode = mode;
    }

    public Param gate() { return gate; }
    public Param up() { return up; }
    public Param down() { return down; }
    public ExpertType type() { return type; }
    public int hidden() { return f; }
    /** Width of the gate projection's input (d, or the rank of a factorised gate). */
    public int gateWidth() { return gw; }

    /** Output rows Y (R, d) of the last forward. */
    public MemorySegment output() { return y; }

    /**
     * Forward over permuted rows: expert j owns rows [binStart[j], binStart[j+1]) of x (row stride d). Output in
     * {@link #output()}.
     */
    public void forward(MemorySegment x, long xOff, int[] binStart) {
        forward(x, xOff, x, xOff, binStart);
    }

    /** As {@link #forward(MemorySegment, long, int[])} with the gate projection reading gateX (R, gateWidth). */
    public void forward(MemorySegment x, long xOff, MemorySegment gateX, long gateXOff, int[] binStart) {
        if (splitByExpert(binStart)) {
            pool.parallelFor(e, (j, w) -> forwardExpert(j, x, xOff, gateX, gateXOff, binStart));
        } else {
            for (int j = 0; j < e; j++) forwardExpert(j, x, xOff, gateX, gateXOff, binStart);
        }
    }

    /**
     * Backward: dy (R, d) → dx (R, d) overwritten, weight gradients accumulated. x is the forward input.
     */
    public void backward(MemorySegment x, long xOff, int[] binStart, MemorySegment dy, long dyOff,
                         MemorySegment dx, long dxOff) {
        backward(x, xOff, x, xOff, binStart, dy, dyOff, dx, dxOff, null, 0);
    }

    /**
     * Backward with a separate gate input: dGateX (R, gateWidth) is overwritten with dH·W_gate and dx gets only
     * dU·W_up; with {@code dGateX == null} the gate input is x and dx gets both.
     */
    public void backward(MemorySegment x, long xOff, MemorySegment gateX, long gateXOff, int[] binStart,
                         MemorySegment dy, long dyOff, MemorySegment dx, long dxOff, MemorySegment dGateX, long dGateXOff) {
        if (splitByExpert(binStart)) {
            pool.parallelFor(e, (j, w) -> backwardExpert(j, x, xOff, gateX, gateXOff, binStart, dy, dyOff, dx, dxOff,
                    dGateX, dGateXOff));
        } else {
            for (int j = 0; j < e; j++) {
                backwardExpert(j, x, xOff, gateX, gateXOff, binStart, dy, dyOff, dx, dxOff, dGateX, dGateXOff);
            }
        }
    }

    /**
     * Two ways to use the cores: one expert per task (each expert's GEMMs single-threaded, no synchronisation
     * inside; best when there are many small bins, e.g. 64 fine-grained experts) or expert after expert with each
     * GEMM parallel inside (best for few large bins, where per-expert tasks would leave cores idle). Both give
     * bit-identical results: every expert's GEMMs are computed by one fixed code path and its weight gradients
     * are written by one task. {@code -Dmoe4j.moe.expertParallel=on|off|auto} overrides the choice.
     */
    private boolean splitByExpert(int[] binStart) {
        if (pool.threads() == 1) return false;
        String mode = splitMode;
        if (mode.equals("on")) return true;
        if (mode.equals("off")) return false;
        int nonEmpty = 0;
        for (int j = 0; j < e; j++) if (binStart[j + 1] > binStart[j]) nonEmpty++;
        int rows = binStart[e];
        return nonEmpty >= 4 * pool.threads() && rows / Math.max(1, nonEmpty) <= SPLIT_MAX_ROWS;
    }

    private void forwardExpert(int j, MemorySegment x, long xOff, MemorySegment gateX, long gateXOff, int[] binStart) {
        int r0 = binStart[j], n = binStart[j + 1] - r0;
        if (n == 0) return;
        Gemm g = kernels.gemm();
        long wIn = (long) f * d, wGate = (long) f * gw;
        long xo = xOff + (long) r0 * d, ho = (long) r0 * f;
        if (gate != null) {
            g.nt(pool, n, f, gw, gateX, gateXOff + (long) r0 * gw, gw, gate.data(), j * wGate, gw, h, ho, f, false);
            g.nt(pool, n, f, d, x, xo, d, up.data(), j * wIn, d, u, ho, f, false);
        } else {
            g.nt(pool, n, f, d, x, xo, d, up.data(), j * wIn, d, h, ho, f, false);
        }
        activate(r0, r0 + n);
        g.nt(pool, n, d, f, a, ho, f, down.data(), j * wIn, f, y, (long) r0 * d, d, false);
    }

    private void backwardExpert(int j, MemorySegment x, long xOff, MemorySegment gateX, long gateXOff, int[] binStart,
                                MemorySegment dy, long dyOff, MemorySegment dx, long dxOff,
                                MemorySegment dGateX, long dGateXOff) {
        int r0 = binStart[j], n = binStart[j + 1] - r0;
        if (n == 0) return;
        Gemm g = kernels.gemm();
        long wIn = (long) f * d, wGate = (long) f * gw;
        long yo = dyOff + (long) r0 * d, ho = (long) r0 * f;
        g.nn(pool, n, f, d, dy, yo, d, down.data(), j * wIn, f, dA, ho, f, false);
        g.tn(pool, d, f, n, dy, yo, d, a, ho, f, down.gradData(), j * wIn, f, true);
        activateBackward(r0, r0 + n);
        long xo = xOff + (long) r0 * d, dxo = dxOff + (long) r0 * d;
        if (gate != null) {
            long go = gateXOff + (long) r0 * gw;
            g.tn(pool, f, gw, n, dH, ho, f, gateX, go, gw, gate.gradData(), j * wGate, gw, true);
            g.tn(pool, f, d, n, dU, ho, f, x, xo, d, up.gradData(), j * wIn, d, true);
            if (dGateX == null) {
                g.nn(pool, n, d, f, dH, ho, f, gate.data(), j * wGate, d, dx, dxo, d, false);
                g.nn(pool, n, d, f, dU, ho, f, up.data(), j * wIn, d, dx, dxo, d, true);
            } else {
                g.nn(pool, n, gw, f, dH, ho, f, gate.data(), j * wGate, gw, dGateX, dGateXOff + (long) r0 * gw, gw, false);
                g.nn(pool, n, d, f, dU, ho, f, up.data(), j * wIn, d, dx, dxo, d, false);
            }
        } else {
            g.tn(pool, f, d, n, dH, ho, f, x, xo, d, up.gradData(), j * wIn, d, true);
            g.nn(pool, n, d, f, dH, ho, f, up.data(), j * wIn, d, dx, dxo, d, false);
        }
    }

    /** Activation of rows [r0, r1) (parallel when called outside a pool task, inline inside one). */
    private void activate(int r0, int r1) {
        RowOps ops = kernels.rows();
        pool.parallelRanges(r1 - r0, ROW_CHUNK, (from, to, w) -> {
            for (int r = r0 + from; r < r0 + to; r++) {
                long o = (long) r * f;
                switch (type) {
                    case SWIGLU -> ops.swiglu(f, h, o, u, o, a, o);
                    case GEGLU -> ops.geglu(f, h, o, u, o, a, o);
                    case MLP_RELU -> ops.relu(f, h, o, a, o);
                    case MLP_GELU -> ops.gelu(f, h, o, a, o);
                    case MLP_GELU_ERF -> ErfGelu.forward(f, h, o, a, o);
                }
            }
        });
    }

    private void activateBackward(int r0, int r1) {
        RowOps ops = kernels.rows();
        pool.parallelRanges(r1 - r0, ROW_CHUNK, (from, to, w) -> {
            for (int r = r0 + from; r < r0 + to; r++) {
                long o = (long) r * f;
                switch (type) {
                    case SWIGLU -> ops.swigluBackward(f, h, o, u, o, dA, o, dH, o, dU, o);
                    case GEGLU -> ops.gegluBackward(f, h, o, u, o, dA, o, dH, o, dU, o);
                    case MLP_RELU -> {
                        F32.zero(dH, o, f);
                        ops.reluBackward(f, h, o, dA, o, dH, o);
                    }
                    case MLP_GELU -> {
                        F32.zero(dH, o, f);
                        ops.geluBackward(f, h, o, dA, o, dH, o);
                    }
                    case MLP_GELU_ERF -> {
                        F32.zero(dH, o, f);
                        ErfGelu.backward(f, h, o, dA, o, dH, o);
                    }
                }
            }
        });
    }
}
