package io.moe4j.moe.variant;

import io.moe4j.kernel.Kernels;
import io.moe4j.kernel.row.RowOps;
import io.moe4j.moe.Dispatch;
import io.moe4j.moe.ExpertBank;
import io.moe4j.moe.MoeConfig;
import io.moe4j.moe.Routing;
import io.moe4j.moe.loss.BalanceLoss;
import io.moe4j.moe.router.LinearGate;
import io.moe4j.moe.router.RouterLosses;
import io.moe4j.moe.router.RouterMath;
import io.moe4j.moe.router.SoftmaxTopKRouter;
import io.moe4j.nn.F32;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * CompeteSMoE (spec §4.18; Fsoft-AIC/CompeteSMoE {@code moe_model/model/moe/competesmoe.py}): a softmax top-k MoE
 * whose router is periodically trained to imitate a competition among the experts.
 *
 * <pre>
 * router policy (normal steps, inference):  p = softmax(x·W_rᵀ), I = topk(p, k), w = p_I / Σ p_I
 *     aux = balanceLossCoef·E²·mean_e(F_e^{top-1}·P_e) (per sequence) + routerZLossCoef·z-loss
 * competition policy (scheduled training steps):
 *     o_e = FFN_e(x) for ALL e,  a_e = mean_d softplus(o_e),  s = a (or σ(a) with normSigmoid)
 *     I = topk(s, k),  w = s_I / Σ s_I,  y = Σ_{e∈I} w_e·o_e
 *     aux = routerLossCoef·(MSE(p, stopgrad(q)) [+ θ·MSE(p_I, stopgrad(q_I))]) + diversityLossCoef·D(o_I)
 *         + balCompLossCoef·E²·mean_e(F_e^{top-1}·mean_t softmax(a)_e)       (softmax(a) NOT detached)
 *     q = softmax(a); the bracketed "hybrid" term (config.hybrid, θ = routerTheta) is the same MSE over the
 *     competition-selected experts I only, mean over T·K entries (reference: args.hybrid, router_theta)
 * </pre>
 * Backward, router policy: as {@link io.moe4j.moe.MoeLayer} (combine → experts → gather → router with its aux
 * gradients). Competition policy: the router learns only from the router loss; the experts learn from the task loss
 * through o_I and through the weights w(a) (renormalisation, σ, mean softplus), from the diversity loss, and from
 * the balance loss through softmax(a) — all experts, since every a_e enters the softmax.
 *
 * <p>{@link #routing()} describes the last forward under either policy: experts and weights chosen, router logits
 * and probabilities, and the aux values with coefficients ({@code balanceLoss}: the active balance term,
 * {@code zLoss}, {@code otherLoss}: router + diversity terms). Contract: {@link #backward} uses the activations of
 * the most recent {@link #forward} and its unchanged input. Preallocated for {@code maxTokens}; the hot path
 * allocates nothing beyond the balance loss's E-sized scratch. Non-goal: the reference's per-step metrics
 * logging.
 */
public final class CompeteSmoeLayer {
    /** Which policy produced a forward. */
    public enum Policy { ROUTER, COMPETITION }

    private static final int TOKEN_CHUNK = 8;

    private final CompeteConfig config;
    private final CompeteSchedule schedule; // may be null: never compete
    private final Kernels kernels;
    private final WorkerPool pool;
    private final int d, e, k;
    private final SoftmaxTopKRouter router;
    private final LinearGate gate;
    private final Routing routing;
    private final Dispatch dispatch;
    private final ExpertBank experts;      // E experts, E·maxT rows (dense competition pass)
    private final DenseExperts dense;
    private final RouterLosses balance;

    // router policy (sparse)
    private final MemorySegment xPerm;     // (k·maxT, d) gathered inputs
    private final MemorySegment dyPerm;    // (k·maxT, d)
    private final MemorySegment dxPerm;    // (k·maxT, d)
    private final float[] dWeight;         // (maxT·k)
    // competition policy (dense)
    private final float[] affinity;        // (maxT·E) a = mean softplus(o)
    private final float[] affSoft;         // (maxT·E) q = softmax(a)
    private final float[] score;           // (maxT·E) s = a or σ(a), the selection score
    private final float[] dAff;            // (maxT·E)
    private final float[] dQ;              // (maxT·E) balCompLossCoef·∂bal/∂q, from the forward
    private final float[] dProbs;          // (maxT·E) routerLossCoef·∂R/∂p, from the forward
    private final float[] dLogits;         // (maxT·E)
    private final MemorySegment dOut;      // (E·maxT, d) gradient of all experts' outputs, expert-major
    private final int[] sel;               // (k) selection scratch
    private final long[] selOff;           // (k) offsets of one token's selected outputs

    private Policy lastPolicy = Policy.ROUTER;
    private int tokens;
    private double routerLoss, hybridLoss, diversityLoss, competitionBalance;

    /** @param schedule competition steps of the whole model, or null for a layer that never competes */
    public CompeteSmoeLayer(CompeteConfig config, CompeteSchedule schedule, Arena arena, Kernels kernels,
                            WorkerPool pool) {
        this.config = config;
        this.schedule = schedule;
        if (schedule != null && config.layerIndex() >= schedule.layers()) {
            throw new IllegalArgumentException("compete.layerIndex = " + config.layerIndex()
                    + " is outside the schedule's " + schedule.layers() + " layers");
        }
        this.kernels = kernels;
        this.pool = pool;
        this.d = config.dModel();
        this.e = config.numExperts();
        this.k = config.topK();
        int maxT = config.maxTokens();
        // The router policy is exactly moe4j's softmax top-k router with renormalisation and the top-1 (Switch)
        // balance normalisation: the reference's one_hot(selected)[0] counts rank 0 only, E²·mean_e = E·Σ_e.
        MoeConfig rc = MoeConfig.builder().dModel(d).numExperts(e).topK(k).expertHidden(config.expertHidden())
                .expertType(config.expertType()).normalizeTopK(true).balanceLoss(BalanceLoss.SWITCH)
                .balanceCoef(config.balanceLossCoef()).zLossCoef(config.routerZLossCoef())
                .groupSize(config.groupSize()).maxTokens(maxT).layerIndex(config.layerIndex()).build();
        this.router = new SoftmaxTopKRouter("softmax-topk", rc, arena, kernels, pool);
        this.gate = router.gate();
        this.routing = new Routing(e, k, maxT);
        this.dispatch = new Dispatch(e, k, maxT, k * maxT);
        this.experts = new ExpertBank(arena, "layers." + config.layerIndex() + ".moe.experts", config.expertType(), e,
                d, config.expertHidden(), e * maxT, kernels, pool);
        this.dense = new DenseExperts(arena, experts, e, d, maxT, kernels, pool);
        this.balance = new RouterLosses(e, maxT);
        long sparseRows = (long) k * maxT;
        this.xPerm = F32.alloc(arena, sparseRows * d);
        this.dyPerm = F32.alloc(arena, sparseRows * d);
        this.dxPerm = F32.alloc(arena, sparseRows * d);
        this.dWeight = new float[maxT * k];
        this.affinity = new float[maxT * e];
        this.affSoft = new float[maxT * e];
        this.score = new float[maxT * e];
        this.dAff = new float[maxT * e];
        this.dQ = new float[maxT * e];
        this.dProbs = new float[maxT * e];
        this.dLogits = new float[maxT * e];
        this.dOut = F32.alloc(arena, (long) e * maxT * d);
        this.sel = new int[k];
        this.selOff = new long[k];
    }

    public CompeteConfig config() { return config; }
    public SoftmaxTopKRouter router() { return router; }
    public ExpertBank experts() { return experts; }
    /** The routing decision and aux values of the last forward (either policy). */
    public Routing routing() { return routing; }
    public Policy lastPolicy() { return lastPolicy; }
    /** Affinities a (T·E, row-major) of the last competition forward. */
    public float[] affinity() { return affinity; }
    /** Router loss of the last competition forward, without its coefficient (hybrid term included, times θ). */
    public double routerLoss() { return routerLoss; }
    /** The hybrid term H of the last competition forward, without θ or the coefficient (0 unless config.hybrid). */
    public double hybridLoss() { return hybridLoss; }
    /** Diversity loss of the last competition forward, without its coefficient. */
    public double diversityLoss() { return diversityLoss; }
    /** Balance loss on softmax(a) of the last competition forward, without its coefficient. */
    public double competitionBalanceLoss() { return competitionBalance; }
    /** All auxiliary losses of the last forward, coefficients included (add to the task loss). */
    public double auxLoss() { return routing.auxLoss(); }

    public List<Param> params() {
        List<Param> ps = new ArrayList<>(router.params());
        ps.addAll(experts.params());
        return ps;
    }

    /** N(0, std²) for router and experts, down projections scaled by {@code downScale}. */
    public void init(SplittableRandom rng, double std, double downScale) {
        for (Param p : params()) p.initNormal(rng, p.name().endsWith(".down") ? std * downScale : std);
    }

    /** y (T, d) from x (T, d); the policy comes from the schedule: competition iff training and scheduled. */
    public void forward(MemorySegment x, long xOff, int t, MemorySegment y, long yOff, boolean training, long step) {
        boolean compete = training && schedule != null && schedule.competes(config.layerIndex(), step);
        forward(x, xOff, t, y, yOff, compete ? Policy.COMPETITION : Policy.ROUTER, training);
    }

    /** y (T, d) from x (T, d) under an explicit policy; the competition policy is training-only. */
    public void forward(MemorySegment x, long xOff, int t, MemorySegment y, long yOff, Policy policy, boolean training) {
        if (policy == Policy.COMPETITION && !training) {
            throw new IllegalArgumentException("the competition policy runs only in training (inference routes)");
        }
        if (t < 0 || t > config.maxTokens()) {
            throw new IllegalArgumentException("batch of " + t + " tokens exceeds compete.maxTokens = " + config.maxTokens());
        }
        tokens = t;
        lastPolicy = policy;
        routing.reset(t);
        if (policy == Policy.ROUTER) routerForward(x, xOff, t, y, yOff, training);
        else competitionForward(x, xOff, t, y, yOff);
    }

    /** Backward of the last forward: dy (T, d) → dx (T, d) accumulated (+=), parameter gradients accumulated. */
    public void backward(MemorySegment x, long xOff, MemorySegment dy, long dyOff, MemorySegment dx, long dxOff) {
        if (lastPolicy == Policy.ROUTER) routerBackward(x, xOff, dy, dyOff, dx, dxOff);
        else competitionBackward(x, xOff, dy, dyOff, dx, dxOff);
    }

    // ------------------------------------------------------------------ router policy

    private void routerForward(MemorySegment x, long xOff, int t, MemorySegment y, long yOff, boolean training) {
        router.forward(x, xOff, t, null, routing, training);
        dispatch.plan(routing);
        RowOps ops = kernels.rows();
        pool.parallelRanges(dispatch.rows(), 64, (from, to, w) ->
                ops.gatherRows(to - from, d, x, xOff, d, dispatch.rowToken, from, xPerm, (long) from * d, d));
        experts.forward(xPerm, 0, dispatch.binStart);
        MemorySegment yp = experts.output();
        pool.parallelRanges(t, TOKEN_CHUNK, (from, to, w) -> {
            for (int i = from; i < to; i++) {
                long yo = yOff + (long) i * d;
                F32.zero(y, yo, d);
                for (int r = 0; r < k; r++) {
                    int s = i * k + r;
                    ops.axpy(d, routing.weight[s], yp, (long) dispatch.slotRow[s] * d, y, yo);
                }
            }
        });
    }

    private void routerBackward(MemorySegment x, long xOff, MemorySegment dy, long dyOff, MemorySegment dx, long dxOff) {
        int t = tokens;
        RowOps ops = kernels.rows();
        MemorySegment yp = experts.output();
        // combine backward per permuted row: dYperm = w·dy_t, dw = ⟨dy_t, Yperm⟩
        pool.parallelRanges(dispatch.rows(), 64, (from, to, w) -> {
            for (int row = from; row < to; row++) {
                int s = dispatch.rowSlot[row], tok = dispatch.rowToken[row];
                long dyo = dyOff + (long) tok * d, ro = (long) row * d;
                dWeight[s] = ops.dot(d, dy, dyo, yp, ro);
                F32.zero(dyPerm, ro, d);
                ops.axpy(d, routing.weight[s], dy, dyo, dyPerm, ro);
            }
        });
        experts.backward(xPerm, 0, dispatch.binStart, dyPerm, 0, dxPerm, 0);
        pool.parallelRanges(t, TOKEN_CHUNK, (from, to, w) -> {
            for (int i = from; i < to; i++) {
                for (int r = 0; r < k; r++) {
                    ops.axpy(d, 1f, dxPerm, (long) dispatch.slotRow[i * k + r] * d, dx, dxOff + (long) i * d);
                }
            }
        });
        router.backward(x, xOff, t, routing, dWeight, dx, dxOff);
    }

    // ------------------------------------------------------------------ competition policy

    private void competitionForward(MemorySegment x, long xOff, int t, MemorySegment y, long yOff) {
        float[] z = routing.logits, p = routing.scores;
        gate.forward(x, xOff, t, z);
        RouterMath.requireFinite(z, t, e, config.layerIndex());
        for (int i = 0; i < t; i++) RouterMath.softmax(z, p, i * e, e);

        dense.forward(x, xOff, t);
        MemorySegment out = dense.output();
        float invD = 1f / d;
        pool.parallelRanges(t, TOKEN_CHUNK, (from, to, w) -> {
            for (int i = from; i < to; i++) {
                for (int j = 0; j < e; j++) {
                    long o = dense.offset(j, i);
                    double sum = 0;
                    for (int c = 0; c < d; c++) sum += softplus(F32.get(out, o + c));
                    affinity[i * e + j] = (float) sum * invD;
                }
                RouterMath.softmax(affinity, affSoft, i * e, e);
            }
        });
        // selection: sequential, T·E·k compares next to the E·T·d·f GEMMs
        for (int i = 0; i < t; i++) {
            int off = i * e;
            for (int j = 0; j < e; j++) {
                float a = affinity[off + j];
                score[off + j] = config.normSigmoid() ? (float) (1 / (1 + Math.exp(-a))) : a;
            }
            RouterMath.topK(score, off, e, k, sel);
            double sum = 0;
            for (int r = 0; r < k; r++) sum += score[off + sel[r]];
            for (int r = 0; r < k; r++) routing.assign(i, r, sel[r], (float) (score[off + sel[r]] / sum));
        }
        RowOps ops = kernels.rows();
        pool.parallelRanges(t, TOKEN_CHUNK, (from, to, w) -> {
            for (int i = from; i < to; i++) {
                long yo = yOff + (long) i * d;
                F32.zero(y, yo, d);
                for (int r = 0; r < k; r++) {
                    int s = i * k + r;
                    ops.axpy(d, routing.weight[s], out, dense.offset(routing.expert[s], i), y, yo);
                }
            }
        });

        routerLoss = CompetitionLosses.routerLoss(p, affSoft, t, e, config.routerLossCoef(), dProbs);
        hybridLoss = 0;
        if (config.hybrid()) {
            hybridLoss = CompetitionLosses.topKRouterLoss(p, affSoft, routing.expert, t, e, k,
                    config.routerLossCoef() * config.routerTheta(), dProbs);
            routerLoss += config.routerTheta() * hybridLoss;
        }
        Arrays.fill(dLogits, 0, t * e, 0f);
        for (int i = 0; i < t; i++) RouterMath.softmaxBackward(p, dProbs, dLogits, i * e, e);

        Arrays.fill(dQ, 0, t * e, 0f);
        competitionBalance = balance.balance(BalanceLoss.SWITCH, routing, affSoft, t, k, 1.0, config.groupSize(), dQ);
        float bc = (float) config.balCompLossCoef();
        for (int i = 0; i < t * e; i++) dQ[i] *= bc;

        double div = 0;
        for (int i = 0; i < t; i++) {
            for (int r = 0; r < k; r++) selOff[r] = dense.offset(routing.expert[i * k + r], i);
            div += CompetitionLosses.pairwiseCosine(k, d, out, selOff);
        }
        diversityLoss = t == 0 ? 0 : div / ((double) t * k * k);

        routing.balanceLoss = config.balCompLossCoef() * competitionBalance;
        routing.zLoss = 0;
        routing.otherLoss = config.routerLossCoef() * routerLoss + config.diversityLossCoef() * diversityLoss;
    }

    private void competitionBackward(MemorySegment x, long xOff, MemorySegment dy, long dyOff, MemorySegment dx,
                                     long dxOff) {
        int t = tokens;
        RowOps ops = kernels.rows();
        MemorySegment out = dense.output();
        boolean sig = config.normSigmoid();
        float invD = 1f / d;
        pool.parallelRanges(t, TOKEN_CHUNK, (from, to, w) -> {
            for (int i = from; i < to; i++) {
                int off = i * e, s0 = i * k;
                long dyo = dyOff + (long) i * d;
                for (int j = 0; j < e; j++) {
                    F32.zero(dOut, dense.offset(j, i), d);
                    dAff[off + j] = 0f;
                }
                // combine: dOut_e += w_e·dy, dw_e = ⟨dy, o_e⟩; renormalisation w = s/Σs (§3.9 rule 3)
                double sum = 0, dot = 0;
                for (int r = 0; r < k; r++) sum += score[off + routing.expert[s0 + r]];
                for (int r = 0; r < k; r++) {
                    int s = s0 + r;
                    long o = dense.offset(routing.expert[s], i);
                    float dw = ops.dot(d, dy, dyo, out, o);
                    dWeight[s] = dw;
                    dot += (double) routing.weight[s] * dw;
                    ops.axpy(d, routing.weight[s], dy, dyo, dOut, o);
                }
                for (int r = 0; r < k; r++) {
                    int s = s0 + r, j = routing.expert[s];
                    double ds = (dWeight[s] - dot) / sum;
                    float sv = score[off + j];
                    dAff[off + j] += (float) (sig ? ds * sv * (1 - sv) : ds);
                }
                // balance on q = softmax(a)
                RouterMath.softmaxBackward(affSoft, dQ, dAff, off, e);
                // a_j = mean softplus(o_j): ∂a_j/∂o_j = σ(o_j)/d
                for (int j = 0; j < e; j++) {
                    float g = dAff[off + j] * invD;
                    if (g == 0f) continue;
                    long o = dense.offset(j, i);
                    for (int c = 0; c < d; c++) {
                        float v = F32.get(out, o + c);
                        F32.set(dOut, o + c, F32.get(dOut, o + c) + g * (float) sigmoid(v));
                    }
                }
            }
        });
        double divScale = config.diversityLossCoef() / ((double) t * k * k);
        if (divScale != 0 && k > 1) {
            for (int i = 0; i < t; i++) {
                for (int r = 0; r < k; r++) selOff[r] = dense.offset(routing.expert[i * k + r], i);
                CompetitionLosses.pairwiseCosineBackward(k, d, out, selOff, divScale, dOut, selOff);
            }
        }
        dense.backward(dOut, 0, dx, dxOff);
        // the router learns only from the router loss (its target softmax(a) is detached)
        gate.backward(x, xOff, t, dLogits, dx, dxOff);
    }

    private static double softplus(double v) { return Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v))); }

    private static double sigmoid(double v) { return 1 / (1 + Math.exp(-v)); }
}
