package io.moe4j.kernel.row;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;

/**
 * The Vector API implementation of {@link RowOps}: validates arguments exactly as {@link ScalarRowOps} does, then
 * runs {@link VectorRowKernels} for one vector width. The no-arg constructor (used by
 * {@link io.moe4j.kernel.Kernels}) takes the CPU's preferred width; tests pass 128/256/512-bit species to exercise
 * AVX2 and AVX-512 code on one machine.
 *
 * <p>Agreement with the scalar reference: bit-exact for axpy, scale, add, relu (and backward), RoPE, top-k,
 * gather and scatter-add; reductions (dot, the rmsnorm and softmax sums, dWeights) differ only by summation order;
 * exp/GELU-based activations by the SIMD transcendental's last bits (see {@link VectorRowKernels}).
 *
 * <p>Where vectors do not pay, this class says so and runs scalar code: top-k (router rows are a few dozen to a few
 * hundred floats with k ≤ 8; an insertion list beats vector compares plus tie/NaN fix-ups) and adjacent-pair RoPE.
 *
 * <p>Non-goals: multi-threading (callers split rows), other element types than F32.
 */
public final class SimdRowOps implements RowOps {
    private final VectorRowKernels k;

    /** The CPU's preferred vector width ({@link FloatVector#SPECIES_PREFERRED}). */
    public SimdRowOps() {
        this(FloatVector.SPECIES_PREFERRED);
    }

    /**
     * A given float species. One width per JVM runs at full speed; mixing widths in one JVM (tests) is correct but
     * slow, because the JIT then cannot treat the species as a constant.
     */
    public SimdRowOps(VectorSpecies<Float> species) {
        this.k = VectorRowKernels.forSpecies(species);
    }

    public VectorSpecies<Float> species() { return k.species(); }

    // ---------------------------------------------------------------- BLAS-1

    @Override
    public void axpy(int n, float a, MemorySegment x, long xOff, MemorySegment y, long yOff) {
        RowChecks.vectors(n, "x", x, xOff, "y", y, yOff);
        k.axpy(n, a, x, xOff, y, yOff);
    }

    @Override
    public float dot(int n, MemorySegment x, long xOff, MemorySegment y, long yOff) {
        RowChecks.vectors(n, "x", x, xOff, "y", y, yOff);
        return k.dot(n, x, xOff, y, yOff);
    }

    @Override
    public void scale(int n, float a, MemorySegment x, long xOff) {
        RowChecks.length("n", n);
        RowChecks.fits("x", x, xOff, n);
        k.scale(n, a, x, xOff);
    }

    @Override
    public void add(int n, MemorySegment x, long xOff, MemorySegment y, long yOff, MemorySegment out, long outOff) {
        RowChecks.vectors(n, "x", x, xOff, "y", y, yOff, "out", out, outOff);
        k.add(n, x, xOff, y, yOff, out, outOff);
    }

    // ---------------------------------------------------------------- normalisation

    @Override
    public float rmsnorm(int n, MemorySegment x, long xOff, MemorySegment w, long wOff, float eps,
                         MemorySegment out, long outOff) {
        RowChecks.positive("n", n);
        RowChecks.vectors(n, "x", x, xOff, "w", w, wOff, "out", out, outOff);
        return k.rmsnorm(n, x, xOff, w, wOff, eps, out, outOff);
    }

    @Override
    public void rmsnormBackward(int n, MemorySegment dout, long doutOff, MemorySegment x, long xOff,
                                MemorySegment w, long wOff, float rstd,
                                MemorySegment dx, long dxOff, MemorySegment dw, long dwOff) {
        RowChecks.positive("n", n);
        RowChecks.vectors(n, "dout", dout, doutOff, "x", x, xOff, "w", w, wOff, "dx", dx, dxOff, "dw", dw, dwOff);
        k.rmsnormBackward(n, dout, doutOff, x, xOff, w, wOff, rstd, dx, dxOff, dw, dwOff);
    }

    // ---------------------------------------------------------------- softmax

    @Override
    public void softmax(int n, MemorySegment x, long xOff) {
        RowChecks.positive("n", n);
        RowChecks.fits("x", x, xOff, n);
        k.softmax(n, x, xOff);
    }

    @Override
    public void softmaxBackward(int n, MemorySegment y, long yOff, MemorySegment dy, long dyOff, MemorySegment dx, long dxOff) {
        RowChecks.vectors(n, "y", y, yOff, "dy", dy, dyOff, "dx", dx, dxOff);
        k.softmaxBackward(n, y, yOff, dy, dyOff, dx, dxOff);
    }

    // ---------------------------------------------------------------- activations

    @Override
    public void silu(int n, MemorySegment x, long xOff, MemorySegment out, long outOff) {
        RowChecks.vectors(n, "x", x, xOff, "out", out, outOff);
        k.silu(n, x, xOff, out, outOff);
    }

    @Override
    public void siluBackward(int n, MemorySegment x, long xOff, MemorySegment dout, long doutOff, MemorySegment dx, long dxOff) {
        RowChecks.vectors(n, "x", x, xOff, "dout", dout, doutOff, "dx", dx, dxOff);
        k.siluBackward(n, x, xOff, dout, doutOff, dx, dxOff);
    }

    @Override
    public void swiglu(int n, MemorySegment gate, long gateOff, MemorySegment up, long upOff, MemorySegment out, long outOff) {
        RowChecks.vectors(n, "gate", gate, gateOff, "up", up, upOff, "out", out, outOff);
        k.swiglu(n, gate, gateOff, up, upOff, out, outOff);
    }

    @Override
    public void swigluBackward(int n, MemorySegment gate, long gateOff, MemorySegment up, long upOff,
                               MemorySegment dout, long doutOff, MemorySegment dgate, long dgateOff,
                               MemorySegment dup, long dupOff) {
        RowChecks.vectors(n, "gate", gate, gateOff, "up", up, upOff, "dout", dout, doutOff,
                "dgate", dgate, dgateOff, "dup", dup, dupOff);
        k.swigluBackward(n, gate, gateOff, up, upOff, dout, doutOff, dgate, dgateOff, dup, dupOff);
    }

    @Override
    public void gelu(int n, MemorySegment x, long xOff, MemorySegment out, long outOff) {
        RowChecks.vectors(n, "x", x, xOff, "out", out, outOff);
        k.gelu(n, x, xOff, out, outOff);
    }

    @Override
    public void geluBackward(int n, MemorySegment x, long xOff, MemorySegment dout, long doutOff, MemorySegment dx, long dxOff) {
        RowChecks.vectors(n, "x", x, xOff, "dout", dout, doutOff, "dx", dx, dxOff);
        k.geluBackward(n, x, xOff, dout, doutOff, dx, dxOff);
    }

    @Override
    public void geglu(int n, MemorySegment gate, long gateOff, MemorySegment up, long upOff, MemorySegment out, long outOff) {
        RowChecks.vectors(n, "gate", gate, gateOff, "up", up, upOff, "out", out, outOff);
        k.geglu(n, gate, gateOff, up, upOff, out, outOff);
    }

    @Override
    public void gegluBackward(int n, MemorySegment gate, long gateOff, MemorySegment up, long upOff,
                              MemorySegment dout, long doutOff, MemorySegment dgate, long dgateOff,
                              MemorySegment dup, long dupOff) {
        RowChecks.vectors(n, "gate", gate, gateOff, "up", up, upOff, "dout", dout, doutOff,
                "dgate", dgate, dgateOff, "dup", dup, dupOff);
        k.gegluBackward(n, gate, gateOff, up, upOff, dout, doutOff, dgate, dgateOff, dup, dupOff);
    }

    @Override
    public void relu(int n, MemorySegment x, long xOff, MemorySegment out, long outOff) {
        RowChecks.vectors(n, "x", x, xOff, "out", out, outOff);
        k.relu(n, x, xOff, out, outOff);
    }

    @Override
    public void reluBackward(int n, MemorySegment x, long xOff, MemorySegment dout, long doutOff, MemorySegment dx, long dxOff) {
        RowChecks.vectors(n, "x", x, xOff, "dout", dout, doutOff, "dx", dx, dxOff);
        k.reluBackward(n, x, xOff, dout, doutOff, dx, dxOff);
    }

    // ---------------------------------------------------------------- rotary position embedding

    @Override
    public void rope(int nHeads, int headDim, int rotDim, MemorySegment x, long xOff,
                     float[] cos, float[] sin, int tab, boolean neox, boolean inverse) {
        RowChecks.rope(nHeads, headDim, rotDim, x, xOff, cos, sin, tab);
        k.rope(nHeads, headDim, rotDim, x, xOff, cos, sin, tab, neox, inverse);
    }

    // ---------------------------------------------------------------- selection

    /** Scalar on purpose (see the class comment). */
    @Override
    public void topK(int n, int k, MemorySegment x, long xOff, int[] idx, int idxOff, float[] vals, int valsOff) {
        RowChecks.topK(n, k, x, xOff, idx, idxOff, vals, valsOff);
        ScalarRowOps.topKUnchecked(n, k, x, xOff, idx, idxOff, vals, valsOff);
    }

    // ---------------------------------------------------------------- gather / scatter

    @Override
    public void gatherRows(int count, int d, MemorySegment src, long srcOff, int ldSrc, int[] rows, int rowsOff,
                           MemorySegment dst, long dstOff, int ldDst) {
        RowChecks.indexedRows(count, d, "src", src, srcOff, ldSrc, rows, rowsOff, "dst", dst, dstOff, ldDst);
        k.gatherRows(count, d, src, srcOff, ldSrc, rows, rowsOff, dst, dstOff, ldDst);
    }

    @Override
    public void scatterAddRows(int count, int d, MemorySegment src, long srcOff, int ldSrc, int[] rows, int rowsOff,
                               float[] weights, int weightsOff, MemorySegment dst, long dstOff, int ldDst) {
        RowChecks.scatterAdd(count, d, src, srcOff, ldSrc, rows, rowsOff, weights, weightsOff, dst, dstOff, ldDst);
        k.scatterAddRows(count, d, src, srcOff, ldSrc, rows, rowsOff, weights, weightsOff, dst, dstOff, ldDst);
    }

    @Override
    public void scatterAddRowsBackward(int count, int d, MemorySegment dDst, long dDstOff, int ldDDst, int[] rows, int rowsOff,
                                       float[] weights, int weightsOff, MemorySegment src, long srcOff, int ldSrc,
                                       MemorySegment dSrc, long dSrcOff, int ldDSrc, float[] dWeights, int dWeightsOff) {
        RowChecks.scatterAddBackward(count, d, dDst, dDstOff, ldDDst, rows, rowsOff, weights, weightsOff, src, srcOff, ldSrc,
                dSrc, dSrcOff, ldDSrc, dWeights, dWeightsOff);
        k.scatterAddRowsBackward(count, d, dDst, dDstOff, ldDDst, rows, rowsOff, weights, weightsOff, src, srcOff, ldSrc,
                dSrc, dSrcOff, ldDSrc, dWeights, dWeightsOff);
    }

    @Override
    public String name() { return "simd-" + k.species().vectorBitSize(); }
}
