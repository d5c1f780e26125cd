package io.moe4j.infer;

import io.moe4j.kernel.Kernels;
import io.moe4j.kernel.row.RowOps;
import io.moe4j.parallel.WorkerPool;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Same-JVM A/B of one decode step's attention (Mixtral-like: 8 query heads, 2 KV heads, head 128, 8 layers' worth
 * of calls) at a given context: the previous one-task-per-query-head loop (kept here as the reference) against
 * {@link Attention}'s one task per KV head. Interleaved, best of N. Not a test (no assertions, not run by surefire):
 * <pre>
 *   mvn -o -q -pl moe4j-infer -am test-compile
 *   java --add-modules jdk.incubator.vector -cp moe4j-infer/target/test-classes:moe4j-infer/target/classes:moe4j-core/target/classes \
 *        io.moe4j.infer.AttentionAb 1024 f16 1
 * </pre>
 */
public final class AttentionAb {
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;
    private static final int HEADS = 8, KV = 2, HD = 128, LAYERS = 8;

    public static void main(String[] args) {
        int ctx = args.length > 0 ? Integer.parseInt(args[0]) : 1024;
        KvCache.Type type = args.length > 1 && args[1].equals("f32") ? KvCache.Type.F32 : KvCache.Type.F16;
        int threads = args.length > 2 ? Integer.parseInt(args[2]) : 1;
        RowOps ops = Kernels.get().rows();
        SplittableRandom rnd = new SplittableRandom(1);
        try (Arena arena = Arena.ofShared(); WorkerPool pool = new WorkerPool(threads);
             KvCache cache = new KvCache(type, 1, 1, ctx, KV * HD, KV * HD, KV)) {
            cache.reserve(ctx);
            MemorySegment row = arena.allocate(KV * HD * 4L, 64);
            for (int p = 0; p < ctx; p++) {
                for (int j = 0; j < KV * HD; j++) row.setAtIndex(F, j, (float) rnd.nextGaussian());
                cache.store(0, 0, p, row, 0, row, 0);
            }
            MemorySegment q = arena.allocate(HEADS * HD * 4L, 64), a = arena.allocate(HEADS * HD * 4L, 64), b = arena.allocate(HEADS * HD * 4L, 64);
            for (int j = 0; j < HEADS * HD; j++) q.setAtIndex(F, j, (float) rnd.nextGaussian());
            int[] slots = {0}, positions = {ctx - 1};
            float scale = (float) (1 / Math.sqrt(HD));
            Attention grouped = new Attention(arena, ops, HEADS, KV, HD, HD, scale, ctx, threads);
            PerHead perHead = new PerHead(arena, ops, scale, ctx, threads);
            long bestOld = Long.MAX_VALUE, bestNew = Long.MAX_VALUE;
            for (int round = 0; round < 40; round++) {
                // alternate which goes first, so neither always runs on a warmer cache
                long tOld = 0, tNew = 0;
                for (int k = 0; k < 2; k++) {
                    long t0 = System.nanoTime();
                    if ((round + k) % 2 == 0) {
                        for (int l = 0; l < LAYERS; l++) perHead.forward(pool, cache, slots, positions, q, a);
                        tOld = System.nanoTime() - t0;
                    } else {
                        for (int l = 0; l < LAYERS; l++) grouped.forward(pool, cache, 0, 1, slots, positions, q, b);
                        tNew = System.nanoTime() - t0;
                    }
                }
                if (round >= 5) {
                    bestOld = Math.min(bestOld, tOld);
                    bestNew = Math.min(bestNew, tNew);
                }
            }
            System.out.printf(Locale.ROOT, "ctx %d %s threads %d: per-query-head %.3f ms, grouped %.3f ms per token (8 layers), %.2fx; same bits: %b%n",
                    ctx, type, threads, bestOld / 1e6, bestNew / 1e6, (double) bestOld / bestNew, a.mismatch(b) == -1);
        }
    }

    /** The attention loop before grouping: one task per (token, query head), each reading and decoding its KV head's rows. */
    private static final class PerHead {
        final RowOps ops;
        final float scale;
        final MemorySegment[] scores, row;
        KvCache cache;
        int[] slots, positions;
        MemorySegment q, out;
        final WorkerPool.Body body = this::head;

        PerHead(Arena arena, RowOps ops, float scale, int capacity, int threads) {
            this.ops = ops;
            this.scale = scale;
            scores = new MemorySegment[threads];
            row = new MemorySegment[threads];
            for (int t = 0; t < threads; t++) {
                scores[t] = arena.allocate((long) capacity * 4, 64);
                row[t] = arena.allocate(HD * 4L, 64);
            }
        }

        void forward(WorkerPool pool, KvCache cache, int[] slots, int[] positions, MemorySegment q, MemorySegment out) {
            this.cache = cache;
            this.slots = slots;
            this.positions = positions;
            this.q = q;
            this.out = out;
            pool.parallelFor(HEADS, body);
        }

        void head(int task, int worker) {
            boolean f16 = cache.type() == KvCache.Type.F16;
            MemorySegment kAll = cache.k(0), vAll = cache.v(0);
            int i = task / HEADS, h = task % HEADS, g = h / (HEADS / KV);
            int len = positions[i] + 1;
            long qOff = (long) i * HEADS * HD + (long) h * HD;
            MemorySegment s = scores[worker], r = row[worker];
            for (int t = 0; t < len; t++) {
                long kOff = cache.kOffset(slots[i], g, t);
                float dot;
                if (f16) {
                    KvCache.decodeF16(kAll, kOff, HD, r, 0);
                    dot = ops.dot(HD, q, qOff, r, 0);
                } else {
                    dot = ops.dot(HD, q, qOff, kAll, kOff);
                }
                s.setAtIndex(F, t, dot * scale);
            }
            ops.softmax(len, s, 0);
            long oOff = (long) i * HEADS * HD + (long) h * HD;
            for (int j = 0; j < HD; j++) out.setAtIndex(F, oOff + j, 0f);
            for (int t = 0; t < len; t++) {
                float w = s.getAtIndex(F, t);
                long vOff = cache.vOffset(slots[i], g, t);
                if (f16) {
                    KvCache.decodeF16(vAll, vOff, HD, r, 0);
                    ops.axpy(HD, w, r, 0, out, oOff);
                } else {
                    ops.axpy(HD, w, vAll, vOff, out, oOff);
                }
            }
        }
    }
}
