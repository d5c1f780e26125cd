package io.moe4j.kernel.row;

import jdk.incubator.vector.FloatVector;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

/** Shared helpers for the row-kernel tests: off-heap rows at odd offsets, copies, and normwise comparisons. */
final class RowTestData {
    private RowTestData() {}

    static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;

    /** The awkward lengths every SIMD kernel is checked at: below, at and around vector widths, and large. */
    static final int[] LENGTHS = {1, 7, 13, 31, 33, 255, 4098};

    static List<SimdRowOps> simdImpls() {
        // 64-bit exercises the generic-width path (two lanes: many tails)
        return List.of(new SimdRowOps(FloatVector.SPECIES_64), new SimdRowOps(FloatVector.SPECIES_128),
                new SimdRowOps(FloatVector.SPECIES_256), new SimdRowOps(FloatVector.SPECIES_512), new SimdRowOps());
    }

    static List<RowOps> allImpls() {
        return List.of(new ScalarRowOps(), new SimdRowOps(FloatVector.SPECIES_256), new SimdRowOps());
    }

    static float[] uniform(Random r, int n, float lo, float hi) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = lo + (hi - lo) * r.nextFloat();
        return v;
    }

    static MemorySegment segment(Arena arena, long floats) {
        return arena.allocate(Math.max(1, floats) * Float.BYTES, 64);
    }

    /** A segment holding {@code v} at float offset {@code off}, with {@code off} leading and 5 trailing floats of noise. */
    static MemorySegment segmentWith(Arena arena, Random r, float[] v, long off) {
        MemorySegment s = segment(arena, off + v.length + 5);
        for (long i = 0; i < s.byteSize() / Float.BYTES; i++) s.setAtIndex(F, i, 100f + r.nextFloat());
        write(s, off, v);
        return s;
    }

    static void write(MemorySegment s, long off, float[] v) {
        MemorySegment.copy(v, 0, s, F, off * Float.BYTES, v.length);
    }

    static float[] read(MemorySegment s, long off, int n) {
        float[] v = new float[n];
        MemorySegment.copy(s, F, off * Float.BYTES, v, 0, n);
        return v;
    }

    static float[] all(MemorySegment s) {
        return read(s, 0, (int) (s.byteSize() / Float.BYTES));
    }

    static MemorySegment copy(Arena arena, MemorySegment s) {
        MemorySegment c = arena.allocate(s.byteSize(), 64);
        c.copyFrom(s);
        return c;
    }

    static double maxAbs(float[] v) {
        double m = 0;
        for (float x : v) m = Math.max(m, Math.abs(x));
        return m;
    }

    static double maxAbs(double[] v) {
        double m = 0;
        for (double x : v) m = Math.max(m, Math.abs(x));
        return m;
    }

    /** Bitwise equality (NaN equals NaN, −0 differs from +0). */
    static void assertExact(String what, float[] actual, float[] expected) {
        assertThat(actual.length).as(what + " length").isEqualTo(expected.length);
        for (int i = 0; i < actual.length; i++) {
            if (Float.floatToIntBits(actual[i]) != Float.floatToIntBits(expected[i])) {
                fail(what + "[" + i + "]: " + actual[i] + " != expected " + expected[i]);
            }
        }
    }

    /** Normwise: every |actual − expected| ≤ tol · max|expected| (ggml-style relative error of the whole row). */
    static void assertClose(String what, float[] actual, double[] expected, double tol) {
        assertThat(actual.length).as(what + " length").isEqualTo(expected.length);
        double bound = tol * Math.max(maxAbs(expected), 1e-30);
        for (int i = 0; i < actual.length; i++) {
            double err = Math.abs(actual[i] - expected[i]);
            if (!(err <= bound)) {
                fail(what + "[" + i + "]: " + actual[i] + " vs expected " + expected[i] + " (error " + err
                        + " > " + tol + " · max|expected| = " + bound + ")");
            }
        }
    }

    static void assertClose(String what, float[] actual, float[] expected, double tol) {
        double[] e = new double[expected.length];
        for (int i = 0; i < e.length; i++) e[i] = expected[i];
        assertClose(what, actual, e, tol);
    }

    static void assertClose(String what, double[] actual, double[] expected, double tol) {
        assertThat(actual.length).as(what + " length").isEqualTo(expected.length);
        double bound = tol * Math.max(maxAbs(expected), 1e-30);
        for (int i = 0; i < actual.length; i++) {
            double err = Math.abs(actual[i] - expected[i]);
            if (!(err <= bound)) {
                fail(what + "[" + i + "]: " + actual[i] + " vs expected " + expected[i] + " (error " + err + " > " + bound + ")");
            }
        }
    }

    static double[] toDouble(float[] v) {
        double[] d = new double[v.length];
        for (int i = 0; i < v.length; i++) d[i] = v[i];
        return d;
    }
}
