package io.moe4j.train.model;

import io.moe4j.kernel.Kernels;
import io.moe4j.kernel.gemm.Gemm;
import io.moe4j.kernel.row.RopeTable;
import io.moe4j.kernel.row.RowOps;
import io.moe4j.moe.NonFiniteException;
import io.moe4j.nn.F32;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * Causal multi-head self-attention with grouped-query heads, RoPE and optional per-head q/k RMSNorm, forward and
 * backward. No biases, no KV cache (training recomputes the whole sequence).
 *
 * <pre>
 *   x (N = B·T, d)
 *   q = x·Wqᵀ (N, H·hd)   k = x·Wkᵀ, v = x·Wvᵀ (N, KV·hd)          head h reads kv head h / (H/KV)
 *   [qkNorm]  q, k ← RMSNorm per head (weight (hd), shared by all heads)          — Qwen3 / OLMoE-2 style
 *   q, k ← RoPE in ADJACENT pairs (2i, 2i+1), position = index in the sequence  — llama.cpp "normal" mode, so a
 *          llama GGUF export needs no permutation of Wq/Wk
 *   per (b, h):  P = softmax_causal(q_h·k_hᵀ / sqrt(hd)) (T, T);  ctx_h = P·v_h
 *   out = ctx·Woᵀ (N, d)
 * </pre>
 * Backward per (b, kv head), looping over the query heads of its group so that dK and dV of a kv head are written
 * by one task (no races, fixed summation order):
 * <pre>
 *   dP = dctx_h·v_hᵀ,  dv_h += Pᵀ·dctx_h,  dS = P ⊙ (dP − ⟨dP, P⟩_row) / sqrt(hd),  dq_h = dS·k_h,  dk_h += dSᵀ·q_h
 * </pre>
 * then the inverse rotation (RoPE is orthogonal), the q/k norm backward and the three projections' backward.
 *
 * <p>The per-head products are small GEMMs (T×T×hd) run inside per-head tasks; each worker has a private
 * {@link Gemm} instance because a GEMM keeps packing buffers per call and per worker slot, and a nested call
 * runs inline as worker 0 — two workers sharing one instance would either share those buffers or allocate fresh
 * ones per call.
 *
 * <p>The causal mask is exploited by blocks of {@value #QB} query rows: a block of rows [i0, i1) computes scores
 * only against keys [0, i1) and its P·V only over them; the transposed products (dV, dK) of key block [i0, i1)
 * sum only over the queries [i0, T) that can see it. That skips all but a thin band of the masked upper triangle
 * (T = 128: 62 % of the full T² work instead of 100 %); the skipped terms are exact zeros (P and dS are 0 above
 * the diagonal), so results change at most by the order of exact zero additions.
 */
final class Attention {
    private final Kernels kernels;
    private final WorkerPool pool;
    private final Gemm[] headGemm; // one per worker
    final String name;             // "layers.{i}.attn"
    final Linear wq, wk, wv, wo;
    final RmsNorm qNorm, kNorm;    // null without qkNorm
    /** Query rows per causal block (see the class comment). */
    static final int QB = 32;
    private final int d, heads, kvHeads, group, hd, qDim, kvDim;
    private final float scale;
    private final RopeTable rope;

    // Activations for the current shape (capacity N rows), owned by the model's activation arena.
    private MemorySegment q, k, v;   // (N, H·hd) (N, KV·hd) (N, KV·hd) after norm and RoPE
    private MemorySegment qRaw, kRaw; // before the q/k norm (qkNorm only)
    private float[] qRstd, kRstd;     // (N·H) (N·KV)
    private MemorySegment probs;      // (B·H, T, T) softmax, zero above the diagonal
    private MemorySegment ctx;        // (N, H·hd)

    Attention(Arena arena, String name, ModelConfig c, RopeTable rope, Kernels kernels, WorkerPool pool,
              Gemm[] headGemm) {
        this.kernels = kernels;
        this.pool = pool;
        this.headGemm = headGemm;
        this.name = name;
        this.d = c.dModel();
        this.heads = c.heads();
        this.kvHeads = c.kvHeads();
        this.group = heads / kvHeads;
        this.hd = c.headDim();
        this.qDim = heads * hd;
        this.kvDim = kvHeads * hd;
        this.scale = (float) (1.0 / Math.sqrt(hd));
        this.rope = rope;
        this.wq = new Linear(arena, name + ".wq", qDim, d);
        this.wk = new Linear(arena, name + ".wk", kvDim, d);
        this.wv = new Linear(arena, name + ".wv", kvDim, d);
        this.wo = new Linear(arena, name + ".wo", d, qDim);
        this.qNorm = c.qkNorm() ? new RmsNorm(arena, name + ".q_norm", hd, c.normEps()) : null;
        this.kNorm = c.qkNorm() ? new RmsNorm(arena, name + ".k_norm", hd, c.normEps()) : null;
    }

    /** wq, wk, wv, wo, then q_norm, k_norm when present. */
    List<Param> params() {
        List<Param> ps = new ArrayList<>(List.of(wq.w, wk.w, wv.w, wo.w));
        if (qNorm != null) {
            ps.add(qNorm.w);
            ps.add(kNorm.w);
        }
        return ps;
    }

    /** Activations for up to {@code rows} = B·T rows and B·T² attention probabilities per head. */
    void allocate(Arena arena, int rows, long batchSeqSq) {
        q = F32.alloc(arena, (long) rows * qDim);
        k = F32.alloc(arena, (long) rows * kvDim);
        v = F32.alloc(arena, (long) rows * kvDim);
        ctx = F32.alloc(arena, (long) rows * qDim);
        probs = F32.alloc(arena, batchSeqSq * heads);
        if (qNorm != null) {
            qRaw = F32.alloc(arena, (long) rows * qDim);
            kRaw = F32.alloc(arena, (long) rows * kvDim);
            qRstd = new float[rows * heads];
            kRstd = new float[rows * kvHeads];
            qNorm.allocate(arena, rows * heads);
            kNorm.allocate(arena, rows * kvHeads);
        }
    }

    /** out (B·T, d) = attention(x (B·T, d)), overwritten. */
    void forward(int b, int t, MemorySegment x, long xOff, MemorySegment out) {
        Gemm g = kernels.gemm();
        RowOps ops = kernels.rows();
        int n = b * t;
        if (qNorm != null) {
            wq.forward(g, pool, n, x, xOff, qRaw, 0);
            wk.forward(g, pool, n, x, xOff, kRaw, 0);
            qNorm.forward(ops, pool, n * heads, qRaw, 0, q, 0, qRstd);
            kNorm.forward(ops, pool, n * kvHeads, kRaw, 0, k, 0, kRstd);
        } else {
            wq.forward(g, pool, n, x, xOff, q, 0);
            wk.forward(g, pool, n, x, xOff, k, 0);
        }
        wv.forward(g, pool, n, x, xOff, v, 0);
        rotate(ops, n, t, false, q, k);
        try {
            pool.parallelFor(b * heads, (task, worker) -> headForward(ops, headGemm[worker], task, t));
        } catch (IllegalArgumentException e) {
            // shapes are valid by construction: softmax rejects a score row only when it is not finite
            throw new NonFiniteException("NaN or Inf in " + name + " scores (q/k): " + e.getMessage());
        }
        wo.forward(g, pool, n, ctx, 0, out, 0);
    }

    /** RoPE on every row of q and k (inverse = the backward, on their gradients). */
    private void rotate(RowOps ops, int n, int t, boolean inverse, MemorySegment qs, MemorySegment ks) {
        float[] cos = rope.cos(), sin = rope.sin();
        pool.parallelRanges(n, 32, (from, to, worker) -> {
            for (int r = from; r < to; r++) {
                int tab = rope.offset(r % t);
                ops.rope(heads, hd, hd, qs, (long) r * qDim, cos, sin, tab, false, inverse);
                ops.rope(kvHeads, hd, hd, ks, (long) r * kvDim, cos, sin, tab, false, inverse);
            }
        });
    }

    /** Task (b, h): P = softmax_causal(q·kᵀ·scale), ctx = P·v. */
    private void headForward(RowOps ops, Gemm g, int task, int t) {
        int b = task / heads, h = task % heads, kvh = h / group;
        long qo = (long) b * t * qDim + (long) h * hd;
        long ko = (long) b * t * kvDim + (long) kvh * hd;
        long po = (long) task * t * t;
        for (int i0 = 0; i0 < t; i0 += QB) {   // scores of rows [i0, i1) against keys [0, i1)
            int rows = Math.min(QB, t - i0), i1 = i0 + rows;
            g.nt(pool, rows, i1, hd, q, qo + (long) i0 * qDim, qDim, k, ko, kvDim, probs, po + (long) i0 * t, t, false);
        }
        for (int i = 0; i < t; i++) {
            long row = po + (long) i * t;
            ops.scale(i + 1, scale, probs, row);
            ops.softmax(i + 1, probs, row);
            if (i + 1 < t) F32.zero(probs, row + i + 1, t - i - 1);
        }
        for (int i0 = 0; i0 < t; i0 += QB) {   // ctx rows [i0, i1) = P[i0..i1, 0..i1)·v[0..i1)
            int rows = Math.min(QB, t - i0), i1 = i0 + rows;
            g.nn(pool, rows, hd, i1, probs, po + (long) i0 * t, t, v, ko, kvDim, ctx, qo + (long) i0 * qDim, qDim, false);
        }
    }

    /** dx (B·T, d) += ∂L/∂x given dOut = ∂L/∂out; parameter gradients accumulated. */
    void backward(int b, int t, MemorySegment x, long xOff, MemorySegment dOut, MemorySegment dx, Scratch s) {
        Gemm g = kernels.gemm();
        RowOps ops = kernels.rows();
        int n = b * t;
        wo.backward(g, pool, n, ctx, 0, dOut, 0, s.dCtx, 0, false);
        pool.parallelFor(b * kvHeads, (task, worker) -> headBackward(ops, headGemm[worker], task, t, s, s.dP[worker]));
        rotate(ops, n, t, true, s.dq, s.dk);
        MemorySegment dq = s.dq, dk = s.dk;
        if (qNorm != null) {
            F32.zero(s.dqRaw, 0, (long) n * qDim);
            F32.zero(s.dkRaw, 0, (long) n * kvDim);
            qNorm.backward(ops, pool, n * heads, s.dq, 0, qRaw, 0, qRstd, s.dqRaw, 0);
            kNorm.backward(ops, pool, n * kvHeads, s.dk, 0, kRaw, 0, kRstd, s.dkRaw, 0);
            dq = s.dqRaw;
            dk = s.dkRaw;
        }
        wq.backward(g, pool, n, x, xOff, dq, 0, dx, 0, true);
        wk.backward(g, pool, n, x, xOff, dk, 0, dx, 0, true);
        wv.backward(g, pool, n, x, xOff, s.dv, 0, dx, 0, true);
    }

    /** Task (b, kv head): every query head of the group, in order; dk, dv of this kv head written here only. */
    private void headBackward(RowOps ops, Gemm g, int task, int t, Scratch s, MemorySegment dP) {
        int b = task / kvHeads, kvh = task % kvHeads;
        long ko = (long) b * t * kvDim + (long) kvh * hd;
        for (int j = 0; j < group; j++) {
            int h = kvh * group + j;
            long qo = (long) b * t * qDim + (long) h * hd;
            long po = ((long) b * heads + h) * t * t;
            boolean acc = j > 0;
            for (int i0 = 0; i0 < t; i0 += QB) {
                int rows = Math.min(QB, t - i0), i1 = i0 + rows;
                long qi = qo + (long) i0 * qDim, ki = ko + (long) i0 * kvDim;
                // dP[i0..i1, 0..i1) = dctx·vᵀ;  dv[i0..i1) (+)= P[i0..T, i0..i1)ᵀ·dctx[i0..T)
                g.nt(pool, rows, i1, hd, s.dCtx, qi, qDim, v, ko, kvDim, dP, (long) i0 * t, t, false);
                g.tn(pool, rows, hd, t - i0, probs, po + (long) i0 * t + i0, t, s.dCtx, qi, qDim, s.dv, ki, kvDim, acc);
            }
            for (int i = 0; i < t; i++) {
                long row = (long) i * t;
                ops.softmaxBackward(i + 1, probs, po + row, dP, row, dP, row);
                ops.scale(i + 1, scale, dP, row);
                if (i + 1 < t) F32.zero(dP, row + i + 1, t - i - 1);
            }
            for (int i0 = 0; i0 < t; i0 += QB) {
                int rows = Math.min(QB, t - i0), i1 = i0 + rows;
                long qi = qo + (long) i0 * qDim, ki = ko + (long) i0 * kvDim;
                // dq[i0..i1) = dS[i0..i1, 0..i1)·k[0..i1);  dk[i0..i1) (+)= dS[i0..T, i0..i1)ᵀ·q[i0..T)
                g.nn(pool, rows, hd, i1, dP, (long) i0 * t, t, k, ko, kvDim, s.dq, qi, qDim, false);
                g.tn(pool, rows, hd, t - i0, dP, (long) i0 * t + i0, t, q, qi, qDim, s.dk, ki, kvDim, acc);
            }
        }
    }
}
