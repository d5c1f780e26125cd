package io.moe4j.kernel.row;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Random;
import java.util.function.DoubleUnaryOperator;
import java.util.function.ToDoubleFunction;
import java.util.stream.Stream;

import static io.moe4j.kernel.row.RowTestData.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.data.Offset.offset;

/**
 * Every backward pass against central finite differences of a double-precision forward written here, for the loss
 * L = ⟨g, forward(·)⟩ with random g; plus the adjoint identities (RoPE inverse = transpose, gather backward =
 * scatter-add). Also checks the accumulate-vs-overwrite contract of each gradient output.
 */
class RowOpsGradientTest {
    private final Arena arena = Arena.ofConfined();

    @AfterEach
    void close() { arena.close(); }

    static Stream<RowOps> impls() { return allImpls().stream(); }

    static final int[] SIZES = {7, 33};
    static final double TOL = 1e-5;

    /** Central differences in double, h = 1e-6·max(1, |x_j|). */
    static double[] numericGradient(ToDoubleFunction<double[]> loss, double[] x) {
        double[] g = new double[x.length];
        for (int j = 0; j < x.length; j++) {
            double h = 1e-6 * Math.max(1, Math.abs(x[j])), saved = x[j];
            x[j] = saved + h;
            double up = loss.applyAsDouble(x);
            x[j] = saved - h;
            double down = loss.applyAsDouble(x);
            x[j] = saved;
            g[j] = (up - down) / (2 * h);
        }
        return g;
    }

    static double dot(double[] a, float[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) s += a[i] * b[i];
        return s;
    }

    private MemorySegment seg(float[] v, long off) { return segmentWith(arena, new Random(9), v, off); }

    /** after − before, in double: what an accumulating backward added. */
    static float[] added(float[] after, float[] before) {
        float[] d = new float[after.length];
        for (int i = 0; i < d.length; i++) d[i] = (float) ((double) after[i] - before[i]);
        return d;
    }

    @ParameterizedTest
    @MethodSource("impls")
    void rmsnorm(RowOps ops) {
        for (int n : SIZES) {
            Random r = new Random(n);
            float[] x = uniform(r, n, -2, 2), w = uniform(r, n, 0.5f, 1.5f), g = uniform(r, n, -1, 1);
            float eps = 1e-5f;
            ToDoubleFunction<double[]> byX = xs -> rmsnormLoss(xs, toDouble(w), g, eps);
            ToDoubleFunction<double[]> byW = ws -> rmsnormLoss(toDouble(x), ws, g, eps);

            MemorySegment sx = seg(x, 1), sw = seg(w, 2), out = seg(new float[n], 3);
            float rstd = ops.rmsnorm(n, sx, 1, sw, 2, eps, out, 3);
            float[] dx0 = uniform(r, n, -1, 1), dw0 = uniform(r, n, -1, 1);
            MemorySegment dx = seg(dx0, 4), dw = seg(dw0, 5);
            ops.rmsnormBackward(n, seg(g, 6), 6, sx, 1, sw, 2, rstd, dx, 4, dw, 5);
            assertClose(ops.name() + " rmsnorm dx n=" + n, added(read(dx, 4, n), dx0), numericGradient(byX, toDouble(x)), TOL);
            assertClose(ops.name() + " rmsnorm dw n=" + n, added(read(dw, 5, n), dw0), numericGradient(byW, toDouble(w)), TOL);
        }
    }

    static double rmsnormLoss(double[] x, double[] w, float[] g, float eps) {
        double ss = 0;
        for (double v : x) ss += v * v;
        double rstd = 1 / Math.sqrt(ss / x.length + eps), loss = 0;
        for (int i = 0; i < x.length; i++) loss += g[i] * x[i] * rstd * w[i];
        return loss;
    }

    @ParameterizedTest
    @MethodSource("impls")
    void softmax(RowOps ops) {
        for (int n : SIZES) {
            Random r = new Random(n + 1);
            float[] z = uniform(r, n, -4, 4), g = uniform(r, n, -1, 1);
            ToDoubleFunction<double[]> loss = zs -> {
                double max = Double.NEGATIVE_INFINITY, sum = 0, l = 0;
                for (double v : zs) max = Math.max(max, v);
                for (double v : zs) sum += Math.exp(v - max);
                for (int i = 0; i < n; i++) l += g[i] * Math.exp(zs[i] - max) / sum;
                return l;
            };
            MemorySegment y = seg(z, 1);
            ops.softmax(n, y, 1);
            MemorySegment dx = seg(uniform(r, n, -9, 9), 2); // overwritten, so garbage in must not matter
            ops.softmaxBackward(n, y, 1, seg(g, 3), 3, dx, 2);
            assertClose(ops.name() + " softmax dx n=" + n, read(dx, 2, n), numericGradient(loss, toDouble(z)), TOL);
        }
    }

    /** Element-wise activation f with backward dx += dout·f'(x). */
    interface Unary {
        void backward(RowOps ops, int n, MemorySegment x, MemorySegment dout, MemorySegment dx);
    }

    /** {@code gap}: inputs are moved at least this far from 0 (relu's kink, where no derivative exists). */
    private void checkUnary(RowOps ops, String name, DoubleUnaryOperator f, Unary op, float lo, float hi, float gap) {
        for (int n : SIZES) {
            Random r = new Random(n + name.hashCode());
            float[] x = uniform(r, n, lo, hi), g = uniform(r, n, -1, 1), dx0 = uniform(r, n, -1, 1);
            for (int i = 0; i < n; i++) x[i] = x[i] < 0 ? x[i] - gap : x[i] + gap;
            ToDoubleFunction<double[]> loss = xs -> {
                double l = 0;
                for (int i = 0; i < n; i++) l += g[i] * f.applyAsDouble(xs[i]);
                return l;
            };
            MemorySegment dx = seg(dx0, 0);
            op.backward(ops, n, seg(x, 0), seg(g, 0), dx);
            assertClose(ops.name() + " " + name + " n=" + n, added(read(dx, 0, n), dx0), numericGradient(loss, toDouble(x)), TOL);
        }
    }

    static double silu(double x) { return x / (1 + Math.exp(-x)); }
    static double gelu(double x) { return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x))); }

    @ParameterizedTest
    @MethodSource("impls")
    void unaryActivations(RowOps ops) {
        checkUnary(ops, "silu", RowOpsGradientTest::silu,
                (o, n, x, d, dx) -> o.siluBackward(n, x, 0, d, 0, dx, 0), -6, 6, 0);
        checkUnary(ops, "gelu", RowOpsGradientTest::gelu,
                (o, n, x, d, dx) -> o.geluBackward(n, x, 0, d, 0, dx, 0), -6, 6, 0);
        checkUnary(ops, "relu", v -> Math.max(v, 0),
                (o, n, x, d, dx) -> o.reluBackward(n, x, 0, d, 0, dx, 0), -3, 3, 0.1f);
    }

    /** At and below the kink: no gradient where x ≤ 0 (including ±0) or x is NaN. */
    @ParameterizedTest
    @MethodSource("impls")
    void reluPassesGradientOnlyWherePositive(RowOps ops) {
        MemorySegment x = seg(new float[]{-1, 0, -0f, 2, Float.NaN}, 1);
        MemorySegment dx = seg(new float[]{10, 10, 10, 10, 10}, 2);
        ops.reluBackward(5, x, 1, seg(new float[]{1, 1, 1, 1, 1}, 3), 3, dx, 2);
        assertExact("reluBackward", read(dx, 2, 5), new float[]{10, 10, 10, 11, 10});
    }

    /** Gated units: out = f(gate)·up; dgate, dup overwritten. */
    interface Gated {
        void backward(RowOps ops, int n, MemorySegment gate, MemorySegment up, MemorySegment dout, MemorySegment dgate, MemorySegment dup);
    }

    private void checkGated(RowOps ops, String name, DoubleUnaryOperator f, Gated op) {
        for (int n : SIZES) {
            Random r = new Random(n * 3 + name.hashCode());
            float[] gate = uniform(r, n, -5, 5), up = uniform(r, n, -2, 2), g = uniform(r, n, -1, 1);
            ToDoubleFunction<double[]> byGate = gs -> {
                double l = 0;
                for (int i = 0; i < n; i++) l += g[i] * f.applyAsDouble(gs[i]) * up[i];
                return l;
            };
            ToDoubleFunction<double[]> byUp = us -> {
                double l = 0;
                for (int i = 0; i < n; i++) l += g[i] * f.applyAsDouble(gate[i]) * us[i];
                return l;
            };
            MemorySegment dgate = seg(uniform(r, n, -9, 9), 1), dup = seg(uniform(r, n, -9, 9), 2);
            op.backward(ops, n, seg(gate, 3), seg(up, 4), seg(g, 5), dgate, dup);
            assertClose(ops.name() + " " + name + " dgate n=" + n, read(dgate, 1, n), numericGradient(byGate, toDouble(gate)), TOL);
            assertClose(ops.name() + " " + name + " dup n=" + n, read(dup, 2, n), numericGradient(byUp, toDouble(up)), TOL);
        }
    }

    @ParameterizedTest
    @MethodSource("impls")
    void gatedActivations(RowOps ops) {
        checkGated(ops, "swiglu", RowOpsGradientTest::silu,
                (o, n, gt, up, d, dg, du) -> o.swigluBackward(n, gt, 3, up, 4, d, 5, dg, 1, du, 2));
        checkGated(ops, "geglu", RowOpsGradientTest::gelu,
                (o, n, gt, up, d, dg, du) -> o.gegluBackward(n, gt, 3, up, 4, d, 5, dg, 1, du, 2));
    }

    // ---------------------------------------------------------------- RoPE: orthogonal, so backward = inverse = transpose

    @ParameterizedTest
    @MethodSource("impls")
    void ropeInverseIsTranspose(RowOps ops) {
        Random r = new Random(11);
        int nHeads = 4;
        for (int[] sh : new int[][]{{64, 64}, {64, 48}, {6, 6}}) {
            int headDim = sh[0], rotDim = sh[1], len = nHeads * headDim;
            RopeTable t = new RopeTable(100, rotDim, 500000);
            for (boolean neox : new boolean[]{false, true}) {
                float[] x = uniform(r, len, -1, 1), y = uniform(r, len, -1, 1);
                MemorySegment rx = seg(x, 1), ry = seg(y, 2);
                ops.rope(nHeads, headDim, rotDim, rx, 1, t.cos(), t.sin(), t.offset(77), neox, false);
                ops.rope(nHeads, headDim, rotDim, ry, 2, t.cos(), t.sin(), t.offset(77), neox, true);
                double lhs = dot(toDouble(read(rx, 1, len)), y), rhs = dot(toDouble(x), read(ry, 2, len));
                assertThat(lhs).as("⟨rope x, y⟩ = ⟨x, rope⁻¹ y⟩ neox=" + neox).isCloseTo(rhs, offset(1e-5));
                ops.rope(nHeads, headDim, rotDim, rx, 1, t.cos(), t.sin(), t.offset(77), neox, true);
                assertClose("rope round trip neox=" + neox, read(rx, 1, len), x, 1e-6);
            }
        }
    }

    // ---------------------------------------------------------------- gather / scatter-add

    @ParameterizedTest
    @MethodSource("impls")
    void scatterAddRowsBackward(RowOps ops) {
        int dstRows = 5;
        for (int d : SIZES) {
            int ld = d + 4;
            for (int count : new int[]{1, 7}) {
                Random r = new Random(d * 17 + count);
                int ldDst = d + 2;
                int[] rows = new int[count];
                for (int i = 0; i < count; i++) rows[i] = r.nextInt(dstRows);
                float[] src = uniform(r, count * ld, -2, 2), w = uniform(r, count, -1, 1), gradOut = uniform(r, dstRows * ldDst, -1, 1);
                // L(src, w) = ⟨G, dst0 + Σ_i w_i · e_{rows_i} ⊗ src_i⟩ (dst0 does not depend on the inputs)
                ToDoubleFunction<double[]> bySrc = s -> scatterLoss(s, toDouble(w), rows, gradOut, d, ld, ldDst);
                ToDoubleFunction<double[]> byW = ws -> scatterLoss(toDouble(src), ws, rows, gradOut, d, ld, ldDst);
                MemorySegment dSrc = seg(uniform(r, count * ld, -9, 9), 1);
                float[] dW0 = uniform(r, count, -1, 1), dW = dW0.clone();
                ops.scatterAddRowsBackward(count, d, seg(gradOut, 2), 2, ldDst, rows, 0, w, 0, seg(src, 3), 3, ld,
                        dSrc, 1, ld, dW, 0);
                double[] numSrc = numericGradient(bySrc, toDouble(src));
                float[] gotSrc = read(dSrc, 1, count * ld);
                for (int i = 0; i < count; i++) { // only the first d of each ld-wide row are dSrc; the gap keeps its garbage
                    for (int j = d; j < ld; j++) { gotSrc[i * ld + j] = 0; numSrc[i * ld + j] = 0; }
                }
                assertClose(ops.name() + " dSrc d=" + d, gotSrc, numSrc, TOL);
                assertClose(ops.name() + " dWeights d=" + d, added(dW, dW0), numericGradient(byW, toDouble(w)), TOL);
            }
        }
    }

    static double scatterLoss(double[] src, double[] w, int[] rows, float[] grad, int d, int ld, int ldDst) {
        double l = 0;
        for (int i = 0; i < rows.length; i++) {
            for (int j = 0; j < d; j++) l += grad[rows[i] * ldDst + j] * w[i] * src[i * ld + j];
        }
        return l;
    }

    /** Gather's backward is scatter-add: ⟨gather(x), y⟩ = ⟨x, scatterAdd(y)⟩ for index sets with repeats. */
    @ParameterizedTest
    @MethodSource("impls")
    void gatherAndScatterAddAreAdjoint(RowOps ops) {
        Random r = new Random(13);
        for (int trial = 0; trial < 10; trial++) {
            int srcRows = 1 + r.nextInt(6), count = 1 + r.nextInt(12), d = 1 + r.nextInt(40), ldX = d + r.nextInt(3);
            int[] rows = new int[count];
            for (int i = 0; i < count; i++) rows[i] = r.nextInt(srcRows);
            float[] x = uniform(r, srcRows * ldX, -1, 1), y = uniform(r, count * d, -1, 1);
            MemorySegment gathered = seg(new float[count * d], 1);
            ops.gatherRows(count, d, seg(x, 2), 2, ldX, rows, 0, gathered, 1, d);
            MemorySegment scattered = seg(new float[srcRows * ldX], 3);
            ops.scatterAddRows(count, d, seg(y, 4), 4, d, rows, 0, null, 0, scattered, 3, ldX);
            double lhs = dot(toDouble(read(gathered, 1, count * d)), y);
            double rhs = dot(toDouble(x), read(scattered, 3, srcRows * ldX));
            assertThat(lhs).as("trial " + trial).isCloseTo(rhs, offset(1e-5));
        }
    }
}
