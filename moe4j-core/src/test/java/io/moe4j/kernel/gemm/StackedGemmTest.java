package io.moe4j.kernel.gemm;

import io.moe4j.parallel.WorkerPool;
import jdk.incubator.vector.VectorSpecies;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * {@link Gemm#sgemmStacked} (B and C in two pieces): SimdGemm's one-pass version against the scalar product of the
 * assembled operands, and bit for bit against the same GEMM run as separate unsplit calls (the interface's default),
 * over awkward sizes and splits that straddle tiles, panels and K blocks.
 */
class StackedGemmTest {
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.nativeOrder());
    private static WorkerPool pool1, pool2;

    @BeforeAll
    static void pools() {
        pool1 = new WorkerPool(1);
        pool2 = new WorkerPool(2);
    }

    @AfterAll
    static void closePools() {
        pool1.close();
        pool2.close();
    }

    /** The interface's default: the stacked product as plain sgemm calls of the wrapped implementation. */
    private record Unfused(Gemm inner) implements Gemm {
        @Override
        public void sgemm(WorkerPool pool, boolean transA, boolean transB, int m, int n, int k, MemorySegment a, long aOff,
                          int lda, MemorySegment b, long bOff, int ldb, MemorySegment c, long cOff, int ldc, boolean acc) {
            inner.sgemm(pool, transA, transB, m, n, k, a, aOff, lda, b, bOff, ldb, c, cOff, ldc, acc);
        }

        @Override
        public String name() { return "unfused " + inner.name(); }
    }

    @ParameterizedTest(name = "{0}-bit")
    @ValueSource(ints = {128, 256, 512})
    void matchesAssembledProductAndSeparateCalls(int bits) {
        VectorSpecies<Float> s = SimdGemmTest.species(bits);
        int kc = 16;
        SimdGemm[] gemms = {new SimdGemm(s), new SimdGemm(s, kc, 2 * s.length() * 2, 2 * 8, 4 * 16 * 16)};
        int[][] shapes = {{1, 1, 1}, {7, 13, 33}, {13, 70, 31}, {37, 29, 100}, {70, 9, 64}, {16, 64, 48}};
        long seed = 1;
        for (SimdGemm gemm : gemms) {
            int kBlock = gemm == gemms[0] ? SimdGemm.KC : kc;
            for (int[] sh : shapes) {
                int m = sh[0], n = sh[1], k = sh[2];
                for (int form = 0; form < 4; form++) {
                    boolean ta = (form & 2) != 0, tb = (form & 1) != 0;
                    int bRows = tb ? n : k;
                    for (int bSplit : new int[]{0, 1, bRows / 2, 16, 32, bRows, bRows + 5}) {
                        for (int cSplit : new int[]{m / 2, 3, m, 0}) {
                            seed++;
                            boolean acc = seed % 2 == 0;
                            WorkerPool pool = seed % 3 == 0 ? pool1 : pool2;
                            float[] fused = run(gemm, pool, ta, tb, m, n, k, bSplit, cSplit, acc, seed, true);
                            float[] ref = run(new ScalarGemm(), pool1, ta, tb, m, n, k, bSplit, cSplit, acc, seed, false);
                            String what = gemm.name() + " kc=" + kBlock + " form=" + form + " " + m + "x" + n + "x" + k
                                    + " bSplit=" + bSplit + " cSplit=" + cSplit + " acc=" + acc;
                            double tol = 2e-5 * (k + 1) + 1e-6;
                            for (int i = 0; i < fused.length; i++) {
                                if (Math.abs(fused[i] - ref[i]) > tol) {
                                    throw new AssertionError(what + ": element " + i + " = " + fused[i] + ", scalar " + ref[i]);
                                }
                            }
                            float[] sep = run(new Unfused(gemm), pool, ta, tb, m, n, k, bSplit, cSplit, acc, seed, true);
                            // along N or M, and along K at a K-block boundary, the one pass is the same arithmetic
                            if (tb || bSplit % kBlock == 0 || bSplit >= k) {
                                assertThat(Arrays.equals(fused, sep)).as(what + " bit-identical to separate calls").isTrue();
                            }
                            // the scalar reference's own default decomposition agrees with the assembled product
                            float[] refSplit = run(new ScalarGemm(), pool1, ta, tb, m, n, k, bSplit, cSplit, acc, seed, true);
                            for (int i = 0; i < fused.length; i++) {
                                if (Math.abs(refSplit[i] - ref[i]) > tol) {
                                    throw new AssertionError(what + ": scalar stacked " + refSplit[i] + " vs " + ref[i]);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    @Test
    void bitIdenticalForOneAndTwoThreads() {
        SimdGemm gemm = new SimdGemm();
        for (int form = 0; form < 4; form++) {
            boolean ta = (form & 2) != 0, tb = (form & 1) != 0;
            float[] one = run(gemm, pool1, ta, tb, 300, 520, 300, 260, 130, true, form, true);
            float[] two = run(gemm, pool2, ta, tb, 300, 520, 300, 260, 130, true, form, true);
            assertThat(Arrays.equals(one, two)).as("form %d", form).isTrue();
        }
    }

    @Test
    void piecesOutsideTheirSegmentsAreRejected() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment big = arena.allocate(400), small = arena.allocate(16);
            Gemm gemm = new SimdGemm();
            // B2 holds 2 of B's 4 rows × 4: 32 bytes needed past offset 0, small has 16
            assertThatThrownBy(() -> gemm.sgemmStacked(pool1, false, true, 4, 4, 4, big, 0, 4, big, 0, small, 0, 2, 4,
                    big, 0, big, 0, 4, 4, false)).isInstanceOf(IndexOutOfBoundsException.class).hasMessageContaining("B2");
            assertThatThrownBy(() -> gemm.sgemmStacked(pool1, false, true, 4, 4, 4, big, 0, 4, big, 0, big, 0, 4, 4,
                    big, 0, small, 0, 1, 4, false)).isInstanceOf(IndexOutOfBoundsException.class).hasMessageContaining("C2");
            assertThatThrownBy(() -> gemm.sgemmStacked(pool1, false, true, 4, 4, 4, big, 0, 4, big, 0, big, 0, -1, 4,
                    big, 0, big, 0, 4, 4, false)).isInstanceOf(IllegalArgumentException.class);
        }
    }

    /**
     * One product with random operands (seeded): stacked into pieces when {@code stacked} (each piece in its own
     * segment, at an offset, with guard values around), else contiguous. Returns C assembled row by row (m × n).
     */
    private static float[] run(Gemm gemm, WorkerPool pool, boolean ta, boolean tb, int m, int n, int k, int bSplit,
                               int cSplit, boolean acc, long seed, boolean stacked) {
        SplittableRandom rng = new SplittableRandom(seed);
        int lda = (ta ? m : k) + 1, ldb = (tb ? k : n) + 2, ldc = n + 3;
        int aRows = ta ? k : m, bRows = tb ? n : k;
        // An automatic arena: thousands of small runs, and closing a shared arena costs a handshake with every thread.
        Arena arena = Arena.ofAuto();
        {
            MemorySegment a = filled(arena, (long) aRows * lda + 5, rng);
            float[] bAll = new float[bRows * ldb], cAll = new float[m * ldc];
            for (int i = 0; i < bAll.length; i++) bAll[i] = (float) (rng.nextDouble() * 2 - 1);
            for (int i = 0; i < cAll.length; i++) cAll[i] = (float) (rng.nextDouble() * 2 - 1);
            if (!stacked) {
                MemorySegment b = copy(arena, bAll, 0, bAll.length, 0), c = copy(arena, cAll, 0, cAll.length, 0);
                gemm.sgemm(pool, ta, tb, m, n, k, a, 5, lda, b, 0, ldb, c, 0, ldc, acc);
                return cOf(c, 0, 0, Integer.MAX_VALUE, c, 0, m, n, ldc);
            }
            int bs = Math.min(bSplit, bRows), cs = Math.min(cSplit, m);
            MemorySegment b1 = copy(arena, bAll, 0, bs * ldb, 7), b2 = copy(arena, bAll, bs * ldb, (bRows - bs) * ldb, 3);
            MemorySegment c1 = copy(arena, cAll, 0, cs * ldc, 2), c2 = copy(arena, cAll, cs * ldc, (m - cs) * ldc, 9);
            float[] guard1 = snapshot(c1), guard2 = snapshot(c2);
            gemm.sgemmStacked(pool, ta, tb, m, n, k, a, 5, lda, b1, 7, b2, 3, bSplit, ldb, c1, 2, c2, 9, cSplit, ldc, acc);
            // nothing outside C's pieces moved: padding columns and guards
            checkOutside(c1, guard1, 2, cs, n, ldc);
            checkOutside(c2, guard2, 9, m - cs, n, ldc);
            return cOf(c1, 2, cs, cSplit, c2, 9, m, n, ldc);
        }
    }

    private static void checkOutside(MemorySegment c, float[] before, long off, int rows, int n, int ldc) {
        for (int idx = 0; idx < before.length; idx++) {
            long rel = idx - off;
            boolean inC = rel >= 0 && rel / ldc < rows && rel % ldc < n;
            if (!inC) assertThat(c.getAtIndex(F, idx)).as("outside C at %d", idx).isEqualTo(before[idx]);
        }
    }

    private static float[] cOf(MemorySegment c1, long o1, int cs, int cSplit, MemorySegment c2, long o2, int m, int n, int ldc) {
        float[] out = new float[m * n];
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                out[i * n + j] = i < Math.min(cSplit, m) ? c1.getAtIndex(F, o1 + (long) i * ldc + j)
                        : c2.getAtIndex(F, o2 + (long) (i - cs) * ldc + j);
            }
        }
        return out;
    }

    private static MemorySegment filled(Arena arena, long n, SplittableRandom rng) {
        MemorySegment s = arena.allocate(n * 4, 64);
        for (long i = 0; i < n; i++) s.setAtIndex(F, i, (float) (rng.nextDouble() * 2 - 1));
        return s;
    }

    /** v[from, from+len) at float offset off of a new segment with 4 guard floats after it. */
    private static MemorySegment copy(Arena arena, float[] v, int from, int len, int off) {
        MemorySegment s = arena.allocate((long) (off + len + 4) * 4, 64);
        for (int i = 0; i < off + len + 4; i++) s.setAtIndex(F, i, -77f);
        for (int i = 0; i < len; i++) s.setAtIndex(F, off + i, v[from + i]);
        return s;
    }

    private static float[] snapshot(MemorySegment s) { return s.toArray(F); }
}
