package io.moe4j.kernel.quant;

import io.moe4j.parallel.WorkerPool;
import io.moe4j.tensor.DType;

import java.lang.foreign.MemorySegment;

/**
 * Matrix products with weights stored in any {@link DType} and F32 activations — the inference workhorse.
 *
 * <pre>
 *   Y (N×R) = X (N×K) · Wᵀ        [+ Y if accumulate]
 *   W: R rows of K elements in wType, row r at byte wOff + r·wType.byteSize(K)  (K a multiple of the block size)
 *   X: N rows of F32, row stride ldx floats;  Y: N rows of F32, row stride ldy floats
 * </pre>
 * {@code wOff} counts bytes (quantized rows are not float-addressable); {@code xOff} and {@code yOff} count floats,
 * as in {@link io.moe4j.kernel.gemm.Gemm}. Codecs for every format: {@link io.moe4j.tensor.quant.Quant}.
 *
 * <p>Activation rounding follows ggml's {@code vec_dot_type}, so that results match llama.cpp closely:
 * before the dot, each X row is converted to Q8_0 blocks for Q8_0 and Q4_0 weights, to F16 for F16 weights, to
 * BF16 for BF16 weights, and used as is for F32 weights. Each block's integer dot is scaled by
 * {@code d_w · d_x} and accumulated in F32.
 *
 * <p>Determinism: bit-identical for any thread count (work is split over output rows only).
 *
 * <p>Errors: {@link IllegalArgumentException} when K is not a multiple of the weight type's block size or a stride
 * is shorter than a row; {@link IndexOutOfBoundsException} when W, X or Y does not fit its segment.
 */
public interface QuantMatmul {

    void matmul(WorkerPool pool, DType wType, MemorySegment w, long wOff, int rows, int k,
                MemorySegment x, long xOff, int ldx, int n,
                MemorySegment y, long yOff, int ldy, boolean accumulate);

    /**
     * {@code Y1 = X·W1ᵀ} and {@code Y2 = X·W2ᵀ} for two weight matrices of the same type and shape, e.g. an expert's
     * gate and up projections, which read the same activations: an implementation may convert X once and run both
     * in one parallel pass (fewer hand-offs to the workers per decoded token). Results are bit-identical to two
     * {@link #matmul} calls with the same arguments; Y1 and Y2 share the row stride {@code ldy} and must not overlap
     * X (X may be read after Y1 is written).
     */
    default void matmulPair(WorkerPool pool, DType wType, MemorySegment w1, long w1Off, MemorySegment w2, long w2Off,
                            int rows, int k, MemorySegment x, long xOff, int ldx, int n,
                            MemorySegment y1, long y1Off, MemorySegment y2, long y2Off, int ldy, boolean accumulate) {
        matmul(pool, wType, w1, w1Off, rows, k, x, xOff, ldx, n, y1, y1Off, ldy, accumulate);
        matmul(pool, wType, w2, w2Off, rows, k, x, xOff, ldx, n, y2, y2Off, ldy, accumulate);
    }

    /** y (R) = W (R×K) · x (K). */
    default void matvec(WorkerPool pool, DType wType, MemorySegment w, long wOff, int rows, int k,
                        MemorySegment x, long xOff, MemorySegment y, long yOff) {
        matmul(pool, wType, w, wOff, rows, k, x, xOff, k, 1, y, yOff, rows, false);
    }

    /**
     * The layout this implementation computes fastest with for a (rows × k) matrix stored as {@code t}: {@code t}
     * itself, or a load-time layout ({@link io.moe4j.tensor.quant.RowGroups}) worth repacking the weights into.
     * Every implementation computes with every layout; this only says which one to prefer.
     */
    default DType preferredLayout(DType t, int rows, int k) {
        return t;
    }

    String name();
}
