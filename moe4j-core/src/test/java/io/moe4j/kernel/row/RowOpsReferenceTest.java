package io.moe4j.kernel.row;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Comparator;
import java.util.Random;
import java.util.stream.IntStream;
import java.util.stream.Stream;

import static io.moe4j.kernel.row.RowTestData.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.data.Offset.offset;

/**
 * The kernels against independent double-precision formulas written here (not shared with the implementation),
 * and the semantic rules: top-k ordering (ties, NaN), RoPE pair conventions and partial rotation. Runs on the
 * scalar reference and on SIMD.
 */
class RowOpsReferenceTest {
    private final Arena arena = Arena.ofConfined();

    @AfterEach
    void close() { arena.close(); }

    static Stream<RowOps> impls() { return allImpls().stream(); }

    static final int N = 37;
    static final double TOL = 1e-6;

    static double sigmoid(double x) { return 1 / (1 + Math.exp(-x)); }
    static double gelu(double x) { return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x))); }

    private MemorySegment seg(float[] v) { return segmentWith(arena, new Random(1), v, 3); }

    @ParameterizedTest
    @MethodSource("impls")
    void blas1(RowOps ops) {
        Random r = new Random(1);
        float[] x = uniform(r, N, -3, 3), y = uniform(r, N, -3, 3);
        double[] axpy = new double[N], add = new double[N], scale = new double[N];
        double dot = 0;
        for (int i = 0; i < N; i++) {
            axpy[i] = 0.3 * (double) x[i] + y[i];
            add[i] = (double) x[i] + y[i];
            scale[i] = -1.5 * x[i];
            dot += (double) x[i] * y[i];
        }
        MemorySegment sx = seg(x), sy = seg(y), out = seg(new float[N]);
        assertThat((double) ops.dot(N, sx, 3, sy, 3)).isCloseTo(dot, offset(1e-5));
        ops.add(N, sx, 3, sy, 3, out, 3);
        assertClose("add", read(out, 3, N), add, TOL);
        ops.axpy(N, 0.3f, sx, 3, sy, 3);
        assertClose("axpy", read(sy, 3, N), axpy, TOL);
        ops.scale(N, -1.5f, sx, 3);
        assertClose("scale", read(sx, 3, N), scale, TOL);
    }

    @ParameterizedTest
    @MethodSource("impls")
    void rmsnorm(RowOps ops) {
        Random r = new Random(2);
        float[] x = uniform(r, N, -3, 3), w = uniform(r, N, 0.5f, 1.5f);
        double ss = 0;
        for (float v : x) ss += (double) v * v;
        double rstd = 1 / Math.sqrt(ss / N + 1e-5);
        double[] expected = new double[N];
        for (int i = 0; i < N; i++) expected[i] = x[i] * rstd * w[i];
        MemorySegment sx = seg(x);
        float got = ops.rmsnorm(N, sx, 3, seg(w), 3, 1e-5f, sx, 3); // in place
        assertThat((double) got).isCloseTo(rstd, offset(TOL * rstd));
        assertClose("rmsnorm", read(sx, 3, N), expected, TOL);
    }

    @ParameterizedTest
    @MethodSource("impls")
    void softmax(RowOps ops) {
        Random r = new Random(3);
        float[] x = uniform(r, N, -20, 20);
        x[5] = Float.NEGATIVE_INFINITY; // masked entries are allowed as long as one is finite
        double max = Double.NEGATIVE_INFINITY, sum = 0;
        for (float v : x) max = Math.max(max, v);
        double[] e = new double[N];
        for (int i = 0; i < N; i++) sum += e[i] = Math.exp(x[i] - max);
        for (int i = 0; i < N; i++) e[i] /= sum;
        MemorySegment sx = seg(x);
        ops.softmax(N, sx, 3);
        assertClose("softmax", read(sx, 3, N), e, TOL);
        assertThat(read(sx, 3, N)[5]).isZero();
    }

    @ParameterizedTest
    @MethodSource("impls")
    void activations(RowOps ops) {
        Random r = new Random(4);
        float[] x = uniform(r, N, -8, 8), up = uniform(r, N, -2, 2);
        x[0] = -90; x[1] = 90; // saturated sigmoid / tanh
        double[] silu = new double[N], gelu = new double[N], relu = new double[N], swiglu = new double[N], geglu = new double[N];
        for (int i = 0; i < N; i++) {
            silu[i] = x[i] * sigmoid(x[i]);
            gelu[i] = gelu(x[i]);
            relu[i] = Math.max(x[i], 0);
            swiglu[i] = silu[i] * up[i];
            geglu[i] = gelu[i] * up[i];
        }
        MemorySegment sx = seg(x), su = seg(up), out = seg(new float[N]);
        ops.silu(N, sx, 3, out, 3);
        assertClose("silu", read(out, 3, N), silu, TOL);
        ops.gelu(N, sx, 3, out, 3);
        assertClose("gelu", read(out, 3, N), gelu, TOL);
        ops.relu(N, sx, 3, out, 3);
        assertClose("relu", read(out, 3, N), relu, 0);
        ops.swiglu(N, sx, 3, su, 3, out, 3);
        assertClose("swiglu", read(out, 3, N), swiglu, TOL);
        ops.geglu(N, sx, 3, su, 3, out, 3);
        assertClose("geglu", read(out, 3, N), geglu, TOL);
    }

    // ---------------------------------------------------------------- top-k

    /** Descending by value, NaN last, ties (and NaNs among themselves) by lower index: the rule of MOE_METHODS §3.3. */
    static int[] sortedIndices(float[] v) {
        Comparator<Integer> byValue = (a, b) -> {
            boolean na = Float.isNaN(v[a]), nb = Float.isNaN(v[b]);
            if (na || nb) return na == nb ? 0 : (na ? 1 : -1);
            return v[a] == v[b] ? 0 : (v[a] > v[b] ? -1 : 1); // numeric: -0 ties +0
        };
        return IntStream.range(0, v.length).boxed().sorted(byValue.thenComparing(Comparator.naturalOrder()))
                .mapToInt(Integer::intValue).toArray();
    }

    @ParameterizedTest
    @MethodSource("impls")
    void topKAgainstSorting(RowOps ops) {
        Random r = new Random(5);
        for (int n : new int[]{1, 2, 8, 64, 200}) {
            for (int trial = 0; trial < 20; trial++) {
                float[] v = new float[n];
                for (int i = 0; i < n; i++) {
                    int kind = r.nextInt(12);
                    v[i] = switch (kind) {
                        case 0 -> Float.NaN;
                        case 1 -> Float.NEGATIVE_INFINITY;
                        case 2 -> Float.POSITIVE_INFINITY;
                        case 3 -> -0f;
                        default -> r.nextInt(7) - 3; // many exact ties, including +0 against -0
                    };
                }
                int[] order = sortedIndices(v);
                MemorySegment s = seg(v);
                for (int k : new int[]{0, 1, Math.min(n, 3), n}) {
                    int[] idx = new int[k];
                    float[] vals = new float[k];
                    ops.topK(n, k, s, 3, idx, 0, vals, 0);
                    assertThat(idx).as("n=%d k=%d %s", n, k, Arrays.toString(v)).containsExactly(Arrays.copyOf(order, k));
                    for (int j = 0; j < k; j++) assertThat(Float.floatToIntBits(vals[j])).isEqualTo(Float.floatToIntBits(v[idx[j]]));
                    int[] only = new int[k];
                    ops.topK(n, k, s, 3, only, 0, null, 0); // values are optional
                    assertThat(only).containsExactly(idx);
                }
            }
        }
    }

    @ParameterizedTest
    @MethodSource("impls")
    void topKRules(RowOps ops) {
        MemorySegment s = seg(new float[]{1, Float.NaN, 3, 3, Float.NEGATIVE_INFINITY, 1});
        int[] idx = new int[6];
        ops.topK(6, 6, s, 3, idx, 0, null, 0);
        assertThat(idx).containsExactly(2, 3, 0, 5, 4, 1);
        int[] one = new int[1];
        ops.topK(6, 1, s, 3, one, 0, null, 0);
        assertThat(one).containsExactly(2);
    }

    // ---------------------------------------------------------------- RoPE

    /** Direct formula: pair i rotated by angle pos·base^(−2i/rotDim), in double from scratch (no table). */
    static double[] ropeDirect(float[] x, int nHeads, int headDim, int rotDim, int pos, double base, boolean neox) {
        double[] out = toDouble(x);
        for (int h = 0; h < nHeads; h++) {
            for (int i = 0; i < rotDim / 2; i++) {
                double angle = pos * Math.pow(base, -2.0 * i / rotDim);
                int a = h * headDim + (neox ? i : 2 * i), b = h * headDim + (neox ? i + rotDim / 2 : 2 * i + 1);
                out[a] = x[a] * Math.cos(angle) - x[b] * Math.sin(angle);
                out[b] = x[a] * Math.sin(angle) + x[b] * Math.cos(angle);
            }
        }
        return out;
    }

    @ParameterizedTest
    @MethodSource("impls")
    void ropeBothConventions(RowOps ops) {
        Random r = new Random(6);
        int nHeads = 3, pos = 25;
        for (int[] sh : new int[][]{{64, 64}, {64, 32}, {10, 6}, {128, 128}}) {
            int headDim = sh[0], rotDim = sh[1];
            RopeTable t = new RopeTable(32, rotDim, 10000);
            for (boolean neox : new boolean[]{false, true}) {
                float[] x = uniform(r, nHeads * headDim, -2, 2);
                MemorySegment s = seg(x);
                ops.rope(nHeads, headDim, rotDim, s, 3, t.cos(), t.sin(), t.offset(pos), neox, false);
                float[] got = read(s, 3, x.length);
                assertClose("rope neox=" + neox + " " + headDim + "/" + rotDim, got,
                        ropeDirect(x, nHeads, headDim, rotDim, pos, 10000, neox), 2e-6);
                for (int h = 0; h < nHeads; h++) { // rotDim < headDim: the tail of every head is untouched
                    for (int j = rotDim; j < headDim; j++) assertThat(got[h * headDim + j]).isEqualTo(x[h * headDim + j]);
                }
            }
        }
    }

    @ParameterizedTest
    @MethodSource("impls")
    void ropeConventionsOnAKnownCase(RowOps ops) {
        // headDim 4, one head, position 1, base 1 → every pair turns by 1 radian.
        RopeTable t = new RopeTable(2, 4, 1.0);
        double c = Math.cos(1), s = Math.sin(1);
        MemorySegment llama = seg(new float[]{1, 0, 0, 1});
        ops.rope(1, 4, 4, llama, 3, t.cos(), t.sin(), t.offset(1), false, false);
        // pairs (0,1) and (2,3): (1,0) → (c, s); (0,1) → (−s, c)
        assertClose("llama pairs", read(llama, 3, 4), new double[]{c, s, -s, c}, 1e-7);
        MemorySegment neox = seg(new float[]{1, 0, 0, 1});
        ops.rope(1, 4, 4, neox, 3, t.cos(), t.sin(), t.offset(1), true, false);
        // pairs (0,2) and (1,3): (1,0) → (c, s); (0,1) → (−s, c)
        assertClose("neox pairs", read(neox, 3, 4), new double[]{c, -s, s, c}, 1e-7);
    }
}
