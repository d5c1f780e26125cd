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
    public float[] logits() { return routing.logits; }
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
        Routing r = routing;
        long t0 = System.nanoTime();
        r.reset(t);
        router.forward(x, xOff, t, tokenIds, prevLogits, r, training);
        if (config.dispatch() == DispatchMode.CAPACITY && !router.appliesOwnCapacity()) {
            capacity.apply(r, config.groupTokens(t), config::capacity, config.priority());
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
