package io.moe4j.kernel.row;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The scalar reference of {@link RowOps}: plain loops, one element at a time — the ground truth that
 * {@link SimdRowOps} is tested against.
 *
 * <p>Arithmetic is F32 and sums run in index order, with two documented exceptions: the two reductions of
 * {@link #rmsnorm} / {@link #rmsnormBackward} (Σx² and Σx·w·dout) accumulate in double, so the reference is more
 * accurate than any F32 ordering and the SIMD version (F32, many partial sums) stays within 1e-6 of it at any row
 * length. {@link #axpy} and {@link #scatterAddRows} use {@link Math#fma} — the instruction the vector code uses — so
 * both paths agree bit for bit. Transcendentals come from {@link Math} (double, rounded to float).
 *
 * <p>The loops over index ranges are package-private static methods so that the SIMD implementation runs its
 * scalar tails through exactly this code.
 *
 * <p>Non-goals: speed (use {@link SimdRowOps}), multi-threading (callers split rows across workers).
 */
public final class ScalarRowOps implements RowOps {
    static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;

    /** √(2/π), the tanh-GELU input scale. */
    static final float GELU_K0 = 0.7978845608028654f;
    /** The cubic coefficient of the tanh-GELU approximation. */
    static final float GELU_K1 = 0.044715f;

    // ---------------------------------------------------------------- element functions

    static float get(MemorySegment s, long off, int i) {
        return s.getAtIndex(F, off + i);
    }

    static void set(MemorySegment s, long off, int i, float v) {
        s.setAtIndex(F, off + i, v);
    }

    static float sigmoid(float x) {
        return 1f / (1f + (float) Math.exp(-x));
    }

    static float silu(float x) {
        return x * sigmoid(x);
    }

    /** d silu / dx = σ(x)·(1 + x·(1 − σ(x))). */
    static float siluGrad(float x) {
        float s = sigmoid(x);
        return s * (1f + x * (1f - s));
    }

    /** 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))). */
    static float gelu(float x) {
        float u = GELU_K0 * (x + GELU_K1 * x * x * x);
        return 0.5f * x * (1f + (float) Math.tanh(u));
    }

    /** 0.5·(1 + t) + 0.5·x·(1 − t²)·√(2/π)·(1 + 3·0.044715·x²) with t = tanh(u) as in {@link #gelu}. */
    static float geluGrad(float x) {
        float u = GELU_K0 * (x + GELU_K1 * x * x * x);
        float t = (float) Math.tanh(u);
        return 0.5f * (1f + t) + 0.5f * x * (1f - t * t) * GELU_K0 * (1f + 3f * GELU_K1 * x * x);
    }

    // ---------------------------------------------------------------- BLAS-1

    @Override
    public void axpy(int n, float a, MemorySegment x, long xOff, MemorySegment y, long yOff) {
        RowChecks.vectors(n, "x", x, xOff, "y", y, yOff);
        axpyRange(0, n, a, x, xOff, y, yOff);
    }

    static void axpyRange(int from, int to, float a, MemorySegment x, long xOff, MemorySegment y, long yOff) {
        for (int i = from; i < to; i++) set(y, yOff, i, Math.fma(a, get(x, xOff, i), get(y, yOff, i)));
    }

    @Override
    public float dot(int n, MemorySegment x, long xOff, MemorySegment y, long yOff) {
        RowChecks.vectors(n, "x", x, xOff, "y", y, yOff);
        return dotRange(0, n, x, xOff, y, yOff);
    }

    static float dotRange(int from, int to, MemorySegment x, long xOff, MemorySegment y, long yOff) {
        float sum = 0f;
        for (int i = from; i < to; i++) sum += get(x, xOff, i) * get(y, yOff, i);
        return sum;
    }

    @Override
    public void scale(int n, float a, MemorySegment x, long xOff) {
        RowChecks.length("n", n);
        RowChecks.fits("x", x, xOff, n);
        scaleRange(0, n, a, x, xOff);
    }

    static void scaleRange(int from, int to, float a, MemorySegment x, long xOff) {
        for (int i = from; i < to; i++) set(x, xOff, i, get(x, xOff, i) * a);
    }

    @Override
    public void add(int n, MemorySegment x, long xOff, MemorySegment y, long yOff, MemorySegment out, long outOff) {
        RowChecks.vectors(n, "x", x, xOff, "y", y, yOff, "out", out, outOff);
        addRange(0, n, x, xOff, y, yOff, out, outOff);
    }

    static void addRange(int from, int to, MemorySegment x, long xOff, MemorySegment y, long yOff,
                         MemorySegment out, long outOff) {
        for (int i = from; i < to; i++) set(out, outOff, i, get(x, xOff, i) + get(y, yOff, i));
    }

    // ---------------------------------------------------------------- normalisation

    @Override
    public float rmsnorm(int n, MemorySegment x, long xOff, MemorySegment w, long wOff, float eps,
                         MemorySegment out, long outOff) {
        RowChecks.positive("n", n);
        RowChecks.vectors(n, "x", x, xOff, "w", w, wOff, "out", out, outOff);
        float rstd = rstd(sumSquaresRange(0, n, x, xOff), n, eps);
        rmsnormApplyRange(0, n, x, xOff, w, wOff, rstd, out, outOff);
        return rstd;
    }

    /** Σx² in double (see the class comment). */
    static double sumSquaresRange(int from, int to, MemorySegment x, long xOff) {
        double ss = 0;
        for (int i = from; i < to; i++) {
            double v = get(x, xOff, i);
            ss += v * v;
        }
        return ss;
    }

    static float rstd(double sumSquares, int n, float eps) {
        return (float) (1.0 / Math.sqrt(sumSquares / n + eps));
    }

    static void rmsnormApplyRange(int from, int to, MemorySegment x, long xOff, MemorySegment w, long wOff, float rstd,
                                  MemorySegment out, long outOff) {
        for (int i = from; i < to; i++) set(out, outOff, i, get(x, xOff, i) * rstd * get(w, wOff, i));
    }

    @Override
    public void rmsnormBackward(int n, MemorySegment dout, long doutOff, MemorySegment x, long xOff,
                                MemorySegment w, long wOff, float rstd,
                                MemorySegment dx, long dxOff, MemorySegment dw, long dwOff) {
        RowChecks.positive("n", n);
        RowChecks.vectors(n, "dout", dout, doutOff, "x", x, xOff, "w", w, wOff, "dx", dx, dxOff, "dw", dw, dwOff);
        double xwd = sumXwdRange(0, n, dout, doutOff, x, xOff, w, wOff);
        rmsnormBackwardRange(0, n, dout, doutOff, x, xOff, w, wOff, rstd, rmsnormBackwardK(xwd, n, rstd),
                dx, dxOff, dw, dwOff);
    }

    /** Σ x·w·dout in double (see the class comment). */
    static double sumXwdRange(int from, int to, MemorySegment dout, long doutOff, MemorySegment x, long xOff,
                              MemorySegment w, long wOff) {
        double sum = 0;
        for (int i = from; i < to; i++) sum += (double) get(x, xOff, i) * get(w, wOff, i) * get(dout, doutOff, i);
        return sum;
    }

    /** rstd² · mean(x ⊙ w ⊙ dout): the coefficient of x in dx. */
    static float rmsnormBackwardK(double sumXwd, int n, float rstd) {
        return rstd * rstd * (float) (sumXwd / n);
    }

    static void rmsnormBackwardRange(int from, int to, MemorySegment dout, long doutOff, MemorySegment x, long xOff,
                                     MemorySegment w, long wOff, float rstd, float k,
                                     MemorySegment dx, long dxOff, MemorySegment dw, long dwOff) {
        for (int i = from; i < to; i++) {
            float d = get(dout, doutOff, i), xi = get(x, xOff, i), wi = get(w, wOff, i);
            set(dx, dxOff, i, get(dx, dxOff, i) + rstd * (wi * d - xi * k));
            set(dw, dwOff, i, get(dw, dwOff, i) + d * xi * rstd);
        }
    }

    // ---------------------------------------------------------------- softmax

    @Override
    public void softmax(int n, MemorySegment x, long xOff) {
        RowChecks.positive("n", n);
        RowChecks.fits("x", x, xOff, n);
        float max = maxRange(0, n, x, xOff, Float.NEGATIVE_INFINITY);
        float sum = expShiftRange(0, n, x, xOff, max);
        softmaxCheckSum(sum, max);
        scaleRange(0, n, 1f / sum, x, xOff);
    }

    /** max(init, x[from..to)) with {@link Math#max} semantics (NaN propagates). */
    static float maxRange(int from, int to, MemorySegment x, long xOff, float init) {
        float m = init;
        for (int i = from; i < to; i++) m = Math.max(m, get(x, xOff, i));
        return m;
    }

    /** x_i ← exp(x_i − max); returns the F32 sum of the new values in index order. */
    static float expShiftRange(int from, int to, MemorySegment x, long xOff, float max) {
        float sum = 0f;
        for (int i = from; i < to; i++) {
            float e = (float) Math.exp(get(x, xOff, i) - max);
            set(x, xOff, i, e);
            sum += e;
        }
        return sum;
    }

    /**
     * The contract makes a row without a finite maximum the caller's error; checking the sum costs nothing and turns
     * silent NaNs into a message (the row has been overwritten by then).
     */
    static void softmaxCheckSum(float sum, float max) {
        if (!(sum > 0f) || Float.isInfinite(sum)) {
            throw new IllegalArgumentException("softmax of a row without a finite maximum (max = " + max + ")");
        }
    }

    @Override
    public void softmaxBackward(int n, MemorySegment y, long yOff, MemorySegment dy, long dyOff, MemorySegment dx, long dxOff) {
        RowChecks.vectors(n, "y", y, yOff, "dy", dy, dyOff, "dx", dx, dxOff);
        float dyy = dotRange(0, n, dy, dyOff, y, yOff);
        softmaxBackwardRange(0, n, y, yOff, dy, dyOff, dyy, dx, dxOff);
    }

    static void softmaxBackwardRange(int from, int to, MemorySegment y, long yOff, MemorySegment dy, long dyOff, float dyy,
                                     MemorySegment dx, long dxOff) {
        for (int i = from; i < to; i++) set(dx, dxOff, i, get(y, yOff, i) * (get(dy, dyOff, i) - dyy));
    }

    // ---------------------------------------------------------------- activations

    @Override
    public void silu(int n, MemorySegment x, long xOff, MemorySegment out, long outOff) {
        RowChecks.vectors(n, "x", x, xOff, "out", out, outOff);
        siluRange(0, n, x, xOff, out, outOff);
    }

    static void siluRange(int from, int to, MemorySegment x, long xOff, MemorySegment out, long outOff) {
        for (int i = from; i < to; i++) set(out, outOff, i, silu(get(x, xOff, i)));
    }

    @Override
    public void siluBackward(int n, MemorySegment x, long xOff, MemorySegment dout, long doutOff, MemorySegment dx, long dxOff) {
        RowChecks.vectors(n, "x", x, xOff, "dout", dout, doutOff, "dx", dx, dxOff);
        siluBackwardRange(0, n, x, xOff, dout, doutOff, dx, dxOff);
    }

    static void siluBackwardRange(int from, int to, MemorySegment x, long xOff, MemorySegment dout, long doutOff,
                                  MemorySegment dx, long dxOff) {
        for (int i = from; i < to; i++) {
            set(dx, dxOff, i, get(dx, dxOff, i) + get(dout, doutOff, i) * siluGrad(get(x, xOff, i)));
        }
    }

    @Override
    public void swiglu(int n, MemorySegment gate, long gateOff, MemorySegment up, long upOff, MemorySegment out, long outOff) {
        RowChecks.vectors(n, "gate", gate, gateOff, "up", up, upOff, "out", out, outOff);
        swigluRange(0, n, gate, gateOff, up, upOff, out, outOff);
    }

    static void swigluRange(int from, int to, MemorySegment gate, long gateOff, MemorySegment up, long upOff,
                            MemorySegment out, long outOff) {
        for (int i = from; i < to; i++) set(out, outOff, i, silu(get(gate, gateOff, i)) * get(up, upOff, i));
    }

    @Override
    public void swigluBackward(int n, MemorySegment gate, long gateOff, MemorySegment up, long upOff,
                               MemorySegment dout, long doutOff, MemorySegment dgate, long dgateOff,
                               MemorySegment dup, long dupOff) {
        RowChecks.vectors(n, "gate", gate, gateOff, "up", up, upOff, "dout", dout, doutOff,
                "dgate", dgate, dgateOff, "dup", dup, dupOff);
        swigluBackwardRange(0, n, gate, gateOff, up, upOff, dout, doutOff, dgate, dgateOff, dup, dupOff);
    }

    static void swigluBackwardRange(int from, int to, MemorySegment gate, long gateOff, MemorySegment up, long upOff,
                                    MemorySegment dout, long doutOff, MemorySegment dgate, long dgateOff,
                                    MemorySegment dup, long dupOff) {
        for (int i = from; i < to; i++) {
            // read every input before writing: the gradients may overwrite the inputs element by element
            float g = get(gate, gateOff, i), u = get(up, upOff, i), d = get(dout, doutOff, i);
            set(dgate, dgateOff, i, d * u * siluGrad(g));
            set(dup, dupOff, i, d * silu(g));
        }
    }

    @Override
    public void gelu(int n, MemorySegment x, long xOff, MemorySegment out, long outOff) {
        RowChecks.vectors(n, "x", x, xOff, "out", out, outOff);
        geluRange(0, n, x, xOff, out, outOff);
    }

    static void geluRange(int from, int to, MemorySegment x, long xOff, MemorySegment out, long outOff) {
        for (int i = from; i < to; i++) set(out, outOff, i, gelu(get(x, xOff, i)));
    }

    @Override
    public void geluBackward(int n, MemorySegment x, long xOff, MemorySegment dout, long doutOff, MemorySegment dx, long dxOff) {
        RowChecks.vectors(n, "x", x, xOff, "dout", dout, doutOff, "dx", dx, dxOff);
        geluBackwardRange(0, n, x, xOff, dout, doutOff, dx, dxOff);
    }

    static void geluBackwardRange(int from, int to, MemorySegment x, long xOff, MemorySegment dout, long doutOff,
                                  MemorySegment dx, long dxOff) {
        for (int i = from; i < to; i++) {
            set(dx, dxOff, i, get(dx, dxOff, i) + get(dout, doutOff, i) * geluGrad(get(x, xOff, i)));
        }
    }

    @Override
    public void geglu(int n, MemorySegment gate, long gateOff, MemorySegment up, long upOff, MemorySegment out, long outOff) {
        RowChecks.vectors(n, "gate", gate, gateOff, "up", up, upOff, "out", out, outOff);
        gegluRange(0, n, gate, gateOff, up, upOff, out, outOff);
    }

    static void gegluRange(int from, int to, MemorySegment gate, long gateOff, MemorySegment up, long upOff,
                           MemorySegment out, long outOff) {
        for (int i = from; i < to; i++) set(out, outOff, i, gelu(get(gate, gateOff, i)) * get(up, upOff, i));
    }

    @Override
    public void gegluBackward(int n, MemorySegment gate, long gateOff, MemorySegment up, long upOff,
                              MemorySegment dout, long doutOff, MemorySegment dgate, long dgateOff,
                              MemorySegment dup, long dupOff) {
        RowChecks.vectors(n, "gate", gate, gateOff, "up", up, upOff, "dout", dout, doutOff,
                "dgate", dgate, dgateOff, "dup", dup, dupOff);
        gegluBackwardRange(0, n, gate, gateOff, up, upOff, dout, doutOff, dgate, dgateOff, dup, dupOff);
    }

    static void gegluBackwardRange(int from, int to, MemorySegment gate, long gateOff, MemorySegment up, long upOff,
                                   MemorySegment dout, long doutOff, MemorySegment dgate, long dgateOff,
                                   MemorySegment dup, long dupOff) {
        for (int i = from; i < to; i++) {
            float g = get(gate, gateOff, i), u = get(up, upOff, i), d = get(dout, doutOff, i);
            set(dgate, dgateOff, i, d * u * geluGrad(g));
            set(dup, dupOff, i, d * gelu(g));
        }
    }

    @Override
    public void relu(int n, MemorySegment x, long xOff, MemorySegment out, long outOff) {
        RowChecks.vectors(n, "x", x, xOff, "out", out, outOff);
        reluRange(0, n, x, xOff, out, outOff);
    }

    /** {@link Math#max} semantics, which the vector MAX shares: NaN stays NaN, −0 becomes +0. */
    static void reluRange(int from, int to, MemorySegment x, long xOff, MemorySegment out, long outOff) {
        for (int i = from; i < to; i++) set(out, outOff, i, Math.max(get(x, xOff, i), 0f));
    }

    @Override
    public void reluBackward(int n, MemorySegment x, long xOff, MemorySegment dout, long doutOff, MemorySegment dx, long dxOff) {
        RowChecks.vectors(n, "x", x, xOff, "dout", dout, doutOff, "dx", dx, dxOff);
        reluBackwardRange(0, n, x, xOff, dout, doutOff, dx, dxOff);
    }

    static void reluBackwardRange(int from, int to, MemorySegment x, long xOff, MemorySegment dout, long doutOff,
                                  MemorySegment dx, long dxOff) {
        for (int i = from; i < to; i++) {
            if (get(x, xOff, i) > 0f) set(dx, dxOff, i, get(dx, dxOff, i) + get(dout, doutOff, i));
        }
    }

    // ---------------------------------------------------------------- rotary position embedding

    @Override
    public void rope(int nHeads, int headDim, int rotDim, MemorySegment x, long xOff,
                     float[] cos, float[] sin, int tab, boolean neox, boolean inverse) {
        RowChecks.rope(nHeads, headDim, rotDim, x, xOff, cos, sin, tab);
        for (int h = 0; h < nHeads; h++) {
            ropeHead(0, rotDim / 2, rotDim, x, xOff + (long) h * headDim, cos, sin, tab, neox, inverse);
        }
    }

    /** Rotates pairs [from, to) of the head at {@code base}: (a, b) → (a·c − b·s, a·s + b·c), s negated if inverse. */
    static void ropeHead(int from, int to, int rotDim, MemorySegment x, long base,
                         float[] cos, float[] sin, int tab, boolean neox, boolean inverse) {
        int half = rotDim / 2;
        for (int i = from; i < to; i++) {
            int ia = neox ? i : 2 * i;
            int ib = neox ? i + half : 2 * i + 1;
            float c = cos[tab + i];
            float s = inverse ? -sin[tab + i] : sin[tab + i];
            float a = get(x, base, ia), b = get(x, base, ib);
            set(x, base, ia, a * c - b * s);
            set(x, base, ib, a * s + b * c);
        }
    }

    // ---------------------------------------------------------------- selection

    /**
     * Insertion into a sorted list of at most k entries kept in idx itself: O(n·k) worst case, O(n) when most
     * values lose against the current k-th — right for router rows (n = experts, k ≤ 8) and allocation-free.
     * Values compare numerically, so −0 and +0 tie (lower index first).
     */
    @Override
    public void topK(int n, int k, MemorySegment x, long xOff, int[] idx, int idxOff, float[] vals, int valsOff) {
        RowChecks.topK(n, k, x, xOff, idx, idxOff, vals, valsOff);
        topKUnchecked(n, k, x, xOff, idx, idxOff, vals, valsOff);
    }

    static void topKUnchecked(int n, int k, MemorySegment x, long xOff, int[] idx, int idxOff, float[] vals, int valsOff) {
        if (k == 0) return;
        int filled = 0;
        for (int i = 0; i < n; i++) {
            float v = get(x, xOff, i);
            int pos;
            if (filled < k) {
                pos = filled++;
            } else if (beats(v, get(x, xOff, idx[idxOff + k - 1]))) {
                pos = k - 1;
            } else {
                continue;
            }
            // i is larger than every index already listed, so on a tie it stays below: ties go to the lower index
            while (pos > 0 && beats(v, get(x, xOff, idx[idxOff + pos - 1]))) {
                idx[idxOff + pos] = idx[idxOff + pos - 1];
                pos--;
            }
            idx[idxOff + pos] = i;
        }
        if (vals != null) {
            for (int j = 0; j < k; j++) vals[valsOff + j] = get(x, xOff, idx[idxOff + j]);
        }
    }

    /** Strictly greater, with NaN below everything (so a NaN never beats, and anything non-NaN beats a NaN). */
    static boolean beats(float v, float w) {
        return !Float.isNaN(v) && (v > w || Float.isNaN(w));
    }

    // ---------------------------------------------------------------- gather / scatter

    @Override
    public void gatherRows(int count, int d, MemorySegment src, long srcOff, int ldSrc, int[] rows, int rowsOff,
                           MemorySegment dst, long dstOff, int ldDst) {
        RowChecks.indexedRows(count, d, "src", src, srcOff, ldSrc, rows, rowsOff, "dst", dst, dstOff, ldDst);
        for (int i = 0; i < count; i++) {
            long s = srcOff + (long) rows[rowsOff + i] * ldSrc, t = dstOff + (long) i * ldDst;
            for (int j = 0; j < d; j++) set(dst, t, j, get(src, s, j));
        }
    }

    @Override
    public void scatterAddRows(int count, int d, MemorySegment src, long srcOff, int ldSrc, int[] rows, int rowsOff,
                               float[] weights, int weightsOff, MemorySegment dst, long dstOff, int ldDst) {
        RowChecks.scatterAdd(count, d, src, srcOff, ldSrc, rows, rowsOff, weights, weightsOff, dst, dstOff, ldDst);
        for (int i = 0; i < count; i++) {
            long s = srcOff + (long) i * ldSrc, t = dstOff + (long) rows[rowsOff + i] * ldDst;
            if (weights == null) {
                addRange(0, d, dst, t, src, s, dst, t);
            } else {
                axpyRange(0, d, weights[weightsOff + i], src, s, dst, t);
            }
        }
    }

    @Override
    public void scatterAddRowsBackward(int count, int d, MemorySegment dDst, long dDstOff, int ldDDst, int[] rows, int rowsOff,
                                       float[] weights, int weightsOff, MemorySegment src, long srcOff, int ldSrc,
                                       MemorySegment dSrc, long dSrcOff, int ldDSrc, float[] dWeights, int dWeightsOff) {
        RowChecks.scatterAddBackward(count, d, dDst, dDstOff, ldDDst, rows, rowsOff, weights, weightsOff, src, srcOff, ldSrc,
                dSrc, dSrcOff, ldDSrc, dWeights, dWeightsOff);
        for (int i = 0; i < count; i++) {
            long g = dDstOff + (long) rows[rowsOff + i] * ldDDst, t = dSrcOff + (long) i * ldDSrc;
            if (dWeights != null) dWeights[dWeightsOff + i] += dotRange(0, d, dDst, g, src, srcOff + (long) i * ldSrc);
            float w = weights == null ? 1f : weights[weightsOff + i];
            for (int j = 0; j < d; j++) set(dSrc, t, j, w * get(dDst, g, j));
        }
    }

    @Override
    public String name() { return "scalar"; }
}
