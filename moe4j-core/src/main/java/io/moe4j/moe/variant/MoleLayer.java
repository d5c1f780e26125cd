package io.moe4j.moe.variant;

import io.moe4j.kernel.Kernels;
import io.moe4j.kernel.row.RowOps;
import io.moe4j.moe.ExpertBank;
import io.moe4j.moe.router.LinearGate;
import io.moe4j.moe.router.RouterMath;
import io.moe4j.nn.F32;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Mixture of Lookup Experts, training form (spec §4.16; JieShibo/MoLE {@code MoleDecoderLayer}): the experts read
 * the <em>token embedding</em> of the current token, not the hidden state, so after training they can be replaced by
 * a {@link MoleLookupTable}.
 *
 * <pre>
 *   u   = RMSNorm_post(h)                 (T, d)  the caller's, as for any FFN block
 *   emb = Emb[v_t]                        (T, d)  embedding-layer output rows of the batch's token ids
 *   p   = softmax(u·W_rᵀ)                 (T, E)  fp32, no top-k: ALL experts active
 *   e_t = RMSNorm_expert(emb_t)           per-layer norm weight (d)
 *   y_t = FFN_shared(u_t) + Σ_e p_{t,e} · FFN_e(e_t)          h ← h + y is the caller's residual
 * </pre>
 * No auxiliary loss. Backward: {@code dp_{t,e} = ⟨dy_t, FFN_e(e_t)⟩} through the softmax into the router;
 * {@code dFFN_e(e_t) = p_{t,e}·dy_t} into the experts and the norm (its weight and dEmb); dy into the shared FFN.
 * The caller gathers {@code emb} with {@link RowOps#gatherRows} from its embedding table and scatter-adds
 * {@code dEmb} back with {@link RowOps#scatterAddRows} (the same table also feeds the first layer's h).
 *
 * <p>Contract: {@link #backward} uses the activations of the most recent {@link #forward}, whose inputs must be
 * unchanged. Buffers are preallocated for {@code maxTokens}; the hot path allocates nothing. Non-goals: the
 * attention half of the block and the embedding table itself.
 */
public final class MoleLayer {
    private static final int TOKEN_CHUNK = 8;

    private final MoleConfig config;
    private final Kernels kernels;
    private final WorkerPool pool;
    private final int d, e;
    private final LinearGate router;     // W_r (E, d)
    private final ExpertBank experts;    // E GELU MLPs over E·maxT rows
    private final DenseExperts dense;
    private final ExpertBank shared;     // one FFN over maxT rows
    private final Param norm;            // (d) expert RMSNorm weight

    private final float[] logits;        // (maxT·E)
    private final float[] probs;         // (maxT·E)
    private final float[] dProbs;        // (maxT·E)
    private final float[] dLogits;       // (maxT·E)
    private final float[] rstd;          // (maxT) saved by the expert norm
    private final MemorySegment eNorm;   // (maxT, d) normalised embeddings, the experts' input
    private final MemorySegment dENorm;  // (maxT, d)
    private final MemorySegment dOut;    // (E·maxT, d) gradient of the expert outputs, expert-major
    private final MemorySegment sharedDx;// (maxT, d)
    private final int[] allTokens = new int[2]; // shared FFN bins {0, T}
    private int tokens;

    public MoleLayer(MoleConfig config, Arena arena, Kernels kernels, WorkerPool pool) {
        this.config = config;
        this.kernels = kernels;
        this.pool = pool;
        this.d = config.dModel();
        this.e = config.numExperts();
        int maxT = config.maxTokens();
        String prefix = "layers." + config.layerIndex() + ".mole";
        this.router = new LinearGate(arena, prefix + ".router.weight", d, e, kernels, pool);
        this.experts = new ExpertBank(arena, prefix + ".experts", config.expertType(), e, d, config.expertHidden(),
                e * maxT, kernels, pool);
        this.dense = new DenseExperts(arena, experts, e, d, maxT, kernels, pool);
        this.shared = new ExpertBank(arena, prefix + ".shared", config.expertType(), 1, d, config.sharedHidden(),
                maxT, kernels, pool);
        this.norm = new Param(arena, prefix + ".expert_norm.weight", d).fill(1f);
        this.logits = new float[maxT * e];
        this.probs = new float[maxT * e];
        this.dProbs = new float[maxT * e];
        this.dLogits = new float[maxT * e];
        this.rstd = new float[maxT];
        this.eNorm = F32.alloc(arena, (long) maxT * d);
        this.dENorm = F32.alloc(arena, (long) maxT * d);
        this.dOut = F32.alloc(arena, (long) e * maxT * d);
        this.sharedDx = F32.alloc(arena, (long) maxT * d);
    }

    public MoleConfig config() { return config; }
    public LinearGate router() { return router; }
    public ExpertBank experts() { return experts; }
    public ExpertBank shared() { return shared; }
    /** The per-layer expert RMSNorm weight (d). */
    public Param expertNorm() { return norm; }
    /** Router probabilities (T·E, row-major) of the last forward. */
    public float[] probs() { return probs; }

    public List<Param> params() {
        List<Param> ps = new ArrayList<>();
        ps.add(router.weight());
        ps.addAll(experts.params());
        ps.addAll(shared.params());
        ps.add(norm);
        return ps;
    }

    /** N(0, std²) for router and FFNs, down projections scaled by {@code downScale}; the norm weight stays 1. */
    public void init(SplittableRandom rng, double std, double downScale) {
        for (Param p : params()) {
            if (p == norm) continue;
            p.initNormal(rng, p.name().endsWith(".down") ? std * downScale : std);
        }
    }

    /** y (T, d) = MoLE(u, emb): u the normed hidden state, emb the current tokens' embedding rows. y overwritten. */
    public void forward(MemorySegment u, long uOff, MemorySegment emb, long embOff, int t, MemorySegment y, long yOff) {
        route(u, uOff, t, y, yOff);
        expertOutputs(emb, embOff, t);
        MemorySegment out = dense.output();
        RowOps ops = kernels.rows();
        pool.parallelRanges(t, TOKEN_CHUNK, (from, to, w) -> {
            for (int i = from; i < to; i++) {
                long yo = yOff + (long) i * d;
                for (int j = 0; j < e; j++) ops.axpy(d, probs[i * e + j], out, dense.offset(j, i), y, yo);
            }
        });
    }

    /**
     * Inference with the re-parameterised experts (spec §4.16): {@code y_t = FFN_shared(u_t) + Σ_e p_{t,e} ·
     * LUT[v_t, l, e]}. Runs only the router and the shared FFN; the expert weights are not read.
     */
    public void forwardLookup(MemorySegment u, long uOff, int[] tokenIds, int t, MoleLookupTable lut,
                              MemorySegment y, long yOff) {
        int slot = lut.slotOf(config.layerIndex());
        lut.checkTokens(tokenIds, t);
        route(u, uOff, t, y, yOff);
        pool.parallelRanges(t, TOKEN_CHUNK, (from, to, w) -> {
            for (int i = from; i < to; i++) {
                long yo = yOff + (long) i * d;
                for (int j = 0; j < e; j++) lut.accumulate(tokenIds[i], slot, j, probs[i * e + j], y, yo);
            }
        });
    }

    /** Router softmax into {@link #probs} and the shared FFN's output into y (overwritten). */
    private void route(MemorySegment u, long uOff, int t, MemorySegment y, long yOff) {
        if (t < 0 || t > config.maxTokens()) {
            throw new IllegalArgumentException("batch of " + t + " tokens exceeds mole.maxTokens = " + config.maxTokens());
        }
        tokens = t;
        router.forward(u, uOff, t, logits);
        RouterMath.requireFinite(logits, t, e, config.layerIndex());
        for (int i = 0; i < t; i++) RouterMath.softmax(logits, probs, i * e, e);
        allTokens[1] = t;
        shared.forward(u, uOff, allTokens);
        MemorySegment.copy(shared.output(), 0, y, yOff * Float.BYTES, (long) t * d * Float.BYTES);
    }

    /**
     * FFN_e(RMSNorm_expert(emb_t)) for all experts and t tokens, into the dense bank's output (row j·t + i). Used by
     * the forward and to build lookup tables; overwrites the activations a pending {@link #backward} needs.
     */
    public void expertOutputs(MemorySegment emb, long embOff, int t) {
        if (t < 0 || t > config.maxTokens()) {
            throw new IllegalArgumentException("batch of " + t + " tokens exceeds mole.maxTokens = " + config.maxTokens());
        }
        RowOps ops = kernels.rows();
        float eps = config.normEps();
        pool.parallelRanges(t, TOKEN_CHUNK, (from, to, w) -> {
            for (int i = from; i < to; i++) {
                rstd[i] = ops.rmsnorm(d, emb, embOff + (long) i * d, norm.data(), 0, eps, eNorm, (long) i * d);
            }
        });
        dense.forward(eNorm, 0, t);
    }

    /** The experts' outputs of the last forward, (E·T, d) expert-major: row j·T + i is FFN_j(e_i). */
    public MemorySegment expertOutput() { return dense.output(); }

    /** Float offset of FFN_expert(e_token) in {@link #expertOutput()}. */
    public long expertOffset(int expert, int token) { return dense.offset(expert, token); }

    /**
     * Backward of the last forward: dy (T, d) → du (T, d) and dEmb (T, d) accumulated (+=); gradients of the router,
     * experts, shared FFN and expert norm accumulated.
     */
    public void backward(MemorySegment u, long uOff, MemorySegment emb, long embOff, MemorySegment dy, long dyOff,
                         MemorySegment du, long duOff, MemorySegment dEmb, long dEmbOff) {
        int t = tokens;
        RowOps ops = kernels.rows();
        MemorySegment out = dense.output();
        // combine: dOut_{j,i} = p_{i,j}·dy_i, dp_{i,j} = ⟨dy_i, FFN_j(e_i)⟩, then the softmax Jacobian per token
        pool.parallelRanges(t, TOKEN_CHUNK, (from, to, w) -> {
            for (int i = from; i < to; i++) {
                long dyo = dyOff + (long) i * d;
                for (int j = 0; j < e; j++) {
                    long o = dense.offset(j, i);
                    dProbs[i * e + j] = ops.dot(d, dy, dyo, out, o);
                    F32.zero(dOut, o, d);
                    ops.axpy(d, probs[i * e + j], dy, dyo, dOut, o);
                    dLogits[i * e + j] = 0f;
                }
                RouterMath.softmaxBackward(probs, dProbs, dLogits, i * e, e);
            }
        });
        router.backward(u, uOff, t, dLogits, du, duOff);
        F32.zero(dENorm, 0, (long) t * d);
        dense.backward(dOut, 0, dENorm, 0);
        // sequential over tokens: every token adds into the one (d) norm-weight gradient, in a fixed order
        for (int i = 0; i < t; i++) {
            long o = (long) i * d;
            ops.rmsnormBackward(d, dENorm, o, emb, embOff + o, norm.data(), 0, rstd[i], dEmb, dEmbOff + o,
                    norm.gradData(), 0);
        }
        allTokens[1] = t;
        shared.backward(u, uOff, allTokens, dy, dyOff, sharedDx, 0);
        pool.parallelRanges(t, TOKEN_CHUNK, (from, to, w) -> {
            for (int i = from; i < to; i++) ops.axpy(d, 1f, sharedDx, (long) i * d, du, duOff + (long) i * d);
        });
    }
}
