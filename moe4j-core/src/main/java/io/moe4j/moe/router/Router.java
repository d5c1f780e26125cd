package io.moe4j.moe.router;

import io.moe4j.moe.Routing;
import io.moe4j.nn.Param;

import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * A routing strategy: from the MoE input x (T×d) to a {@link Routing} (expert ids, combine weights, counts, aux
 * losses), and back: from the gradient of the combine weights to the gradients of x and of the router's own
 * parameters (including the auxiliary losses' gradients).
 *
 * <p>One implementation per method of the literature, chosen by name in {@link Routers}; the MoE layer never
 * branches on the model family. Discrete decisions (top-k, groups, capacity) carry no gradient (spec §3.9).
 */
public interface Router {

    /** The config name of this strategy. */
    String name();

    /** Maximum experts per token (columns of the Routing's slot table). */
    int slots();

    /**
     * Upper bound on the assignments (permuted rows) one forward of at most {@code maxTokens} tokens can produce;
     * the layer sizes its expert buffers by it. Default: every slot of every token.
     */
    default int maxRows(int maxTokens) { return Math.multiplyExact(slots(), maxTokens); }

    /** Trainable parameters (empty for parameter-free routers). */
    List<Param> params();

    /**
     * Routes {@code t} tokens, x row i at float offset xOff + i·d. {@code r} has been reset for t tokens.
     * {@code tokenIds} (may be null) are the input token ids, for routers keyed on them (hash routing).
     * {@code training} enables noise and the auxiliary losses' gradients.
     *
     * @throws io.moe4j.moe.NonFiniteException if the router logits contain NaN or Inf
     */
    void forward(MemorySegment x, long xOff, int t, int[] tokenIds, Routing r, boolean training);

    /**
     * Backward: {@code dWeight[s]} = ∂L/∂(combine weight of slot s) (0 for empty or dropped slots). Accumulates
     * into dx (T×d at dxOff) and into the parameters' gradients, adding the gradients of the auxiliary losses
     * computed in the last forward.
     */
    void backward(MemorySegment x, long xOff, int t, Routing r, float[] dWeight, MemorySegment dx, long dxOff);

    /**
     * Rule-based state update after an optimizer step (DeepSeek-V3 bias, ReMoE λ), from the statistics of all
     * training forwards since the previous call (so gradient accumulation over micro-batches counts the whole
     * step). No-op by default.
     */
    default void afterStep() {}

    /**
     * True if {@link #forward} already applies the expert capacity with the router's own semantics (e.g. GShard's
     * post-drop renormalisation); the layer then skips its {@link io.moe4j.moe.CapacityPlanner}. False by default.
     */
    default boolean appliesOwnCapacity() { return false; }

    /** The router's random stream (noise, jitter, random policies), or null; its state belongs in checkpoints. */
    default io.moe4j.nn.CounterRng rng() { return null; }

    /** Non-trainable routing state for checkpoints and metrics (e.g. the DeepSeek-V3 bias); empty by default. */
    default float[] state() { return new float[0]; }

    /**
     * Restores what {@link #state()} returned (checkpoints, model files): the same length, else an
     * IllegalArgumentException naming the router.
     */
    default void restoreState(float[] state) {
        if (state.length != 0) throw new IllegalArgumentException("router " + name() + " has no state, got " + state.length + " values");
    }

    // ---- Optional contracts: MoE++ gating residual and expert-input scale (§4.14), AoE shared features (§4.15).
    // The defaults describe a router without them, so existing routers need no change.

    /**
     * Forward with a gating residual: the router's logits become {@code Router(x) + G·prevLogits}, where
     * {@code prevLogits} (T×E, row-major) are the previous MoE layer's logits as its {@code MoeLayer.logits()}
     * returned them, or null (first MoE layer: no residual). The router copies them, so the caller may reuse the
     * array. Routers without a residual map accept only null.
     */
    default void forward(MemorySegment x, long xOff, int t, int[] tokenIds, float[] prevLogits, Routing r,
                         boolean training) {
        if (prevLogits != null) {
            throw new IllegalArgumentException("router " + name() + " has no gating residual; pass no previous logits");
        }
        forward(x, xOff, t, tokenIds, r, training);
    }

    /**
     * Backward with the gating residual's gradients: {@code dLogits} (T×E, may be null) is ∂L/∂(this router's
     * logits) from later layers, added to the router's own; {@code dPrevLogits} (T×E, may be null = treat the
     * previous logits as constants) accumulates ∂L/∂prevLogits. Routers without a residual accept only a null
     * {@code dLogits}.
     */
    default void backward(MemorySegment x, long xOff, int t, Routing r, float[] dWeight, float[] dLogits,
                          float[] dPrevLogits, MemorySegment dx, long dxOff) {
        if (dLogits != null) {
            throw new IllegalArgumentException("router " + name() + " does not feed a gating residual; pass no dLogits");
        }
        backward(x, xOff, t, r, dWeight, dx, dxOff);
    }

    /** Multiplier of the routed experts' input (MoE++'s released code: k); the router itself sees x. */
    default float expertInputScale() { return 1f; }

    /**
     * Width of the per-(token, expert) features this router computes and the experts reuse as their gate input
     * (AoE: the low-rank activation A_{t,e}, width d_low); 0 = none.
     */
    default int expertFeatureWidth() { return 0; }

    /** The features of the last forward: row t·E + e of {@link #expertFeatureWidth()} floats; null if none. */
    default MemorySegment expertFeatures() { return null; }

    /**
     * ∂L/∂features, same layout, zeroed by {@link #forward}: the layer adds the experts' gradient into it before
     * {@link #backward}, which consumes it. Null if none.
     */
    default MemorySegment expertFeatureGrad() { return null; }
}
