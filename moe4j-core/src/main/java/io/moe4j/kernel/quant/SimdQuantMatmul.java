package io.moe4j.kernel.quant;

import io.moe4j.parallel.WorkerPool;
import io.moe4j.tensor.DType;

import java.lang.foreign.MemorySegment;

/** PLACEHOLDER in the skeleton commit: replaced by the quantized-kernels work. */
public final class SimdQuantMatmul implements QuantMatmul {
    @Override
    public void matmul(WorkerPool pool, DType wType, MemorySegment w, long wOff, int rows, int k,
                       MemorySegment x, long xOff, int ldx, int n, MemorySegment y, long yOff, int ldy, boolean accumulate) {
        throw new UnsupportedOperationException("skeleton");
    }

    @Override
    public String name() { return "simd"; }
}
