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
 * <p>Work is split over (token, KV head, part of its query-head group): with an F16 cache a task decodes each K
 * and V row of its KV head once for all the query heads it serves — with grouped-query attention (Mixtral: 4 query
 * heads per KV head) 4x fewer decodes than a task per query head (2.1x faster at 1024 positions, 5.7x at 256:
 * {@code AttentionAb}). The group is split into parts only when there would otherwise be fewer tasks than threads (a
 * decode step of one sequence with 2 KV heads). Each query head's arithmetic (dot order, softmax, axpy order) is
 * the same however heads are grouped into tasks, so results do not depend on the thread count. Scratch (scores,
 * decoded F16 rows) is per worker and allocated once.
 *
 * <p>Cost: per token and query head (p+1)·(kDim + vDim) multiply-adds; per token and KV head (p+1) K and V rows
 * read (and decoded from F16 by a scalar loop that the JIT vectorises).
 */
final class Attention {
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;

    private final RowOps ops;
    private final int heads, kvHeads, group, kDim, vDim, capacity, threads;
    private final float scale;
    private final MemorySegment[] scores;   // per worker (group, capacity): scores, then weights, of each head served
    private final MemorySegment[] row;      // per worker (max(kDim, vDim)) decoded F16 row

    Attention(Arena arena, RowOps ops, int heads, int kvHeads, int kDim, int vDim, float scale, int capacity, int threads) {
        this.ops = ops;
        this.heads = heads;
        this.kvHeads = kvHeads;
        this.group = heads / kvHeads;
        this.kDim = kDim;
        this.vDim = vDim;
        this.scale = scale;
        this.capacity = capacity;
        this.threads = threads;
        this.scores = new MemorySegment[threads];
        this.row = new MemorySegment[threads];
        for (int t = 0; t < threads; t++) {
            scores[t] = arena.allocate((long) group * capacity * Float.BYTES, 64);
            row[t] = arena.allocate((long) Math.max(kDim, vDim) * Float.BYTES, 64);
        }
    }

    /**
     * out (n, Hq·vDim) = attention of q (n, Hq·kDim) over the cache of {@code layer}, token i in {@code slots[i]}
     * at {@code positions[i]}.
     */
    void forward(WorkerPool pool, KvCache cache, int layer, int n, int[] slots, int[] positions,
                 MemorySegment q, MemorySegment out) {
        if (cache.heads() != kvHeads) {
            throw new IllegalArgumentException("the KV cache is split into " + cache.heads() + " heads, attention has " + kvHeads);
        }
        this.cache = cache;
        this.layer = layer;
        this.slots = slots;
        this.positions = positions;
        this.q = q;
        this.out = out;
        // parts per group: 1 unless (token, KV head) pairs are fewer than the threads
        int parts = Math.min(group, Math.max(1, (threads + n * kvHeads - 1) / (n * kvHeads)));
        this.perTask = (group + parts - 1) / parts;
        this.parts = (group + perTask - 1) / perTask;
        pool.parallelFor(n * kvHeads * this.parts, body);
    }

    // Arguments of the running forward call, read by the preallocated loop body (no capturing lambda per call).
    private KvCache cache;
    private int layer;
    private int[] slots, positions;
    private MemorySegment q, out;
    private int parts, perTask;
    private final WorkerPool.Body body = this::task;

    /** Query heads [h0, h1) of KV head g for token i. */
    private void task(int task, int worker) {
        int part = task % parts, pair = task / parts;
        int i = pair / kvHeads, g = pair % kvHeads;
        int h0 = g * group + part * perTask, h1 = Math.min(g * group + group, h0 + perTask);
        int len = positions[i] + 1, slot = slots[i];
        long qBase = (long) i * heads * kDim, oBase = (long) i * heads * vDim;
        MemorySegment s = scores[worker];
        for (int h = h0; h < h1; h++) {
            long oOff = oBase + (long) h * vDim;
            for (int j = 0; j < vDim; j++) out.setAtIndex(F, oOff + j, 0f);
        }
        if (cache.type() == KvCache.Type.F16) {
            headsF16(g, h0, h1, len, slot, qBase, oBase, s, row[worker]);
        } else {
            headsF32(g, h0, h1, len, slot, qBase, oBase, s);
        }
    }

    /**
     * F32 cache: head by head, as a single-head loop (nothing to share but cache lines, and the simple loop measured
     * ~10 % faster than position-major order here).
     */
    private void headsF32(int g, int h0, int h1, int len, int slot, long qBase, long oBase, MemorySegment s) {
        MemorySegment kAll = cache.k(layer), vAll = cache.v(layer);
        for (int h = h0; h < h1; h++) {
            long qOff = qBase + (long) h * kDim, sOff = (long) (h - h0) * capacity;
            for (int t = 0; t < len; t++) {
                s.setAtIndex(F, sOff + t, ops.dot(kDim, q, qOff, kAll, cache.kOffset(slot, g, t)) * scale);
            }
            ops.softmax(len, s, sOff);
            long oOff = oBase + (long) h * vDim;
            for (int t = 0; t < len; t++) {
                ops.axpy(vDim, s.getAtIndex(F, sOff + t), vAll, cache.vOffset(slot, g, t), out, oOff);
            }
        }
    }

    /** F16 cache: position by position, each K and V row decoded once for all the heads [h0, h1). */
    private void headsF16(int g, int h0, int h1, int len, int slot, long qBase, long oBase, MemorySegment s,
                          MemorySegment r) {
        MemorySegment kAll = cache.k(layer), vAll = cache.v(layer);
        for (int t = 0; t < len; t++) {
            KvCache.decodeF16(kAll, cache.kOffset(slot, g, t), kDim, r, 0);
            for (int h = h0; h < h1; h++) {
                s.setAtIndex(F, (long) (h - h0) * capacity + t, ops.dot(kDim, q, qBase + (long) h * kDim, r, 0) * scale);
            }
        }
        for (int h = h0; h < h1; h++) ops.softmax(len, s, (long) (h - h0) * capacity);
        for (int t = 0; t < len; t++) {
            KvCache.decodeF16(vAll, cache.vOffset(slot, g, t), vDim, r, 0);
            for (int h = h0; h < h1; h++) {
                ops.axpy(vDim, s.getAtIndex(F, (long) (h - h0) * capacity + t), r, 0, out, oBase + (long) h * vDim);
            }
        }
    }
}
