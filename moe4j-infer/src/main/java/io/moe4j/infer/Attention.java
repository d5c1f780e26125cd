package io.moe4j.infer;

import io.moe4j.kernel.row.RowOps;
import io.moe4j.parallel.WorkerPool;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Causal grouped-query attention of a batch of tokens over the KV cache: token i of slot s at position p, query
 * head h reads KV head {@code h / (Hq / Hkv)} at positions 0..p of slot s (its own K and V are already stored),
 * {@code out = softmax(scale · q·Kᵀ) · V}. No mask tensor: causality is the loop bound, so a prompt and a
 * multi-sequence decode step are the same code.
 *
 * <p>Work is split over (token, head) pairs, each writing its own head of the output: results do not depend on
 * the thread count. Scratch (scores, decoded F16 rows) is per worker and allocated once.
 *
 * <p>Cost: per token and head 2·(p+1)·hd flops reading (p+1) K and V rows; F16 rows are decoded on the fly
 * (a scalar loop for now — the place to add a vector F16 dot when attention shows up in profiles).
 */
final class Attention {
    private final RowOps ops;
    private final int heads, kvHeads, headDim;
    private final float scale;
    private final MemorySegment[] scores;   // per worker (capacity)
    private final MemorySegment[] kvRow;    // per worker (headDim) decoded F16 row

    Attention(Arena arena, RowOps ops, HyperParams hp, int capacity, int threads) {
        this.ops = ops;
        this.heads = hp.heads();
        this.kvHeads = hp.kvHeads();
        this.headDim = hp.headDim();
        this.scale = hp.attentionScale();
        this.scores = new MemorySegment[threads];
        this.kvRow = new MemorySegment[threads];
        for (int t = 0; t < threads; t++) {
            scores[t] = arena.allocate((long) capacity * Float.BYTES, 64);
            kvRow[t] = arena.allocate((long) headDim * Float.BYTES, 64);
        }
    }

    /**
     * out (n, Hq·hd) = attention of q (n, Hq·hd) over the cache of {@code layer}, token i in {@code slots[i]} at
     * {@code positions[i]}.
     */
    void forward(WorkerPool pool, KvCache cache, int layer, int n, int[] slots, int[] positions,
                 MemorySegment q, MemorySegment out) {
        int qDim = heads * headDim, group = heads / kvHeads;
        boolean f16 = cache.type() == KvCache.Type.F16;
        MemorySegment kAll = cache.k(layer), vAll = cache.v(layer);
        pool.parallelFor(n * heads, (task, worker) -> {
            int i = task / heads, h = task % heads, g = h / group;
            int len = positions[i] + 1;
            long qOff = (long) i * qDim + (long) h * headDim;
            MemorySegment s = scores[worker], row = kvRow[worker];
            for (int t = 0; t < len; t++) {
                long kOff = cache.offset(slots[i], t) + (long) g * headDim;
                float dot;
                if (f16) {
                    KvCache.decodeF16(kAll, kOff, headDim, row, 0);
                    dot = ops.dot(headDim, q, qOff, row, 0);
                } else {
                    dot = ops.dot(headDim, q, qOff, kAll, kOff);
                }
                s.setAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT, t, dot * scale);
            }
            ops.softmax(len, s, 0);
            long oOff = (long) i * qDim + (long) h * headDim;
            out.asSlice(oOff * Float.BYTES, (long) headDim * Float.BYTES).fill((byte) 0);
            for (int t = 0; t < len; t++) {
                float w = s.getAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT, t);
                long vOff = cache.offset(slots[i], t) + (long) g * headDim;
                if (f16) {
                    KvCache.decodeF16(vAll, vOff, headDim, row, 0);
                    ops.axpy(headDim, w, row, 0, out, oOff);
                } else {
                    ops.axpy(headDim, w, vAll, vOff, out, oOff);
                }
            }
        });
    }
}
