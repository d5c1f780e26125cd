package io.moe4j.kernel.gemm;

import io.moe4j.parallel.WorkerPool;
import io.moe4j.testutil.GemmOperands;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** SimdGemm against the float64 product and the scalar reference, for every vector width it supports. */
class SimdGemmTest {
    private static final int[] AWKWARD = {1, 7, 13, 31, 33};
    private static WorkerPool pool1, pool2, pool3;

    @BeforeAll
    static void pools() {
        pool1 = new WorkerPool(1);
        pool2 = new WorkerPool(2);
        pool3 = new WorkerPool(3);
    }

    @AfterAll
    static void closePools() {
        pool1.close();
        pool2.close();
        pool3.close();
    }

    static Stream<Integer> widths() { return Stream.of(128, 256, 512); }

    static VectorSpecies<Float> species(int bits) {
        return switch (bits) {
            case 128 -> FloatVector.SPECIES_128;
            case 256 -> FloatVector.SPECIES_256;
            case 512 -> FloatVector.SPECIES_512;
            default -> throw new IllegalArgumentException();
        };
    }

    /** Every (M, N, K) from the awkward sizes: the tiles' edges in every combination. */
    @ParameterizedTest(name = "{0}-bit")
    @MethodSource("widths")
    void awkwardSizesAllForms(int bits) {
        SimdGemm gemm = new SimdGemm(species(bits));
        long seed = 0;
        for (int m : AWKWARD) for (int n : AWKWARD) for (int k : AWKWARD) {
            for (int form = 0; form < 4; form++) {
                seed++;
                check(gemm, pool2, form, m, n, k, (int) (seed % 3), seed % 2 == 0, seed % 5 == 0, seed);
            }
        }
    }

    static Stream<Arguments> largerShapes() {
        List<Arguments> out = new ArrayList<>();
        int[][] shapes = {
                {255, 33, 255}, {7, 255, 255}, {255, 255, 1},
                {4098, 7, 13}, {13, 4098, 7}, {7, 13, 4098},   // 4098: many tiles, many KC blocks
                {64, 600, 300},                                 // MoE-like row count, K crossing one KC boundary
        };
        for (int bits : new int[] {256, 512}) {
            for (int[] s : shapes) {
                for (int form = 0; form < 4; form++) out.add(Arguments.of(bits, s[0], s[1], s[2], form));
            }
        }
        return out.stream();
    }

    @ParameterizedTest(name = "{0}-bit m={1} n={2} k={3} form={4}")
    @MethodSource("largerShapes")
    void largerShapes(int bits, int m, int n, int k, int form) {
        check(new SimdGemm(species(bits)), pool2, form, m, n, k, 2, form % 2 == 1, form >= 2, 31L * m + n + k);
    }

    /**
     * Tiny block sizes (KC = 16, NC = one or two panels, MC = 2 panels, A block of 4 K blocks) so that small operands
     * go through several A blocks in M and in K, several column tasks and row chunks, and partial blocks of each.
     */
    @ParameterizedTest(name = "{0}-bit")
    @MethodSource("widths")
    void everyBlockingLoopWithSmallBlocks(int bits) {
        VectorSpecies<Float> s = species(bits);
        SimdGemm gemm = new SimdGemm(s, 16, 2 * s.length() * 2, 2 * 8, 4 * 16 * 16);
        int[][] shapes = {{37, 29, 100}, {16, 64, 64}, {70, 9, 257}, {3, 100, 65}};
        long seed = 100;
        for (int[] sh : shapes) {
            for (int form = 0; form < 4; form++) {
                seed++;
                for (WorkerPool pool : new WorkerPool[] {pool1, pool3}) {
                    check(gemm, pool, form, sh[0], sh[1], sh[2], 1, seed % 2 == 0, seed % 3 == 0, seed);
                }
            }
        }
    }

    /** Full-size shapes with M and K beyond one default A block (M > MC, K > KB). Slow: the references are scalar. */
    @ParameterizedTest(name = "form={0}")
    @ValueSource(ints = {0, 1, 2, 3})
    @Tag("slow")
    void beyondDefaultBlocks(int form) {
        check(new SimdGemm(), pool2, form, 1100, 9, 2100, 1, form % 2 == 0, false, form);
        check(new SimdGemm(), pool2, form, 255, 255, 255, 0, form % 2 == 1, true, form);
    }

    @Test
    void preferredSpeciesNoArgConstructor() {
        SimdGemm gemm = new SimdGemm();
        assertThat(gemm.name()).startsWith("simd-").contains("@" + FloatVector.SPECIES_PREFERRED.vectorBitSize());
        for (int form = 0; form < 4; form++) check(gemm, pool2, form, 33, 255, 31, 1, form == 1, true, form);
    }

    /**
     * Runs one GEMM and compares every element with the float64 product (tolerance scaled by K: the sums run in a
     * different order) and with ScalarGemm, and checks that nothing outside C moved.
     */
    private static void check(Gemm gemm, WorkerPool pool, int form, int m, int n, int k, int pad, boolean accumulate,
                              boolean heap, long seed) {
        boolean ta = (form & 2) != 0, tb = (form & 1) != 0;
        try (Arena arena = Arena.ofShared()) {
            GemmOperands o = new GemmOperands(arena, heap, ta, tb, m, n, k, pad, seed);
            run(gemm, pool, o, accumulate);
            float[] simd = o.cSnapshot();
            // Operands lie in [-1, 1]: |error| ≤ K·u·Σ|a·b| in the worst case, far less in practice.
            double tol = 1e-5 * (k + 1) + 1e-6;
            String what = gemm.name() + " " + (ta ? "T" : "N") + (tb ? "T" : "N") + " m=" + m + " n=" + n + " k=" + k
                    + " pad=" + pad + " acc=" + accumulate;
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < n; j++) {
                    double want = o.expected(i, j, accumulate);
                    float got = o.c(i, j);
                    if (Math.abs(got - want) > tol) {
                        throw new AssertionError(what + ": C[" + i + "][" + j + "] = " + got + ", float64 says " + want);
                    }
                }
            }
            o.resetC();
            run(new ScalarGemm(), pool, o, accumulate);
            float[] scalar = o.cSnapshot();
            for (int idx = 0; idx < simd.length; idx++) {
                int rel = (int) (idx - o.cOff);
                boolean inC = rel >= 0 && rel / o.ldc < m && rel % o.ldc < n;
                if (inC) {
                    assertThat((double) simd[idx]).as(what + " vs scalar at %d", idx).isCloseTo(scalar[idx],
                            org.assertj.core.data.Offset.offset(2 * tol));
                } else {
                    assertThat(Float.floatToRawIntBits(simd[idx])).as(what + ": wrote outside C at %d", idx)
                            .isEqualTo(Float.floatToRawIntBits(scalar[idx]));
                }
            }
        }
    }

    private static void run(Gemm gemm, WorkerPool pool, GemmOperands o, boolean accumulate) {
        gemm.sgemm(pool, o.transA, o.transB, o.m, o.n, o.k, o.a, o.aOff, o.lda, o.b, o.bOff, o.ldb,
                o.c, o.cOff, o.ldc, accumulate);
    }

    /** Work is split over tiles of C only, so 1, 2 or 3 threads (and any vector width) give the same bits. */
    @ParameterizedTest(name = "form={0}")
    @ValueSource(ints = {0, 1, 2, 3})
    void bitIdenticalForAnyThreadCountAndWidth(int form) {
        int[][] shapes = {{64, 520, 300}, {300, 40, 513}, {5, 300, 257}};
        for (int[] s : shapes) {
            try (Arena arena = Arena.ofShared()) {
                GemmOperands o = new GemmOperands(arena, false, (form & 2) != 0, (form & 1) != 0, s[0], s[1], s[2], 1, form);
                float[] first = null;
                for (int bits : new int[] {512, 256, 128}) {
                    SimdGemm gemm = new SimdGemm(species(bits));
                    for (WorkerPool pool : new WorkerPool[] {pool1, pool2, pool3}) {
                        o.resetC();
                        run(gemm, pool, o, true);
                        float[] got = o.cSnapshot();
                        if (first == null) first = got;
                        assertThat(Arrays.equals(first, got))
                                .as("%s with %d threads, shape %s", gemm.name(), pool.threads(), Arrays.toString(s))
                                .isTrue();
                    }
                }
            }
        }
    }

    @Test
    void kZeroClearsCOrLeavesItWhenAccumulating() {
        SimdGemm gemm = new SimdGemm();
        try (Arena arena = Arena.ofShared()) {
            GemmOperands o = new GemmOperands(arena, false, false, true, 13, 31, 0, 2, 7);
            float[] before = o.cSnapshot();
            run(gemm, pool2, o, true);
            assertThat(o.cSnapshot()).isEqualTo(before);
            run(gemm, pool2, o, false);
            for (int i = 0; i < 13; i++) for (int j = 0; j < 31; j++) assertThat(o.c(i, j)).isZero();
            float[] after = o.cSnapshot();
            for (int idx = 0; idx < after.length; idx++) {
                int rel = (int) (idx - o.cOff);
                if (!(rel >= 0 && rel / o.ldc < 13 && rel % o.ldc < 31)) assertThat(after[idx]).isEqualTo(before[idx]);
            }
        }
    }

    @Test
    void emptyMOrNTouchesNothing() {
        SimdGemm gemm = new SimdGemm();
        try (Arena arena = Arena.ofShared()) {
            for (int[] s : new int[][] {{0, 5, 7}, {5, 0, 7}, {0, 0, 0}}) {
                GemmOperands o = new GemmOperands(arena, false, false, false, s[0], s[1], s[2], 1, 3);
                float[] before = o.cSnapshot();
                run(gemm, pool2, o, false);
                assertThat(o.cSnapshot()).isEqualTo(before);
            }
        }
    }

    @Test
    void accumulateAddsToExistingC() {
        SimdGemm gemm = new SimdGemm();
        float[] a = {1, 2, 3, 4};          // 2×2
        float[] b = {5, 6, 7, 8};          // 2×2
        float[] c = {100, 200, 300, 400};
        gemm.nn(pool1, 2, 2, 2, MemorySegment.ofArray(a), 0, 2, MemorySegment.ofArray(b), 0, 2,
                MemorySegment.ofArray(c), 0, 2, true);
        assertThat(c).containsExactly(119, 222, 343, 450);
        gemm.nn(pool1, 2, 2, 2, MemorySegment.ofArray(a), 0, 2, MemorySegment.ofArray(b), 0, 2,
                MemorySegment.ofArray(c), 0, 2, false);
        assertThat(c).containsExactly(19, 22, 43, 50);
    }

    @Test
    void operandsOutsideTheirSegmentsAreRejected() {
        SimdGemm gemm = new SimdGemm();
        MemorySegment small = MemorySegment.ofArray(new float[10]);
        MemorySegment big = MemorySegment.ofArray(new float[100]);
        assertThatThrownBy(() -> gemm.nt(pool1, 4, 4, 4, small, 0, 4, big, 0, 4, big, 0, 4, false))
                .isInstanceOf(IndexOutOfBoundsException.class).hasMessageContaining("A:");
        assertThatThrownBy(() -> gemm.nn(pool1, 4, 4, 4, big, 0, 4, big, 90, 4, big, 0, 4, false))
                .isInstanceOf(IndexOutOfBoundsException.class).hasMessageContaining("B:");
        assertThatThrownBy(() -> gemm.tn(pool1, 4, 4, 4, big, 0, 4, big, 0, 4, small, 0, 4, false))
                .isInstanceOf(IndexOutOfBoundsException.class).hasMessageContaining("C:");
        assertThatThrownBy(() -> gemm.nn(pool1, 4, 4, 4, big, 0, 3, big, 0, 4, big, 0, 4, false))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("leading dimension");
        assertThatThrownBy(() -> gemm.nn(pool1, -1, 4, 4, big, 0, 4, big, 0, 4, big, 0, 4, false))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("negative");
        assertThatThrownBy(() -> gemm.nn(pool1, 4, 4, 4, big, -1, 4, big, 0, 4, big, 0, 4, false))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("negative offset");
    }

    @Test
    void unsupportedWidthIsRejected() {
        assertThatThrownBy(() -> new SimdGemm(FloatVector.SPECIES_64)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("64-bit");
    }

    /** Two threads calling one instance at once each get their own packing buffers. */
    @Test
    void concurrentCallersDoNotShareBuffers() throws Exception {
        SimdGemm gemm = new SimdGemm();
        Thread[] threads = new Thread[2];
        Throwable[] failures = new Throwable[2];
        for (int t = 0; t < 2; t++) {
            int id = t;
            threads[t] = new Thread(() -> {
                try (WorkerPool own = new WorkerPool(1)) {
                    for (int rep = 0; rep < 5; rep++) check(gemm, own, id, 40 + id, 70, 300, 1, false, false, rep);
                } catch (Throwable e) {
                    failures[id] = e;
                }
            });
            threads[t].start();
        }
        for (Thread t : threads) t.join();
        assertThat(failures).containsOnlyNulls();
    }
}
