package io.moe4j.infer;

import io.moe4j.kernel.row.RowOps;
import io.moe4j.parallel.WorkerPool;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Causal grouped-query attention of a batch of tokens over the KV cache: token i of slot s at position p, query
 * head h reads KV head {@code g = h / (Hq / Hkv)} at positions 0..p of slot s (its own K and V are already
 * stored), {@code out_h = softmax(scale · q_h·K_gᵀ) · V_g}. No mask tensor: causality is the loop bound, so a prompt
 * and a multi-sequence decode step are the same code.
 *
 * <p>Head widths: q and k heads have {@code kDim} elements, v and output heads {@code vDim}. Ordinary attention
 * has kDim = vDim = head_dim. Multi-head latent attention (DeepSeek-V2, absorbed form) is one KV head whose key is
 * [latent, rotary part] and whose value is the latent alone — the first vDim elements of the key row (the cache's
 * {@code vRow = 0}).
 *
 * <p>Work is split over (token, head) pairs, each writing its own output head: results do not depend on the thread
 * count. Scratch (scores, decoded F16 rows) is per worker and allocated once.
 *
 * <p>Cost: per token and head (p+1)·(kDim + vDim) multiply-adds reading (p+1) K and V rows; F16 rows are decoded
 * on the fly (a scalar loop for now — the place for a vector F16 dot when attention shows up in profiles).
 */
final class Attention {
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;

    private final RowOps ops;
    private final int heads, kvHeads, kDim, vDim;
    private final float scale;
    private final MemorySegment[] scores;   // per worker (capacity)
    private final MemorySegment[] row;      // per worker (max(kDim, vDim)) decoded F16 row

    Attention(Arena arena, RowOps ops, int heads, int kvHeads, int kDim, int vDim, float scale, int capacity, int threads) {
        this.ops = ops;
        this.heads = heads;
        this.kvHeads = kvHeads;
        this.kDim = kDim;
        this.vDim = vDim;
        this.scale = scale;
        this.scores = new MemorySegment[threads];
        this.row = new MemorySegment[threads];
        for (int t = 0; t < threads; t++) {
            scores[t] = arena.allocate((long) capacity * Float.BYTES, 64);
            row[t] = arena.allocate((long) Math.max(kDim, vDim) * Float.BYTES, 64);
        }
    }

    /**
     * out (n, Hq·vDim) = attention of q (n, Hq·kDim) over the cache of {@code layer}, token i in {@code slots[i]}
     * at {@code positions[i]}.
     */
    void forward(WorkerPool pool, KvCache cache, int layer, int n, int[] slots, int[] positions,
                 MemorySegment q, MemorySegment out) {
        this.cache = cache;
        this.layer = layer;
        this.slots = slots;
        this.positions = positions;
        this.q = q;
        this.out = out;
        pool.parallelFor(n * heads, body);
    }

    // Arguments of the running forward call, read by the preallocated loop body (no capturing lambda per call).
    private KvCache cache;
    private int layer;
    private int[] slots, positions;
    private MemorySegment q, out;
    private final WorkerPool.Body body = this::head;

    /** One (token, head) pair. */
    private void head(int task, int worker) {
        int group = heads / kvHeads;
        boolean f16 = cache.type() == KvCache.Type.F16;
        // head g's offset inside a V row: its own V row part, or the start of its K head when V is read from K
        int vHeadStride = cache.vRow() > 0 ? vDim : kDim;
        MemorySegment kAll = cache.k(layer), vAll = cache.v(layer);
        int i = task / heads, h = task % heads, g = h / group;
        int len = positions[i] + 1;
        long qOff = (long) i * heads * kDim + (long) h * kDim;
        MemorySegment s = scores[worker], r = row[worker];
        for (int t = 0; t < len; t++) {
            long kOff = cache.kOffset(slots[i], t) + (long) g * kDim;
            float dot;
            if (f16) {
                KvCache.decodeF16(kAll, kOff, kDim, r, 0);
                dot = ops.dot(kDim, q, qOff, r, 0);
            } else {
                dot = ops.dot(kDim, q, qOff, kAll, kOff);
            }
            s.setAtIndex(F, t, dot * scale);
        }
        ops.softmax(len, s, 0);
        long oOff = (long) i * heads * vDim + (long) h * vDim;
        for (int j = 0; j < vDim; j++) out.setAtIndex(F, oOff + j, 0f);
        for (int t = 0; t < len; t++) {
            float w = s.getAtIndex(F, t);
            long vOff = cache.vOffset(slots[i], t) + (long) g * vHeadStride;
            if (f16) {
                KvCache.decodeF16(vAll, vOff, vDim, r, 0);
                ops.axpy(vDim, w, r, 0, out, oOff);
            } else {
                ops.axpy(vDim, w, vAll, vOff, out, oOff);
            }
        }
    }
}
