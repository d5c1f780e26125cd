package io.moe4j.train.model;

import io.moe4j.kernel.Kernels;
import io.moe4j.kernel.gemm.Gemm;
import io.moe4j.kernel.row.RopeTable;
import io.moe4j.kernel.row.RowOps;
import io.moe4j.moe.MoeConfig;
import io.moe4j.moe.MoeLayer;
import io.moe4j.nn.F32;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * One pre-norm transformer block:
 * <pre>
 *   n1 = RMSNorm_attn(x);  mid = x + Attention(n1);  n2 = RMSNorm_ffn(mid);  out = mid + FFN(n2)
 *   FFN = dense SwiGLU (first denseLayers blocks) or the MoE layer
 * </pre>
 * Backward mirrors it in reverse on one residual gradient buffer: dmid = dout + RMSNorm_ffnᵀ(FFNᵀ(dout)),
 * dx = dmid + RMSNorm_attnᵀ(Attentionᵀ(dmid)). The block keeps n1, mid, n2 and the rstds; the caller keeps x
 * (the residual stream before the block).
 */
final class Block {
    private final Kernels kernels;
    private final WorkerPool pool;
    final int index;
    final RmsNorm attnNorm, ffnNorm;
    final Attention attn;
    final DenseFfn dense; // null for MoE blocks
    final MoeLayer moe;   // null for dense blocks
    private final int d;

    private final String attnOutName, ffnOutName, gradName; // NaN messages, built once
    ModelProfile profile; // set by the model

    private MemorySegment n1, mid, n2; // (N, d)
    private float[] rstd1, rstd2;       // (N)

    Block(Arena arena, int index, ModelConfig c, MoeConfig moeConfig, RopeTable rope, Kernels kernels,
          WorkerPool pool, Gemm[] headGemm) {
        this.kernels = kernels;
        this.pool = pool;
        this.index = index;
        this.d = c.dModel();
        String p = "layers." + index;
        this.attnNorm = new RmsNorm(arena, p + ".attn_norm", d, c.normEps());
        this.attn = new Attention(arena, p + ".attn", c, rope, kernels, pool, headGemm);
        this.ffnNorm = new RmsNorm(arena, p + ".ffn_norm", d, c.normEps());
        if (moeConfig == null) {
            this.dense = new DenseFfn(arena, p + ".ffn", d, c.denseHidden(), kernels, pool);
            this.moe = null;
        } else {
            this.dense = null;
            this.moe = new MoeLayer(moeConfig, arena, kernels, pool);
        }
        this.attnOutName = p + ".attn output";
        this.ffnOutName = p + (dense != null ? ".ffn" : ".moe") + " output";
        this.gradName = "gradient of " + p + " input";
    }

    /** attn_norm, attention params, ffn_norm, then the FFN's (dense gate/up/down or the MoE layer's). */
    List<Param> params() {
        List<Param> ps = new ArrayList<>();
        ps.add(attnNorm.w);
        ps.addAll(attn.params());
        ps.add(ffnNorm.w);
        ps.addAll(dense != null ? dense.params() : moe.params());
        return ps;
    }

    /** Norms = 1, weights N(0, std²), the two output projections (wo, FFN down) scaled by outScale. */
    void init(SplittableRandom rng, double std, double outScale) {
        attnNorm.w.fill(1f);
        attn.wq.w.initNormal(rng, std);
        attn.wk.w.initNormal(rng, std);
        attn.wv.w.initNormal(rng, std);
        attn.wo.w.initNormal(rng, std * outScale);
        if (attn.qNorm != null) {
            attn.qNorm.w.fill(1f);
            attn.kNorm.w.fill(1f);
        }
        ffnNorm.w.fill(1f);
        if (dense != null) {
            dense.gate.w.initNormal(rng, std);
            dense.up.w.initNormal(rng, std);
            dense.down.w.initNormal(rng, std * outScale);
        } else {
            moe.init(rng, std, outScale);
        }
    }

    void allocate(Arena arena, int rows, long batchSeqSq) {
        n1 = F32.alloc(arena, (long) rows * d);
        mid = F32.alloc(arena, (long) rows * d);
        n2 = F32.alloc(arena, (long) rows * d);
        rstd1 = new float[rows];
        rstd2 = new float[rows];
        attnNorm.allocate(arena, rows);
        ffnNorm.allocate(arena, rows);
        attn.allocate(arena, rows, batchSeqSq);
        if (dense != null) dense.allocate(arena, rows);
    }

    /**
     * out (B·T, d) = block(x); x must stay unchanged until the backward. {@code tokenIds} are the input tokens
     * (hash routing), {@code prevLogits} the previous MoE layer's logits (gating residual) or null.
     */
    void forward(int b, int t, MemorySegment x, MemorySegment out, int[] tokenIds, float[] prevLogits,
                 boolean training) {
        RowOps ops = kernels.rows();
        int n = b * t;
        long t0 = System.nanoTime();
        attnNorm.forward(ops, pool, n, x, 0, n1, 0, rstd1);
        attn.forward(b, t, n1, 0, mid);
        addRows(ops, n, mid, x);
        FiniteCheck.check(ops, mid, 0, n * d, attnOutName);
        long t1 = System.nanoTime();
        ffnNorm.forward(ops, pool, n, mid, 0, n2, 0, rstd2);
        if (dense != null) dense.forward(n, n2, 0, out, 0);
        else moe.forward(n2, 0, n, tokenIds, prevLogits, out, 0, training);
        addRows(ops, n, out, mid);
        FiniteCheck.check(ops, out, 0, n * d, ffnOutName);
        long t2 = System.nanoTime();
        profile.add(ModelProfile.Phase.ATTN, t1 - t0);
        profile.add(dense != null ? ModelProfile.Phase.FFN : ModelProfile.Phase.MOE, t2 - t1);
    }

    /** acc += x over n rows of d, in parallel row chunks. */
    private void addRows(RowOps ops, int n, MemorySegment acc, MemorySegment x) {
        pool.parallelRanges(n, 64, (from, to, w) -> {
            long o = (long) from * d;
            ops.add((to - from) * d, acc, o, x, o, acc, o);
        });
    }

    /**
     * On entry {@code s.dResid} = ∂L/∂out; on exit ∂L/∂x. {@code dLogits}/{@code dPrevLogits}: the MoE gating
     * residual's gradient buffers (see {@link MoeLayer}), or null.
     */
    void backward(int b, int t, MemorySegment x, Scratch s, float[] dLogits, float[] dPrevLogits) {
        RowOps ops = kernels.rows();
        int n = b * t;
        long nd = (long) n * d;
        long t0 = System.nanoTime();
        F32.zero(s.dNorm, 0, nd);
        if (dense != null) dense.backward(n, n2, 0, s.dResid, 0, s.dNorm, 0, s);
        else moe.backward(n2, 0, s.dResid, 0, s.dNorm, 0, dLogits, dPrevLogits);
        ffnNorm.backward(ops, pool, n, s.dNorm, 0, mid, 0, rstd2, s.dResid, 0);
        long t1 = System.nanoTime();
        F32.zero(s.dNorm, 0, nd);
        attn.backward(b, t, n1, 0, s.dResid, s.dNorm, s);
        attnNorm.backward(ops, pool, n, s.dNorm, 0, x, 0, rstd1, s.dResid, 0);
        FiniteCheck.check(ops, s.dResid, 0, (int) nd, gradName);
        long t2 = System.nanoTime();
        profile.add(dense != null ? ModelProfile.Phase.FFN_BWD : ModelProfile.Phase.MOE_BWD, t1 - t0);
        profile.add(ModelProfile.Phase.ATTN_BWD, t2 - t1);
    }
}
