package io.moe4j.kernel.row;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import static io.moe4j.kernel.row.RowTestData.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.data.Offset.offset;

/**
 * SIMD against the scalar reference for every {@link RowOps} method, at 128/256/512-bit and preferred widths, over
 * awkward lengths, odd (unaligned) offsets and the in-place aliasing each method allows. Every segment is compared
 * whole, padding included, so a write outside the row fails too.
 */
class RowOpsSimdTest {
    private final Arena arena = Arena.ofConfined();
    private final ScalarRowOps scalar = new ScalarRowOps();

    @AfterEach
    void close() { arena.close(); }

    /** One method call on buffers b[0..] at float offsets off[0..]; returns the method's float result or 0. */
    interface Op {
        float run(RowOps ops, int n, MemorySegment[] b, long[] off);
    }

    /**
     * tol = 0 means bit-exact; otherwise normwise relative. {@code probabilities}: buffer 0 holds a probability
     * vector (a softmax output), as the softmax backward assumes.
     */
    record Case(String name, int buffers, double tol, boolean probabilities, Op op) {
        Case(String name, int buffers, double tol, Op op) { this(name, buffers, tol, false, op); }
        @Override public String toString() { return name; }
    }

    static final double EXACT = 0, ARITH = 1e-6, TRANSC = 1e-5;

    static List<Case> cases() {
        List<Case> c = new ArrayList<>();
        c.add(new Case("axpy", 2, EXACT, (o, n, b, f) -> { o.axpy(n, 0.37f, b[0], f[0], b[1], f[1]); return 0; }));
        c.add(new Case("scale", 1, EXACT, (o, n, b, f) -> { o.scale(n, -1.7f, b[0], f[0]); return 0; }));
        c.add(new Case("add", 3, EXACT, (o, n, b, f) -> { o.add(n, b[0], f[0], b[1], f[1], b[2], f[2]); return 0; }));
        c.add(new Case("add out=x", 2, EXACT, (o, n, b, f) -> { o.add(n, b[0], f[0], b[1], f[1], b[0], f[0]); return 0; }));
        c.add(new Case("add out=y", 2, EXACT, (o, n, b, f) -> { o.add(n, b[0], f[0], b[1], f[1], b[1], f[1]); return 0; }));
        c.add(new Case("rmsnorm", 3, ARITH, (o, n, b, f) -> o.rmsnorm(n, b[0], f[0], b[1], f[1], 1e-5f, b[2], f[2])));
        c.add(new Case("rmsnorm in place", 2, ARITH, (o, n, b, f) -> o.rmsnorm(n, b[0], f[0], b[1], f[1], 1e-5f, b[0], f[0])));
        c.add(new Case("rmsnormBackward", 5, ARITH, (o, n, b, f) -> {
            o.rmsnormBackward(n, b[0], f[0], b[1], f[1], b[2], f[2], 0.8f, b[3], f[3], b[4], f[4]);
            return 0;
        }));
        c.add(new Case("softmax", 1, TRANSC, (o, n, b, f) -> { o.softmax(n, b[0], f[0]); return 0; }));
        c.add(new Case("softmaxBackward", 3, ARITH, true, (o, n, b, f) -> { o.softmaxBackward(n, b[0], f[0], b[1], f[1], b[2], f[2]); return 0; }));
        c.add(new Case("softmaxBackward dx=dy", 2, ARITH, true, (o, n, b, f) -> { o.softmaxBackward(n, b[0], f[0], b[1], f[1], b[1], f[1]); return 0; }));
        c.add(new Case("silu", 2, TRANSC, (o, n, b, f) -> { o.silu(n, b[0], f[0], b[1], f[1]); return 0; }));
        c.add(new Case("silu in place", 1, TRANSC, (o, n, b, f) -> { o.silu(n, b[0], f[0], b[0], f[0]); return 0; }));
        c.add(new Case("siluBackward", 3, TRANSC, (o, n, b, f) -> { o.siluBackward(n, b[0], f[0], b[1], f[1], b[2], f[2]); return 0; }));
        c.add(new Case("swiglu", 3, TRANSC, (o, n, b, f) -> { o.swiglu(n, b[0], f[0], b[1], f[1], b[2], f[2]); return 0; }));
        c.add(new Case("swiglu out=gate", 2, TRANSC, (o, n, b, f) -> { o.swiglu(n, b[0], f[0], b[1], f[1], b[0], f[0]); return 0; }));
        c.add(new Case("swiglu out=up", 2, TRANSC, (o, n, b, f) -> { o.swiglu(n, b[0], f[0], b[1], f[1], b[1], f[1]); return 0; }));
        c.add(new Case("swigluBackward", 5, TRANSC, (o, n, b, f) -> {
            o.swigluBackward(n, b[0], f[0], b[1], f[1], b[2], f[2], b[3], f[3], b[4], f[4]);
            return 0;
        }));
        c.add(new Case("swigluBackward over inputs", 3, TRANSC, (o, n, b, f) -> {
            o.swigluBackward(n, b[0], f[0], b[1], f[1], b[2], f[2], b[0], f[0], b[1], f[1]);
            return 0;
        }));
        c.add(new Case("gelu", 2, TRANSC, (o, n, b, f) -> { o.gelu(n, b[0], f[0], b[1], f[1]); return 0; }));
        c.add(new Case("gelu in place", 1, TRANSC, (o, n, b, f) -> { o.gelu(n, b[0], f[0], b[0], f[0]); return 0; }));
        c.add(new Case("geluBackward", 3, TRANSC, (o, n, b, f) -> { o.geluBackward(n, b[0], f[0], b[1], f[1], b[2], f[2]); return 0; }));
        c.add(new Case("geglu", 3, TRANSC, (o, n, b, f) -> { o.geglu(n, b[0], f[0], b[1], f[1], b[2], f[2]); return 0; }));
        c.add(new Case("geglu out=gate", 2, TRANSC, (o, n, b, f) -> { o.geglu(n, b[0], f[0], b[1], f[1], b[0], f[0]); return 0; }));
        c.add(new Case("geglu out=up", 2, TRANSC, (o, n, b, f) -> { o.geglu(n, b[0], f[0], b[1], f[1], b[1], f[1]); return 0; }));
        c.add(new Case("gegluBackward", 5, TRANSC, (o, n, b, f) -> {
            o.gegluBackward(n, b[0], f[0], b[1], f[1], b[2], f[2], b[3], f[3], b[4], f[4]);
            return 0;
        }));
        c.add(new Case("relu", 2, EXACT, (o, n, b, f) -> { o.relu(n, b[0], f[0], b[1], f[1]); return 0; }));
        c.add(new Case("relu in place", 1, EXACT, (o, n, b, f) -> { o.relu(n, b[0], f[0], b[0], f[0]); return 0; }));
        c.add(new Case("reluBackward", 3, EXACT, (o, n, b, f) -> { o.reluBackward(n, b[0], f[0], b[1], f[1], b[2], f[2]); return 0; }));
        return c;
    }

    static Stream<Arguments> implsAndCases() {
        return simdImpls().stream().flatMap(s -> cases().stream().map(c -> Arguments.of(s, c)));
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("implsAndCases")
    void matchesScalar(SimdRowOps simd, Case c) {
        for (int n : LENGTHS) {
            Random r = new Random(31L * n + c.name().hashCode());
            MemorySegment[] a = new MemorySegment[c.buffers()], b = new MemorySegment[c.buffers()];
            long[] off = new long[c.buffers()];
            for (int k = 0; k < c.buffers(); k++) {
                off[k] = 1 + 2L * k; // odd float offsets: no operand is vector-aligned
                float[] v = uniform(r, n, -6f, 6f);
                if (k == 0 && c.probabilities()) v = probabilities(r, n);
                a[k] = segmentWith(arena, r, v, off[k]);
                b[k] = copy(arena, a[k]);
            }
            float expected = c.op().run(scalar, n, a, off);
            float actual = c.op().run(simd, n, b, off);
            String what = simd.name() + " " + c.name() + " n=" + n;
            if (c.tol() == EXACT) {
                assertThat(actual).as(what + " result").isEqualTo(expected);
            } else {
                assertThat((double) actual).as(what + " result").isCloseTo(expected, offset(c.tol() * Math.abs(expected)));
            }
            for (int k = 0; k < c.buffers(); k++) {
                if (c.tol() == EXACT) {
                    assertExact(what + " buffer " + k, all(b[k]), all(a[k]));
                } else {
                    assertClose(what + " buffer " + k, all(b[k]), all(a[k]), c.tol());
                }
            }
        }
    }

    static float[] probabilities(Random r, int n) {
        float[] p = uniform(r, n, 0f, 1f);
        float sum = 0;
        for (float v : p) sum += v;
        for (int i = 0; i < n; i++) p[i] /= sum;
        return p;
    }

    static Stream<SimdRowOps> simd() { return simdImpls().stream(); }

    /** Reductions in different orders: compare against Σ|x·y|, the scale of their rounding errors. */
    @ParameterizedTest
    @MethodSource("simd")
    void dot(SimdRowOps simd) {
        for (int n : LENGTHS) {
            Random r = new Random(n);
            MemorySegment x = segmentWith(arena, r, uniform(r, n, -3f, 3f), 3);
            MemorySegment y = segmentWith(arena, r, uniform(r, n, -3f, 3f), 5);
            double abs = 0;
            for (int i = 0; i < n; i++) abs += Math.abs((double) x.getAtIndex(F, 3 + i) * y.getAtIndex(F, 5 + i));
            float expected = scalar.dot(n, x, 3, y, 5);
            assertThat((double) simd.dot(n, x, 3, y, 5)).as(simd.name() + " n=" + n)
                    .isCloseTo(expected, offset(1e-6 * abs));
        }
    }

    /** Softmax on a realistic row (large spread, one dominant logit) and rmsnorm on large-magnitude input. */
    @ParameterizedTest
    @MethodSource("simd")
    void rmsnormAndSoftmaxOnWideRanges(SimdRowOps simd) {
        for (int n : LENGTHS) {
            Random r = new Random(7 * n);
            float[] v = uniform(r, n, -80f, 30f);
            v[n / 2] = 60f;
            MemorySegment a = segmentWith(arena, r, v, 1), b = copy(arena, a);
            scalar.softmax(n, a, 1);
            simd.softmax(n, b, 1);
            assertClose(simd.name() + " softmax n=" + n, all(b), all(a), TRANSC);

            float[] big = uniform(r, n, -3e4f, 3e4f);
            MemorySegment x = segmentWith(arena, r, big, 3), w = segmentWith(arena, r, uniform(r, n, 0.5f, 1.5f), 0);
            MemorySegment o1 = segment(arena, n), o2 = segment(arena, n);
            float r1 = scalar.rmsnorm(n, x, 3, w, 0, 1e-6f, o1, 0);
            float r2 = simd.rmsnorm(n, x, 3, w, 0, 1e-6f, o2, 0);
            assertThat((double) r2).as(simd.name() + " rstd n=" + n).isCloseTo(r1, offset(1e-6 * r1));
        }
    }

    @ParameterizedTest
    @MethodSource("simd")
    void ropeIsExact(SimdRowOps simd) {
        int[][] shapes = {{2, 2}, {8, 8}, {34, 34}, {64, 64}, {128, 128}, {128, 64}, {80, 32}, {96, 0}, {6, 4}};
        for (int[] sh : shapes) {
            int headDim = sh[0], rotDim = sh[1], nHeads = 3;
            RopeTable t = new RopeTable(40, rotDim, 10000);
            for (boolean neox : new boolean[]{false, true}) {
                for (boolean inverse : new boolean[]{false, true}) {
                    Random r = new Random(headDim * 131 + rotDim);
                    MemorySegment a = segmentWith(arena, r, uniform(r, nHeads * headDim, -2f, 2f), 7), b = copy(arena, a);
                    scalar.rope(nHeads, headDim, rotDim, a, 7, t.cos(), t.sin(), t.offset(37), neox, inverse);
                    simd.rope(nHeads, headDim, rotDim, b, 7, t.cos(), t.sin(), t.offset(37), neox, inverse);
                    assertExact(simd.name() + " rope head " + headDim + " rot " + rotDim + " neox " + neox + " inverse " + inverse,
                            all(b), all(a));
                }
            }
        }
    }

    @ParameterizedTest
    @MethodSource("simd")
    void topKIsExact(SimdRowOps simd) {
        for (int n : LENGTHS) {
            Random r = new Random(n + 5);
            float[] v = new float[n];
            for (int i = 0; i < n; i++) v[i] = r.nextInt(10) == 0 ? Float.NaN : r.nextInt(9) - 4; // many ties
            MemorySegment x = segmentWith(arena, r, v, 1);
            for (int k : new int[]{1, Math.min(n, 8), n}) {
                int[] i1 = new int[k + 2], i2 = new int[k + 2];
                float[] v1 = new float[k + 1], v2 = new float[k + 1];
                scalar.topK(n, k, x, 1, i1, 2, v1, 1);
                simd.topK(n, k, x, 1, i2, 2, v2, 1);
                assertThat(i2).as(simd.name() + " n=" + n + " k=" + k).containsExactly(i1);
                assertExact(simd.name() + " vals n=" + n + " k=" + k, v2, v1);
            }
        }
    }

    @ParameterizedTest
    @MethodSource("simd")
    void gatherAndScatterAreExact(SimdRowOps simd) {
        for (int d : new int[]{1, 7, 33, 255}) {
            for (int count : new int[]{1, 7, 33}) {
                Random r = new Random(d * 1000 + count);
                int srcRows = 11, ld = d + 3;
                int[] rows = new int[count + 1];
                for (int i = 0; i < rows.length; i++) rows[i] = r.nextInt(srcRows); // repeats included
                float[] w = uniform(r, count + 2, -2f, 2f);
                String what = simd.name() + " d=" + d + " count=" + count;

                MemorySegment src = segmentWith(arena, r, uniform(r, srcRows * ld, -3f, 3f), 1);
                MemorySegment g1 = segmentWith(arena, r, new float[count * (d + 1)], 2), g2 = copy(arena, g1);
                scalar.gatherRows(count, d, src, 1, ld, rows, 1, g1, 2, d + 1);
                simd.gatherRows(count, d, src, 1, ld, rows, 1, g2, 2, d + 1);
                assertExact(what + " gather", all(g2), all(g1));

                for (float[] weights : new float[][]{w, null}) {
                    MemorySegment s1 = segmentWith(arena, r, uniform(r, srcRows * ld, -3f, 3f), 3), s2 = copy(arena, s1);
                    scalar.scatterAddRows(count, d, g1, 2, d + 1, rows, 1, weights, 2, s1, 3, ld);
                    simd.scatterAddRows(count, d, g1, 2, d + 1, rows, 1, weights, 2, s2, 3, ld);
                    assertExact(what + " scatterAdd weights " + (weights != null), all(s2), all(s1));

                    MemorySegment d1 = segmentWith(arena, r, uniform(r, count * (d + 1), -3f, 3f), 2), d2 = copy(arena, d1);
                    float[] dw1 = uniform(r, count + 3, -1f, 1f), dw2 = dw1.clone();
                    scalar.scatterAddRowsBackward(count, d, s1, 3, ld, rows, 1, weights, 2, g1, 2, d + 1, d1, 2, d + 1, dw1, 3);
                    simd.scatterAddRowsBackward(count, d, s1, 3, ld, rows, 1, weights, 2, g1, 2, d + 1, d2, 2, d + 1, dw2, 3);
                    assertExact(what + " scatterAddBackward dSrc", all(d2), all(d1));
                    assertClose(what + " scatterAddBackward dWeights", dw2, dw1, ARITH);
                }
            }
        }
    }
}
