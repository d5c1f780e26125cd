package io.moe4j.moe;

import io.moe4j.kernel.Kernels;
import io.moe4j.kernel.row.RowOps;
import io.moe4j.moe.router.Router;
import io.moe4j.moe.router.Routers;
import io.moe4j.nn.F32;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * One sparse MoE layer: router → {@link Routing} → (capacity) → dispatch by counting sort → grouped expert GEMMs
 * → weighted combine, plus optional shared experts. Forward and backward; the layer never branches on the model
 * family — the router strategy and the config carry every difference.
 *
 * <pre>
 *   y_t = Σ_{r kept} w_{t,r} · FFN_{e_{t,r}}(x_t)  [+ g_t · FFN_shared(x_t)],  g_t = σ(w_sg·x_t) (Qwen2) or 1
 *   x, y: (T, d) row-major F32
 * </pre>
 * Backward of the combine: {@code ∂L/∂w_{t,r} = ⟨dy_t, FFN_e(x_t)⟩}, {@code dYperm_row = w · dy_t}; of the gather:
 * {@code dx_t += Σ_r dXperm_row(t,r)} (ranks in fixed order ⇒ deterministic).
 *
 * <p>Contract: {@link #backward} uses the activations of the most recent {@link #forward} and its input x, which
 * must be unchanged. Buffers are preallocated for {@code maxTokens}; the hot path allocates nothing.
 *
 * <p>Three mechanisms serve MoE++ (§4.14) and Autonomy-of-Experts (§4.15) without knowing either by name:
 * <ul>
 *   <li><b>Special experts</b> ({@link SpecialExperts}): expert ids ≥ {@code config.ffnExperts()} are zero, copy
 *       or constant experts. The dispatch gives them no rows and the GEMMs never see them; the combine evaluates
 *       them in place from the token's input row, and the backward returns their weight gradient and dx.</li>
 *   <li><b>Expert-input scale</b> {@code s = router.expertInputScale()}: routed experts compute
 *       {@code FFN_e(s·x)} (MoE++'s released code: s = k); the router and shared experts see x.</li>
 *   <li><b>Router-provided gate input</b>: when {@code config.expertGateRank() > 0}, each expert's gate reads the
 *       router's per-(token, expert) features (AoE's A_{t,e}) gathered like x; their gradient goes back into
 *       {@code router.expertFeatureGrad()} before the router's backward.</li>
 * </ul>
 * <b>Gating residual contract</b> (MoE++): {@link #logits()} after a forward are this layer's router logits
 * (T×E, after its own residual); the model passes them as {@code prevLogits} to the next MoE layer's forward
 * (null for the first). In the backward, the next layer writes ∂L/∂prevLogits into a (T×E) buffer the model
 * provides ({@code dPrevLogits}, accumulated — zero it first), and the model passes that buffer to this layer's
 * backward as {@code dLogits}. Backward therefore runs layers in reverse order, as usual.
 *
 * <p><b>Padding mask</b> ({@link #forward(MemorySegment, long, int, int[], float[], boolean[], MemorySegment, long,
 * boolean)}, spec §3.6 "HF masking", §4.2 lingvo paddings): {@code mask[i] == false} marks token i as padding. The
 * layer gathers the real tokens into a compact batch and runs the whole layer on it, so padding is excluded from
 * dispatch (no routed or shared expert computes it; its output row is 0 and the block's residual carries it), from
 * every balance loss's F and P (masked means per group), from the z-loss (mean over real tokens; flaxformer instead
 * multiplies padding logits by 0, so each padding token adds the constant (log E)² and counts in T — same gradient
 * direction, a different normaliser), from capacity counting (padding claims no slot; each group's capacity is still
 * computed from its positions, padding included, as in flaxformer and lingvo), from expert choice's candidates,
 * from the metrics and from the DeepSeek-V3 bias-update counts. Routing groups ({@code groupSize}) keep their
 * original boundaries; a group of padding only is left out of the averages. Padding gets no gradient: its dx rows
 * are left untouched. With a mask, {@link #routing()} and {@link #metrics()} describe the real tokens in position
 * order ({@link #realTokens()} maps them back), while {@link #logits()} stays T×E with zero padding rows. An
 * all-true mask gives bit-identical results to no mask. The compaction buffers (3·maxTokens·d floats) are allocated
 * on the first masked forward, outside the layer's arena.
 */
public final class MoeLayer {
    private static final int TOKEN_CHUNK = 8;

    private final MoeConfig config;
    private final Kernels kernels;
    private final WorkerPool pool;
    private final Router router;
    private final Routing routing;
    private final CapacityPlanner capacity;
    private final Dispatch dispatch;
    private final ExpertBank experts;     // the FFN experts, ids 0 … ffnExperts−1
    private final SpecialExperts special; // ids ffnExperts … E−1, null when there are none
    private final float inputScale;       // routed experts see inputScale·x
    private final int gateRank;           // width of the router-provided gate input, 0 = the gate reads x
    private final MemorySegment gateIn;   // (maxRows, gateRank) gathered router features, null when gateRank = 0
    private final MemorySegment dGateIn;  // (maxRows, gateRank)
    private final ExpertBank shared;      // null when no shared experts
    private final Param sharedGate;       // (1, d), null unless Qwen-style gated shared expert
    private final int d;

    private final MemorySegment xPerm;    // (maxRows, d) gathered inputs
    private final MemorySegment dyPerm;   // (maxRows, d)
    private final MemorySegment dxPerm;   // (maxRows, d)
    private final MemorySegment sharedDx; // (maxT, d)
    private final MemorySegment dySh;     // (maxT, d) gradient into the shared FFN output
    private final float[] dWeight;        // (maxT·slots)
    private final float[] gateVal;        // (maxT) σ(w_sg·x_t)
    private final float[] gateGrad;       // (maxT) ∂L/∂(w_sg·x_t)
    private final int[] allTokens = new int[2]; // bins {0, T} for the shared FFN
    private MoeMetrics lastMetrics;
    private final MoeProfile profile = new MoeProfile();

    // Padding mask: allocated on the first masked forward (see the class comment).
    private int[] realIndex;           // (maxT) original position of compact token i
    private MemorySegment xc;          // (maxT, d) real tokens' inputs, kept for the backward
    private MemorySegment yc;          // (maxT, d) compact output (forward), compact dy (backward)
    private MemorySegment dxc;         // (maxT, d) compact dx
    private int[] idsC;                // (maxT) real tokens' ids
    private float[] logitsFull;        // (maxT·E) logits() of a masked batch, padding rows 0
    private float[] prevC, dLogitsC, dPrevC; // (maxT·E) compact gating-residual inputs and gradients
    private int lastReal = -1;         // real tokens of the last forward, −1 = it had no mask
    private int lastFull;              // T of the last masked forward

    public MoeLayer(MoeConfig config, Arena arena, Kernels kernels, WorkerPool pool) {
        this.config = config;
        this.kernels = kernels;
        this.pool = pool;
        this.d = config.dModel();
        this.router = Routers.create(config, arena, kernels, pool);
        int slots = router.slots();
        int maxT = config.maxTokens();
        int maxRows = router.maxRows(maxT);
        this.routing = new Routing(config.numExperts(), slots, maxT);
        this.capacity = new CapacityPlanner(config.numExperts(), maxT);
        int nFfn = config.ffnExperts();
        this.dispatch = new Dispatch(nFfn, slots, maxT, maxRows);
        String prefix = "layers." + config.layerIndex() + ".moe";
        this.gateRank = config.expertGateRank();
        if (gateRank > 0 && router.expertFeatureWidth() != gateRank) {
            throw new InvalidConfigException("moe.expertGateRank = " + gateRank + " factorises the experts' gate over "
                    + "the router's per-expert low-rank features, which moe.router = " + config.router()
                    + " does not provide (it provides width " + router.expertFeatureWidth() + "; aoe does)");
        }
        this.experts = new ExpertBank(arena, prefix + ".experts", config.expertType(), nFfn, d,
                config.expertHidden(), gateRank > 0 ? gateRank : d, maxRows, kernels, pool);
        this.special = config.specialExperts() > 0
                ? new SpecialExperts(arena, prefix + ".constant_experts", nFfn, config.constantExperts(),
                        config.copyExperts(), d, maxRows)
                : null;
        this.inputScale = router.expertInputScale();
        this.gateIn = gateRank > 0 ? F32.alloc(arena, (long) maxRows * gateRank) : null;
        this.dGateIn = gateRank > 0 ? F32.alloc(arena, (long) maxRows * gateRank) : null;
        if (config.sharedExperts() > 0) {
            this.shared = new ExpertBank(arena, prefix + ".shared", config.expertType(), 1, d, config.sharedWidth(),
                    maxT, kernels, pool);
            this.sharedGate = config.sharedGate() ? new Param(arena, prefix + ".shared_gate", 1, d) : null;
            this.sharedDx = F32.alloc(arena, (long) maxT * d);
            this.dySh = F32.alloc(arena, (long) maxT * d);
        } else {
            this.shared = null;
            this.sharedGate = null;
            this.sharedDx = null;
            this.dySh = null;
        }
        this.xPerm = F32.alloc(arena, (long) maxRows * d);
        this.dyPerm = F32.alloc(arena, (long) maxRows * d);
        this.dxPerm = F32.alloc(arena, (long) maxRows * d);
        this.dWeight = new float[maxT * slots];
        this.gateVal = new float[maxT];
        this.gateGrad = new float[maxT];
    }

    public MoeConfig config() { return config; }
    public Router router() { return router; }
    public Routing routing() { return routing; }
    public ExpertBank experts() { return experts; }
    /** MoE++ zero/copy/constant experts, or null. */
    public SpecialExperts special() { return special; }
    /**
     * Router logits of the last forward, T×E row-major (after the gating residual, before any normalisation):
     * the next MoE layer's {@code prevLogits}. The array is reused by the next forward.
     */
    public float[] logits() { return lastReal >= 0 ? logitsFull : routing.logits; }

    /**
     * After a masked forward: the original positions of the real tokens, {@code realTokens()[i]} for routing row i
     * (valid up to {@code routing().tokens()}); null after a forward without a mask.
     */
    public int[] realTokens() { return lastReal >= 0 ? realIndex : null; }
    /** The merged shared FFN, or null. */
    public ExpertBank shared() { return shared; }
    /** Qwen2-MoE shared-expert gate (1, d), or null. */
    public Param sharedGate() { return sharedGate; }
    /** Metrics of the last forward. */
    public MoeMetrics metrics() { return lastMetrics; }
    /** Time per phase, accumulated since the last {@link MoeProfile#reset()}. */
    public MoeProfile profile() { return profile; }

    public List<Param> params() {
        List<Param> ps = new ArrayList<>(router.params());
        ps.addAll(experts.params());
        if (special != null) ps.addAll(special.params());
        if (shared != null) ps.addAll(shared.params());
        if (sharedGate != null) ps.add(sharedGate);
        return ps;
    }

    /**
     * Initialises all parameters: N(0, std²) for router and experts (std = 0.02 is the usual choice), down
     * projections scaled by {@code downScale} (e.g. 1/sqrt(2·layers)).
     */
    public void init(SplittableRandom rng, double std, double downScale) {
        for (Param p : params()) {
            boolean isDown = p.name().endsWith(".down");
            // MoE++ draws the constant experts' vectors from N(0, 1), like the released code
            boolean unit = special != null && p == special.constantValue();
            p.initNormal(rng, unit ? 1.0 : isDown ? std * downScale : std);
        }
    }

    /** y (T, d) = MoE(x (T, d)). y is overwritten. */
    public void forward(MemorySegment x, long xOff, int t, MemorySegment y, long yOff, boolean training) {
        forward(x, xOff, t, null, y, yOff, training);
    }

    /** As {@link #forward(MemorySegment, long, int, MemorySegment, long, boolean)}, with the tokens' ids (hash routing). */
    public void forward(MemorySegment x, long xOff, int t, int[] tokenIds, MemorySegment y, long yOff, boolean training) {
        forward(x, xOff, t, tokenIds, null, y, yOff, training);
    }

    /**
     * Forward with the previous MoE layer's logits for a gating residual ({@code prevLogits}, T×E, null for none;
     * see the class comment for the contract).
     */
    public void forward(MemorySegment x, long xOff, int t, int[] tokenIds, float[] prevLogits, MemorySegment y,
                        long yOff, boolean training) {
        lastReal = -1;
        forwardBatch(x, xOff, t, tokenIds, prevLogits, null, 0, y, yOff, training);
    }

    /** Forward of a batch with padding: {@code mask[i]} true = token i is real (see the class comment). */
    public void forwardMasked(MemorySegment x, long xOff, int t, boolean[] mask, MemorySegment y, long yOff,
                              boolean training) {
        forward(x, xOff, t, null, null, mask, y, yOff, training);
    }

    /**
     * The full forward: token ids (hash routing), the previous layer's logits (gating residual, T×E over all
     * positions) and a padding mask ({@code mask[i]} true = real; null = every token is real) may each be null.
     */
    public void forward(MemorySegment x, long xOff, int t, int[] tokenIds, float[] prevLogits, boolean[] mask,
                        MemorySegment y, long yOff, boolean training) {
        if (mask == null) {
            forward(x, xOff, t, tokenIds, prevLogits, y, yOff, training);
            return;
        }
        if (t < 0 || t > config.maxTokens()) {
            throw new IllegalArgumentException("batch of " + t + " tokens exceeds the layer's maxTokens = " + config.maxTokens());
        }
        if (mask.length < t) throw new IllegalArgumentException("mask has " + mask.length + " entries for " + t + " tokens");
        if (tokenIds != null && tokenIds.length < t) {
            throw new IllegalArgumentException("tokenIds has " + tokenIds.length + " entries for " + t + " tokens");
        }
        int e = config.numExperts();
        if (prevLogits != null && prevLogits.length < t * e) {
            throw new IllegalArgumentException("prevLogits has " + prevLogits.length + " entries, need T·E = " + t * e);
        }
        allocateMaskBuffers();
        lastReal = -1;
        int n = 0;
        for (int i = 0; i < t; i++) if (mask[i]) realIndex[n++] = i;
        if (n == t) { // nothing to mask: the plain path, no copies
            forward(x, xOff, t, tokenIds, prevLogits, y, yOff, training);
            return;
        }
        RowOps ops = kernels.rows();
        if (n > 0) ops.gatherRows(n, d, x, xOff, d, realIndex, 0, xc, 0, d);
        int[] ids = null;
        if (tokenIds != null) {
            for (int i = 0; i < n; i++) idsC[i] = tokenIds[realIndex[i]];
            ids = idsC;
        }
        float[] prev = null;
        if (prevLogits != null) {
            for (int i = 0; i < n; i++) System.arraycopy(prevLogits, realIndex[i] * e, prevC, i * e, e);
            prev = prevC;
        }
        forwardBatch(xc, 0, n, ids, prev, mask, t, yc, 0, training);
        lastReal = n;
        lastFull = t;
        F32.zero(y, yOff, (long) t * d);
        if (n > 0) ops.scatterAddRows(n, d, yc, 0, d, realIndex, 0, null, 0, y, yOff, d);
        java.util.Arrays.fill(logitsFull, 0, t * e, 0f);
        for (int i = 0; i < n; i++) System.arraycopy(routing.logits, i * e, logitsFull, realIndex[i] * e, e);
    }

    private void allocateMaskBuffers() {
        if (realIndex != null) return;
        int maxT = config.maxTokens(), e = config.numExperts();
        Arena auto = Arena.ofAuto(); // freed with the layer; any thread may use it, unlike a confined arena
        realIndex = new int[maxT];
        xc = F32.alloc(auto, (long) maxT * d);
        yc = F32.alloc(auto, (long) maxT * d);
        dxc = F32.alloc(auto, (long) maxT * d);
        idsC = new int[maxT];
        logitsFull = new float[maxT * e];
        prevC = new float[maxT * e];
        dLogitsC = new float[maxT * e];
        dPrevC = new float[maxT * e];
    }

    /** Forward of t routed tokens; {@code mask}/{@code fullT} describe the original batch when x is compact. */
    private void forwardBatch(MemorySegment x, long xOff, int t, int[] tokenIds, float[] prevLogits, boolean[] mask,
                              int fullT, MemorySegment y, long yOff, boolean training) {
        Routing r = routing;
        long t0 = System.nanoTime();
        if (mask == null) r.reset(t);
        else r.reset(mask, fullT);
        router.forward(x, xOff, t, tokenIds, prevLogits, r, training);
        if (config.dispatch() == DispatchMode.CAPACITY && !router.appliesOwnCapacity()) {
            capacity.apply(r, config.groupSize(), config::capacity, config.priority());
        }
        long t1 = System.nanoTime();
        dispatch.plan(r);
        int rows = dispatch.rows();
        RowOps ops = kernels.rows();
        float s = inputScale;
        pool.parallelRanges(rows, 64, (from, to, w) -> {
            ops.gatherRows(to - from, d, x, xOff, d, dispatch.rowToken, from, xPerm, (long) from * d, d);
            if (s != 1f) for (int row = from; row < to; row++) ops.scale(d, s, xPerm, (long) row * d);
        });
        if (gateIn != null) gatherGateInput();
        long t2 = System.nanoTime();
        if (gateIn != null) experts.forward(xPerm, 0, gateIn, 0, dispatch.binStart);
        else experts.forward(xPerm, 0, dispatch.binStart);
        long t3 = System.nanoTime();
        combine(x, xOff, t, y, yOff);
        long t4 = System.nanoTime();
        if (shared != null) sharedForward(x, xOff, t, y, yOff);
        long t5 = System.nanoTime();
        profile.add(MoeProfile.Phase.ROUTER, t1 - t0);
        profile.add(MoeProfile.Phase.DISPATCH, t2 - t1);
        profile.add(MoeProfile.Phase.EXPERTS, t3 - t2);
        profile.add(MoeProfile.Phase.COMBINE, t4 - t3);
        if (shared != null) profile.add(MoeProfile.Phase.SHARED, t5 - t4);
        lastMetrics = MoeMetrics.of(config.layerIndex(), r, router.state());
    }

    /** Gate input of expert j's rows: router feature row (t·E + j), per bin (features are (T·E, gateRank)). */
    private void gatherGateInput() {
        RowOps ops = kernels.rows();
        MemorySegment feats = router.expertFeatures();
        int ld = routing.numExperts * gateRank;
        for (int j = 0; j < dispatch.binStart.length - 1; j++) {
            int r0 = dispatch.binStart[j], n = dispatch.count(j);
            if (n > 0) ops.gatherRows(n, gateRank, feats, (long) j * gateRank, ld, dispatch.rowToken, r0, gateIn,
                    (long) r0 * gateRank, gateRank);
        }
    }

    /**
     * y_t = Σ_r w·Yperm[row(t,r)], per token in rank order (deterministic, parallel over tokens); slots of special
     * experts are evaluated in place from x_t.
     */
    private void combine(MemorySegment x, long xOff, int t, MemorySegment y, long yOff) {
        RowOps ops = kernels.rows();
        MemorySegment yp = experts.output();
        int slots = routing.slots;
        pool.parallelRanges(t, TOKEN_CHUNK, (from, to, w) -> {
            for (int i = from; i < to; i++) {
                long yo = yOff + (long) i * d;
                F32.zero(y, yo, d);
                for (int k = 0; k < slots; k++) {
                    int s = i * slots + k, row = dispatch.slotRow[s];
                    if (row >= 0) ops.axpy(d, routing.weight[s], yp, (long) row * d, y, yo);
                    else if (special != null && routing.kept[s] && special.contains(routing.expert[s])) {
                        special.addOutput(ops, routing.expert[s], s, x, xOff + (long) i * d, inputScale,
                                routing.weight[s], y, yo);
                    }
                }
            }
        });
    }

    private void sharedForward(MemorySegment x, long xOff, int t, MemorySegment y, long yOff) {
        allTokens[1] = t;
        shared.forward(x, xOff, allTokens);
        MemorySegment s = shared.output();
        RowOps ops = kernels.rows();
        pool.parallelRanges(t, TOKEN_CHUNK, (from, to, w) -> {
            for (int i = from; i < to; i++) {
                float g = 1f;
                if (sharedGate != null) {
                    float z = ops.dot(d, sharedGate.data(), 0, x, xOff + (long) i * d);
                    g = (float) (1.0 / (1.0 + Math.exp(-z)));
                }
                gateVal[i] = g;
                ops.axpy(d, g, s, (long) i * d, y, yOff + (long) i * d);
            }
        });
    }

    /**
     * Backward of the last forward: dy (T, d) → dx (T, d) accumulated (+=), parameter gradients accumulated.
     */
    public void backward(MemorySegment x, long xOff, MemorySegment dy, long dyOff, MemorySegment dx, long dxOff) {
        backward(x, xOff, dy, dyOff, dx, dxOff, null, null);
    }

    /**
     * Backward with the gating residual's gradients: {@code dLogits} (T×E, may be null) = ∂L/∂{@link #logits()}
     * from the next MoE layer; {@code dPrevLogits} (T×E, may be null) accumulates ∂L/∂prevLogits for the previous
     * layer. See the class comment for the contract.
     */
    public void backward(MemorySegment x, long xOff, MemorySegment dy, long dyOff, MemorySegment dx, long dxOff,
                         float[] dLogits, float[] dPrevLogits) {
        if (lastReal < 0) {
            backwardBatch(x, xOff, dy, dyOff, dx, dxOff, dLogits, dPrevLogits);
            return;
        }
        // masked: run on the compact batch of the forward (xc still holds its inputs), then scatter dx back;
        // padding rows of dx and dPrevLogits get nothing
        int n = lastReal, e = config.numExperts();
        RowOps ops = kernels.rows();
        if (n > 0) ops.gatherRows(n, d, dy, dyOff, d, realIndex, 0, yc, 0, d);
        F32.zero(dxc, 0, (long) n * d);
        float[] dl = null, dp = null;
        if (dLogits != null) {
            for (int i = 0; i < n; i++) System.arraycopy(dLogits, realIndex[i] * e, dLogitsC, i * e, e);
            dl = dLogitsC;
        }
        if (dPrevLogits != null) {
            java.util.Arrays.fill(dPrevC, 0, n * e, 0f);
            dp = dPrevC;
        }
        backwardBatch(xc, 0, yc, 0, dxc, 0, dl, dp);
        if (n > 0) ops.scatterAddRows(n, d, dxc, 0, d, realIndex, 0, null, 0, dx, dxOff, d);
        if (dp != null) {
            for (int i = 0; i < n; i++) {
                int o = realIndex[i] * e;
                for (int j = 0; j < e; j++) dPrevLogits[o + j] += dp[i * e + j];
            }
        }
    }

    private void backwardBatch(MemorySegment x, long xOff, MemorySegment dy, long dyOff, MemorySegment dx, long dxOff,
                               float[] dLogits, float[] dPrevLogits) {
        int t = routing.tokens();
        int slots = routing.slots;
        int rows = dispatch.rows();
        RowOps ops = kernels.rows();
        MemorySegment yp = experts.output();
        long t0 = System.nanoTime();
        java.util.Arrays.fill(dWeight, 0, t * slots, 0f);
        // combine backward, per permuted row: dYperm = w·dy_t, dw = <dy_t, Yperm>
        pool.parallelRanges(rows, 64, (from, to, w) -> {
            for (int row = from; row < to; row++) {
                int s = dispatch.rowSlot[row], tok = dispatch.rowToken[row];
                long dyo = dyOff + (long) tok * d, ro = (long) row * d;
                dWeight[s] = ops.dot(d, dy, dyo, yp, ro);
                F32.zero(dyPerm, ro, d);
                ops.axpy(d, routing.weight[s], dy, dyo, dyPerm, ro);
            }
        });
        long t1 = System.nanoTime();
        if (gateIn != null) {
            experts.backward(xPerm, 0, gateIn, 0, dispatch.binStart, dyPerm, 0, dxPerm, 0, dGateIn, 0);
            scatterGateInputGrad();
        } else {
            experts.backward(xPerm, 0, dispatch.binStart, dyPerm, 0, dxPerm, 0);
        }
        long t2 = System.nanoTime();
        // gather backward: dx_t += s·Σ_r dXperm[row(t,r)]
        float sc = inputScale;
        pool.parallelRanges(t, TOKEN_CHUNK, (from, to, w) -> {
            for (int i = from; i < to; i++) {
                for (int k = 0; k < slots; k++) {
                    int row = dispatch.slotRow[i * slots + k];
                    if (row >= 0) ops.axpy(d, sc, dxPerm, (long) row * d, dx, dxOff + (long) i * d);
                }
            }
        });
        if (special != null) specialBackward(x, xOff, t, dy, dyOff, dx, dxOff);
        long t3 = System.nanoTime();
        router.backward(x, xOff, t, routing, dWeight, dLogits, dPrevLogits, dx, dxOff);
        long t4 = System.nanoTime();
        if (shared != null) sharedBackward(x, xOff, t, dy, dyOff, dx, dxOff);
        long t5 = System.nanoTime();
        profile.add(MoeProfile.Phase.COMBINE_BWD, (t1 - t0) + (t3 - t2));
        profile.add(MoeProfile.Phase.EXPERTS_BWD, t2 - t1);
        profile.add(MoeProfile.Phase.ROUTER_BWD, t4 - t3);
        if (shared != null) profile.add(MoeProfile.Phase.SHARED_BWD, t5 - t4);
    }

    /** Special experts' slots, sequential over tokens in rank order (their parameter gradients are shared). */
    private void specialBackward(MemorySegment x, long xOff, int t, MemorySegment dy, long dyOff,
                                 MemorySegment dx, long dxOff) {
        RowOps ops = kernels.rows();
        int slots = routing.slots;
        for (int i = 0; i < t; i++) {
            for (int k = 0; k < slots; k++) {
                int s = i * slots + k;
                if (!routing.kept[s] || !special.contains(routing.expert[s])) continue;
                long o = (long) i * d;
                dWeight[s] = special.backward(ops, routing.expert[s], s, x, xOff + o, inputScale, routing.weight[s],
                        dy, dyOff + o, dx, dxOff + o);
            }
        }
    }

    /** Router feature gradient row (t·E + j) += dGateIn row, per bin; each (t, j) occurs at most once. */
    private void scatterGateInputGrad() {
        RowOps ops = kernels.rows();
        MemorySegment dFeats = router.expertFeatureGrad();
        int ld = routing.numExperts * gateRank;
        for (int j = 0; j < dispatch.binStart.length - 1; j++) {
            int r0 = dispatch.binStart[j], n = dispatch.count(j);
            if (n > 0) ops.scatterAddRows(n, gateRank, dGateIn, (long) r0 * gateRank, gateRank, dispatch.rowToken, r0,
                    null, 0, dFeats, (long) j * gateRank, ld);
        }
    }

    private void sharedBackward(MemorySegment x, long xOff, int t, MemorySegment dy, long dyOff,
                                MemorySegment dx, long dxOff) {
        RowOps ops = kernels.rows();
        MemorySegment s = shared.output();
        // dS_t = g_t·dy_t ; gate: dz_t = <dy_t, S_t>·g(1−g), dw_sg += dz·x_t, dx_t += dz·w_sg
        float[] dz = sharedGate != null ? gateGrad : null;
        pool.parallelRanges(t, TOKEN_CHUNK, (from, to, w) -> {
            for (int i = from; i < to; i++) {
                long o = (long) i * d;
                F32.zero(dySh, o, d);
                ops.axpy(d, gateVal[i], dy, dyOff + o, dySh, o);
                if (dz != null) {
                    float g = gateVal[i];
                    dz[i] = ops.dot(d, dy, dyOff + o, s, o) * g * (1 - g);
                }
            }
        });
        if (sharedGate != null) {
            // deterministic: sequential over tokens for the (1, d) gate gradient
            for (int i = 0; i < t; i++) {
                ops.axpy(d, dz[i], x, xOff + (long) i * d, sharedGate.gradData(), 0);
                ops.axpy(d, dz[i], sharedGate.data(), 0, dx, dxOff + (long) i * d);
            }
        }
        allTokens[1] = t;
        shared.backward(x, xOff, allTokens, dySh, 0, sharedDx, 0);
        pool.parallelRanges(t, TOKEN_CHUNK, (from, to, w) -> {
            for (int i = from; i < to; i++) ops.axpy(d, 1f, sharedDx, (long) i * d, dx, dxOff + (long) i * d);
        });
    }
}
