package io.moe4j.infer;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The KV cache grows with use: memory for {@link KvCache#INITIAL_POSITIONS} at first, doubled by
 * {@link KvCache#reserve}, and every row stored before a growth reads back unchanged after it, in every slot, for
 * F32 and F16 and for the K-only (MLA) layout.
 */
class KvCacheTest {
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;

    @Test
    void rowsSurviveGrowthInEverySlot() {
        for (KvCache.Type type : KvCache.Type.values()) {
            for (int vRow : new int[]{6, 0}) rowsSurviveGrowth(type, vRow, vRow > 0 ? 3 : 1);
        }
    }

    /** Head-major layout: element j of a row is element j mod (row/heads) of head j / (row/heads). */
    private static void rowsSurviveGrowth(KvCache.Type type, int vRow, int heads) {
        int layers = 2, slots = 3, kRow = heads == 1 ? 5 : 9, capacity = 1000;
        int[] lengths = {700, 3, 301};   // slot 1 short, slot 0 past two doublings
        try (Arena arena = Arena.ofConfined();
             KvCache c = new KvCache(type, layers, slots, capacity, kRow, vRow, heads)) {
            assertThat(c.reserved()).isEqualTo(KvCache.INITIAL_POSITIONS);
            long initialBytes = c.byteSize();
            assertThat(initialBytes).isEqualTo((long) layers * slots * KvCache.INITIAL_POSITIONS * (kRow + vRow) * type.bytes);
            MemorySegment kSrc = arena.allocate(kRow * 4L), vSrc = arena.allocate(Math.max(1, vRow) * 4L);
            // fill position by position across the slots, growing when a position passes the reservation
            for (int pos = 0; pos < 700; pos++) {
                c.reserve(pos + 1);
                for (int s = 0; s < slots; s++) {
                    if (pos >= lengths[s]) continue;
                    for (int l = 0; l < layers; l++) {
                        fill(kSrc, kRow, l, s, pos, 0);
                        fill(vSrc, vRow, l, s, pos, 1);
                        c.store(l, s, pos, kSrc, 0, vSrc, 0);
                    }
                    c.setLength(s, pos + 1);
                }
            }
            assertThat(c.reserved()).isEqualTo(1000);   // 256 -> 512 -> 1000 (capped at the capacity)
            assertThat(c.byteSize()).isEqualTo(initialBytes * 1000 / KvCache.INITIAL_POSITIONS);
            for (int s = 0; s < slots; s++) {
                for (int pos = 0; pos < lengths[s]; pos++) {
                    for (int l = 0; l < layers; l++) {
                        for (int j = 0; j < kRow; j++) {
                            assertThat(read(c, c.k(l), c.kOffset(s, j / (kRow / heads), pos) + j % (kRow / heads))).as("K l%d s%d p%d", l, s, pos).isEqualTo(value(l, s, pos, 0, j));
                        }
                        if (vRow > 0) {
                            for (int j = 0; j < vRow; j++) {
                                assertThat(read(c, c.v(l), c.vOffset(s, j / (vRow / heads), pos) + j % (vRow / heads))).as("V l%d s%d p%d", l, s, pos).isEqualTo(value(l, s, pos, 1, j));
                            }
                        }
                    }
                }
            }
            assertThatThrownBy(() -> c.reserve(1001)).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("capacity 1000");
        }
    }

    @Test
    void smallCapacityIsAllocatedWhole() {
        try (KvCache c = new KvCache(KvCache.Type.F32, 1, 2, 40, 4)) {
            assertThat(c.reserved()).isEqualTo(40);
            assertThat(c.byteSize()).isEqualTo(2L * 40 * 8 * 4);
        }
    }

    @Test
    void storingPastTheReservationIsRefused() {
        try (Arena arena = Arena.ofConfined(); KvCache c = new KvCache(KvCache.Type.F32, 1, 1, 4096, 4)) {
            MemorySegment src = arena.allocate(16);
            assertThatThrownBy(() -> c.store(0, 0, KvCache.INITIAL_POSITIONS, src, 0, src, 0))
                    .isInstanceOf(IllegalStateException.class).hasMessageContaining("reserve");
        }
    }

    /** A value exactly representable in F16 (small integers / 8), distinct per (layer, slot, pos, k|v, j). */
    private static float value(int l, int s, int pos, int kv, int j) {
        return new SplittableRandom(((((l * 7L + s) * 1009 + pos) * 2 + kv) * 31 + j)).nextInt(-1024, 1024) / 8f;
    }

    private static void fill(MemorySegment dst, int n, int l, int s, int pos, int kv) {
        for (int j = 0; j < n; j++) dst.setAtIndex(F, j, value(l, s, pos, kv, j));
    }

    private static float read(KvCache c, MemorySegment seg, long at) {
        if (c.type() == KvCache.Type.F32) return seg.getAtIndex(F, at);
        MemorySegment one = Arena.ofAuto().allocate(4);
        KvCache.decodeF16(seg, at, 1, one, 0);
        return one.getAtIndex(F, 0);
    }
}
