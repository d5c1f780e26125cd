package io.moe4j.kernel.row;

import java.lang.foreign.MemorySegment;

/** PLACEHOLDER in the skeleton commit: replaced by the row-kernels work. */
public final class SimdRowOps implements RowOps {
    @Override public void axpy(int n, float a, MemorySegment x, long xOff, MemorySegment y, long yOff) { throw new UnsupportedOperationException("skeleton"); }
    @Override public float dot(int n, MemorySegment x, long xOff, MemorySegment y, long yOff) { throw new UnsupportedOperationException("skeleton"); }
    @Override public void scale(int n, float a, MemorySegment x, long xOff) { throw new UnsupportedOperationException("skeleton"); }
    @Override public void add(int n, MemorySegment x, long xOff, MemorySegment y, long yOff, MemorySegment out, long outOff) { throw new UnsupportedOperationException("skeleton"); }
    @Override public float rmsnorm(int n, MemorySegment x, long xOff, MemorySegment w, long wOff, float eps, MemorySegment out, long outOff) { throw new UnsupportedOperationException("skeleton"); }
    @Override public void rmsnormBackward(int n, MemorySegment dout, long doutOff, MemorySegment x, long xOff, MemorySegment w, long wOff, float rstd, MemorySegment dx, long dxOff, MemorySegment dw, long dwOff) { throw new UnsupportedOperationException("skeleton"); }
    @Override public void softmax(int n, MemorySegment x, long xOff) { throw new UnsupportedOperationException("skeleton"); }
    @Override public void softmaxBackward(int n, MemorySegment y, long yOff, MemorySegment dy, long dyOff, MemorySegment dx, long dxOff) { throw new UnsupportedOperationException("skeleton"); }
    @Override public void silu(int n, MemorySegment x, long xOff, MemorySegment out, long outOff) { throw new UnsupportedOperationException("skeleton"); }
    @Override public void siluBackward(int n, MemorySegment x, long xOff, MemorySegment dout, long doutOff, MemorySegment dx, long dxOff) { throw new UnsupportedOperationException("skeleton"); }
    @Override public void swiglu(int n, MemorySegment gate, long gateOff, MemorySegment up, long upOff, MemorySegment out, long outOff) { throw new UnsupportedOperationException("skeleton"); }
    @Override public void swigluBackward(int n, MemorySegment gate, long gateOff, MemorySegment up, long upOff, MemorySegment dout, long doutOff, MemorySegment dgate, long dgateOff, MemorySegment dup, long dupOff) { throw new UnsupportedOperationException("skeleton"); }
    @Override public void gelu(int n, MemorySegment x, long xOff, MemorySegment out, long outOff) { throw new UnsupportedOperationException("skeleton"); }
    @Override public void geluBackward(int n, MemorySegment x, long xOff, MemorySegment dout, long doutOff, MemorySegment dx, long dxOff) { throw new UnsupportedOperationException("skeleton"); }
    @Override public void geglu(int n, MemorySegment gate, long gateOff, MemorySegment up, long upOff, MemorySegment out, long outOff) { throw new UnsupportedOperationException("skeleton"); }
    @Override public void gegluBackward(int n, MemorySegment gate, long gateOff, MemorySegment up, long upOff, MemorySegment dout, long doutOff, MemorySegment dgate, long dgateOff, MemorySegment dup, long dupOff) { throw new UnsupportedOperationException("skeleton"); }
    @Override public void relu(int n, MemorySegment x, long xOff, MemorySegment out, long outOff) { throw new UnsupportedOperationException("skeleton"); }
    @Override public void reluBackward(int n, MemorySegment x, long xOff, MemorySegment dout, long doutOff, MemorySegment dx, long dxOff) { throw new UnsupportedOperationException("skeleton"); }
    @Override public void rope(int nHeads, int headDim, int rotDim, MemorySegment x, long xOff, float[] cos, float[] sin, int tab, boolean neox, boolean inverse) { throw new UnsupportedOperationException("skeleton"); }
    @Override public void topK(int n, int k, MemorySegment x, long xOff, int[] idx, int idxOff, float[] vals, int valsOff) { throw new UnsupportedOperationException("skeleton"); }
    @Override public void gatherRows(int count, int d, MemorySegment src, long srcOff, int ldSrc, int[] rows, int rowsOff, MemorySegment dst, long dstOff, int ldDst) { throw new UnsupportedOperationException("skeleton"); }
    @Override public void scatterAddRows(int count, int d, MemorySegment src, long srcOff, int ldSrc, int[] rows, int rowsOff, float[] weights, int weightsOff, MemorySegment dst, long dstOff, int ldDst) { throw new UnsupportedOperationException("skeleton"); }
    @Override public void scatterAddRowsBackward(int count, int d, MemorySegment dDst, long dDstOff, int ldDDst, int[] rows, int rowsOff, float[] weights, int weightsOff, MemorySegment src, long srcOff, int ldSrc, MemorySegment dSrc, long dSrcOff, int ldDSrc, float[] dWeights, int dWeightsOff) { throw new UnsupportedOperationException("skeleton"); }
    @Override public String name() { return "simd"; }
}
