package io.moe4j.kernel.row;

import java.lang.foreign.MemorySegment;

/**
 * Per-row kernels on F32 data in memory segments, with the backward passes training needs.
 *
 * <p>Conventions: offsets count floats; {@code n} is the row length. Unless stated otherwise outputs are
 * overwritten, and an output may alias its input when the method says "in place allowed". Backward methods
 * that produce parameter gradients ({@code dw}) <em>accumulate</em> into them, and input gradients ({@code dx})
 * also accumulate, so residual branches can share one gradient buffer (llm.c convention).
 *
 * <p>Single-threaded by design: callers parallelise over rows with {@link io.moe4j.parallel.WorkerPool}.
 * Transcendentals (exp, tanh) may differ from {@link Math} in the last bits in SIMD implementations.
 *
 * <p>Every method validates its arguments (lengths, offsets, that operands fit their segments and arrays, row
 * indices) in O(1) or O(count) and throws {@link IllegalArgumentException} naming the bad operand. Nothing
 * allocates.
 */
public interface RowOps {

    // ---------------------------------------------------------------- BLAS-1

    /** y += a·x. */
    void axpy(int n, float a, MemorySegment x, long xOff, MemorySegment y, long yOff);

    /** Σ x_i·y_i, accumulated in F32 with a fixed order for a given implementation. */
    float dot(int n, MemorySegment x, long xOff, MemorySegment y, long yOff);

    /** x *= a (in place). */
    void scale(int n, float a, MemorySegment x, long xOff);

    /** out = x + y (out may alias x or y). */
    void add(int n, MemorySegment x, long xOff, MemorySegment y, long yOff, MemorySegment out, long outOff);

    // ---------------------------------------------------------------- normalisation

    /**
     * out = x · rstd ⊙ w with rstd = 1/sqrt(mean(x²) + eps); returns rstd (saved for the backward).
     * In place allowed (out == x). Needs n ≥ 1.
     */
    float rmsnorm(int n, MemorySegment x, long xOff, MemorySegment w, long wOff, float eps,
                  MemorySegment out, long outOff);

    /**
     * Backward of {@link #rmsnorm} given the saved rstd: dx += ..., dw += dout ⊙ x · rstd.
     * dx = rstd · (w⊙dout − x · rstd² · mean(x ⊙ w ⊙ dout)).
     */
    void rmsnormBackward(int n, MemorySegment dout, long doutOff, MemorySegment x, long xOff,
                         MemorySegment w, long wOff, float rstd,
                         MemorySegment dx, long dxOff, MemorySegment dw, long dwOff);

    // ---------------------------------------------------------------- softmax

    /**
     * Numerically stable softmax in place (max-shifted). Needs n ≥ 1. A row without a finite maximum (all −∞, or
     * any NaN or +∞) is an error of the caller: implementations detect it from the sum and throw
     * IllegalArgumentException, after having overwritten the row.
     */
    void softmax(int n, MemorySegment x, long xOff);

    /** dx = y ⊙ (dy − ⟨dy, y⟩) where y is the softmax output; dx is overwritten (may alias dy). */
    void softmaxBackward(int n, MemorySegment y, long yOff, MemorySegment dy, long dyOff, MemorySegment dx, long dxOff);

    // ---------------------------------------------------------------- activations

    /** out = x·σ(x). In place allowed. */
    void silu(int n, MemorySegment x, long xOff, MemorySegment out, long outOff);

    /** dx += dout · σ(x)·(1 + x·(1−σ(x))). */
    void siluBackward(int n, MemorySegment x, long xOff, MemorySegment dout, long doutOff, MemorySegment dx, long dxOff);

    /** out = silu(gate) ⊙ up (SwiGLU's hidden state). out may alias gate or up. */
    void swiglu(int n, MemorySegment gate, long gateOff, MemorySegment up, long upOff, MemorySegment out, long outOff);

    /** dgate = dout ⊙ up ⊙ silu'(gate), dup = dout ⊙ silu(gate); both overwritten (not accumulated). */
    void swigluBackward(int n, MemorySegment gate, long gateOff, MemorySegment up, long upOff,
                        MemorySegment dout, long doutOff, MemorySegment dgate, long dgateOff, MemorySegment dup, long dupOff);

    /** out = gelu(x) with the tanh approximation (Grok-1 / jax.nn.gelu default). In place allowed. */
    void gelu(int n, MemorySegment x, long xOff, MemorySegment out, long outOff);

    /** dx += dout · gelu'(x) (tanh approximation). */
    void geluBackward(int n, MemorySegment x, long xOff, MemorySegment dout, long doutOff, MemorySegment dx, long dxOff);

    /** out = gelu(gate) ⊙ up (GeGLU, tanh approximation). out may alias gate or up. */
    void geglu(int n, MemorySegment gate, long gateOff, MemorySegment up, long upOff, MemorySegment out, long outOff);

    /** dgate = dout ⊙ up ⊙ gelu'(gate), dup = dout ⊙ gelu(gate); both overwritten. */
    void gegluBackward(int n, MemorySegment gate, long gateOff, MemorySegment up, long upOff,
                       MemorySegment dout, long doutOff, MemorySegment dgate, long dgateOff, MemorySegment dup, long dupOff);

    /** out = max(x, 0). In place allowed. */
    void relu(int n, MemorySegment x, long xOff, MemorySegment out, long outOff);

    /** dx += dout where x > 0. */
    void reluBackward(int n, MemorySegment x, long xOff, MemorySegment dout, long doutOff, MemorySegment dx, long dxOff);

    // ---------------------------------------------------------------- rotary position embedding

    /**
     * Rotates {@code nHeads} heads of {@code headDim} floats (head h at xOff + h·headDim) in place.
     * Only the first {@code rotDim} dims of each head rotate (rotDim ≤ headDim, even). Pair i (0 ≤ i < rotDim/2)
     * is (2i, 2i+1) when {@code neox == false} (GPT-J / llama.cpp "normal" mode) and (i, i + rotDim/2) when
     * {@code neox == true}. The angle's cosine and sine for pair i are {@code cos[tab + i]}, {@code sin[tab + i]}
     * (see {@link RopeTable}). {@code inverse} rotates by the negative angle — that is the backward pass, since the
     * rotation is orthogonal.
     */
    void rope(int nHeads, int headDim, int rotDim, MemorySegment x, long xOff,
              float[] cos, float[] sin, int tab, boolean neox, boolean inverse);

    // ---------------------------------------------------------------- selection

    /**
     * The {@code k} largest of {@code x[0..n)} in descending order, ties broken by lower index, NaN ranked below
     * −∞. Writes indices to {@code idx[idxOff..idxOff+k)} and values to {@code vals[valsOff..)} (vals may be null).
     * Values compare numerically, so −0 and +0 tie. 0 ≤ k ≤ n.
     */
    void topK(int n, int k, MemorySegment x, long xOff, int[] idx, int idxOff, float[] vals, int valsOff);

    // ---------------------------------------------------------------- gather / scatter (MoE dispatch and combine)

    /**
     * dst row i (i &lt; count) = src row rows[rowsOff + i]; rows are d floats with strides ldSrc / ldDst. Indices may
     * repeat; src and dst must not overlap.
     */
    void gatherRows(int count, int d, MemorySegment src, long srcOff, int ldSrc, int[] rows, int rowsOff,
                    MemorySegment dst, long dstOff, int ldDst);

    /**
     * dst row rows[rowsOff+i] += weights[weightsOff+i] · src row i, for i in order 0..count-1 (the fixed order keeps
     * results deterministic). {@code weights == null} means weight 1.
     */
    void scatterAddRows(int count, int d, MemorySegment src, long srcOff, int ldSrc, int[] rows, int rowsOff,
                        float[] weights, int weightsOff, MemorySegment dst, long dstOff, int ldDst);

    /**
     * Backward of {@link #scatterAddRows}: dSrc row i = w_i · dDst row rows[i] (overwritten), and, when dWeights is
     * not null, dWeights[i] += ⟨dDst row rows[i], src row i⟩. {@code src} is only read for dWeights and may be null
     * when dWeights is; {@code weights == null} means weight 1, as in the forward.
     */
    void scatterAddRowsBackward(int count, int d, MemorySegment dDst, long dDstOff, int ldDDst, int[] rows, int rowsOff,
                                float[] weights, int weightsOff, MemorySegment src, long srcOff, int ldSrc,
                                MemorySegment dSrc, long dSrcOff, int ldDSrc, float[] dWeights, int dWeightsOff);

    String name();
}
