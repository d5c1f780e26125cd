package io.moe4j.infer;

import io.moe4j.kernel.Kernels;
import io.moe4j.parallel.WorkerPool;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Grouped-query attention over the cache against a float64 reference written from the definition, for F32 and F16
 * caches, a prompt-sized batch and single-token steps; and the split of a query-head group over several tasks
 * (what a one-token step does when there are more threads than KV heads) gives the same bits as one task per group.
 */
class AttentionTest {
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;
    private static final int HEADS = 8, KV_HEADS = 2, HD = 16, SLOTS = 2, CAP = 40;

    @Test
    void matchesTheDefinitionAndDoesNotDependOnTheSplit() {
        for (KvCache.Type type : KvCache.Type.values()) {
            for (int n : new int[]{1, 5}) check(type, n);
        }
    }

    private static void check(KvCache.Type type, int n) {
        SplittableRandom rnd = new SplittableRandom(7 + n);
        int kvd = KV_HEADS * HD;
        try (Arena arena = Arena.ofShared();
             KvCache cache = new KvCache(type, 1, SLOTS, CAP, kvd, kvd, KV_HEADS);
             WorkerPool one = new WorkerPool(1);
             WorkerPool eight = new WorkerPool(8)) {
            MemorySegment kv = arena.allocate(kvd * 4L), kv2 = arena.allocate(kvd * 4L);
            int[] len = {23, 31};
            for (int s = 0; s < SLOTS; s++) {
                for (int p = 0; p < len[s]; p++) {
                    for (int j = 0; j < kvd; j++) {
                        kv.setAtIndex(F, j, (float) rnd.nextGaussian());
                        kv2.setAtIndex(F, j, (float) rnd.nextGaussian());
                    }
                    cache.store(0, s, p, kv, 0, kv2, 0);
                }
            }
            int[] slots = new int[n], positions = new int[n];
            for (int i = 0; i < n; i++) {
                slots[i] = i % SLOTS;
                positions[i] = len[slots[i]] - 1 - i / SLOTS;   // causal bound differs per token
            }
            MemorySegment q = arena.allocate((long) n * HEADS * HD * 4);
            for (long j = 0; j < (long) n * HEADS * HD; j++) q.setAtIndex(F, j, (float) rnd.nextGaussian());
            float scale = 0.25f;
            MemorySegment a = arena.allocate((long) n * HEADS * HD * 4), b = arena.allocate((long) n * HEADS * HD * 4);
            new Attention(arena, Kernels.get().rows(), HEADS, KV_HEADS, HD, HD, scale, CAP, 1)
                    .forward(one, cache, 0, n, slots, positions, q, a);
            new Attention(arena, Kernels.get().rows(), HEADS, KV_HEADS, HD, HD, scale, CAP, 8)
                    .forward(eight, cache, 0, n, slots, positions, q, b);
            assertThat(a.mismatch(b)).as("%s n=%d: split group == whole group", type, n).isEqualTo(-1L);

            for (int i = 0; i < n; i++) {
                for (int h = 0; h < HEADS; h++) {
                    int g = h / (HEADS / KV_HEADS), t1 = positions[i] + 1;
                    double[] w = new double[t1];
                    double max = Double.NEGATIVE_INFINITY, z = 0;
                    for (int t = 0; t < t1; t++) {
                        double d = 0;
                        for (int j = 0; j < HD; j++) d += q.getAtIndex(F, ((long) i * HEADS + h) * HD + j) * cached(cache, cache.k(0), cache.kOffset(slots[i], g, t) + j);
                        w[t] = d * scale;
                        max = Math.max(max, w[t]);
                    }
                    for (int t = 0; t < t1; t++) z += w[t] = Math.exp(w[t] - max);
                    for (int j = 0; j < HD; j++) {
                        double o = 0;
                        for (int t = 0; t < t1; t++) o += w[t] / z * cached(cache, cache.v(0), cache.vOffset(slots[i], g, t) + j);
                        assertThat((double) a.getAtIndex(F, ((long) i * HEADS + h) * HD + j)).as("%s token %d head %d", type, i, h)
                                .isCloseTo(o, org.assertj.core.data.Offset.offset(1e-5));
                    }
                }
            }
        }
    }

    private static double cached(KvCache c, MemorySegment seg, long at) {
        if (c.type() == KvCache.Type.F32) return seg.getAtIndex(F, at);
        return io.moe4j.tensor.quant.Fp16.decode(seg.getAtIndex(ValueLayout.JAVA_SHORT, at));
    }
}
