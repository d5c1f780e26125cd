package io.moe4j.moe.router;

import io.moe4j.kernel.Kernels;
import io.moe4j.moe.InvalidConfigException;
import io.moe4j.moe.MoeConfig;
import io.moe4j.moe.Routing;
import io.moe4j.moe.loss.BalanceLoss;
import io.moe4j.moe.loss.ZLoss;
import io.moe4j.nn.CounterRng;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * MoE++ routing ("moe++", spec §4.14; SkyworkAI {@code moe_plus_plus_layer.py}), for a layer whose last expert ids
 * are zero-computation experts ({@code moe.constantExperts/copyExperts/zeroExperts}, handled by the layer).
 * <pre>
 *   z  = gate(x) [+ G·prevLogits]            gate: W2·tanh(W1·x) (routerHidden > 0) or W_r·x; G: (E, E), gatingResidual
 *   u  = z / (std(z)/logitsNormStd)          only when logitsNormStd > 0 (unbiased std over the E logits)
 *   p  = softmax(u);  I = topk(p, k);  v_r = p_{I_r}
 *   v_r = 0 if I_r is a zero expert          dropZeroExpertWeight (released code; paper: keep it)
 *   w_r = v_r / Σ v                          normalizeTopK (0 when every selected expert is a zero expert)
 *   w_r ·= routedScale;  expert input = k·x  unless expertInputNoMulTopK
 * </pre>
 * The layer exposes z (after the residual, before the normalisation) as the next layer's prevLogits, as the
 * reference returns them. The reference's {@code moe_use_mixtral_gating} (top-k on logits, softmax of the
 * selected, no zero-expert rule, no input scaling) is {@code normalizeTopK = true, dropZeroExpertWeight = false,
 * expertInputNoMulTopK = true} here. Aux losses: the configured balance loss on p over all E experts and the
 * z-loss on z.
 *
 * <p><b>Heterogeneous load-balance loss</b> (the paper's, with τ = {@code moe.zeroComputeBalanceWeight}; not in the
 * released code, and its exact formula is unverified — spec §4.14, §6 item 8). Reading implemented:
 * <pre>
 *   L = coef · E · Σ_e η_e · F_e · P_e,    η_e = 1 for FFN experts, τ for zero-computation (zero/copy/constant)
 * </pre>
 * with F and P exactly as the configured normalisation ({@code moe.balanceLoss}, §3.6) defines them over all E
 * experts. Why this reading: the paper states the loss as the Switch-style Σ f_i·P_i with a per-expert factor that
 * is 1 for FFN experts and τ for zero-computation ones; keeping F, P and N of the configured normalisation makes
 * τ = 1 exactly the plain loss (so the default changes nothing and coefficients stay portable), and a smaller τ
 * penalises load on the cheap experts less, so more tokens may take them — the knob the paper describes. The
 * gradient is the plain one scaled per expert: {@code ∂L/∂π_{t,e} = coef·E·η_e·F_e/T}.</p>
 *
 * <p>Backward (§3.9): the renormalisation over the kept selections (a dropped zero weight is a constant 0), the
 * softmax Jacobian, the logit normalisation {@code dz_j = c·du_j − c·(z_j − m)/((E−1)σ²)·Σ_i du_i z_i} with
 * c = logitsNormStd/σ, plus ∂L/∂z from later layers; then the residual {@code dG += dzᵀ·prev},
 * {@code dPrev += dz·G}, and the gate.
 */
public final class MoePlusPlusRouter implements Router {
    private final Kernels kernels;
    private final WorkerPool pool;
    private final int e, k, layer, groupSize, zeroFrom;
    private final boolean normalize, dropZero;
    private final float scale, inputScale;
    private final double normStd, balanceCoef, zCoef;
    private final BalanceLoss balance;
    private final RouterLosses losses;
    private final LinearGate linear;   // null when two-layer
    private final TwoLayerGate twoLayer; // null when linear
    private final Param gateMap;       // (E, E) G, null without gating residual

    private final float[] prev;        // (maxT·E) copy of the previous layer's logits
    private boolean hasPrev;           // the last forward added a residual
    private final float[] normed;      // (maxT·E) u, the softmax input
    private final float[] dProbs;      // (maxT·E) ∂L/∂p, seeded with the balance-loss gradient in forward
    private final float[] dLogits;     // (maxT·E) ∂L/∂z, seeded with the z-loss gradient in forward
    private final float[] du;          // (E) one token's ∂L/∂u
    private final int[] sel;           // (k)
    private final double[] eta;        // (E) balance weight per expert: 1 (FFN) or τ (zero-computation); null if τ = 1

    public MoePlusPlusRouter(MoeConfig c, Arena arena, Kernels kernels, WorkerPool pool) {
        this.kernels = kernels;
        this.pool = pool;
        int d = c.dModel();
        this.e = c.numExperts();
        this.k = c.topK();
        this.layer = c.layerIndex();
        this.groupSize = c.groupSize();
        this.zeroFrom = e - c.zeroExperts();
        this.normalize = c.normalizeTopK();
        this.dropZero = c.dropZeroExpertWeight();
        this.scale = c.routedScale();
        this.inputScale = c.expertInputNoMulTopK() ? 1f : k;
        this.normStd = c.logitsNormStd();
        this.balance = c.balanceLoss();
        this.balanceCoef = c.balanceCoef();
        this.zCoef = c.zLossCoef();
        double tau = c.zeroComputeBalanceWeight();
        if (tau != 1.0) {
            this.eta = new double[e];
            for (int j = 0; j < e; j++) eta[j] = j < c.ffnExperts() ? 1.0 : tau;
        } else {
            this.eta = null;
        }
        if (normStd > 0 && e < 2) {
            throw new InvalidConfigException("moe.logitsNormStd needs moe.numExperts >= 2 (the std of one logit is undefined)");
        }
        if (c.routerHidden() > 0 && c.jitter() > 0) {
            throw new InvalidConfigException("moe.jitter must be 0 with the two-layer gate (moe.routerHidden = "
                    + c.routerHidden() + "), got " + c.jitter());
        }
        int maxT = c.maxTokens();
        String prefix = "layers." + layer + ".moe.router";
        this.linear = c.routerHidden() == 0
                ? new LinearGate(arena, prefix + ".weight", d, e, kernels, pool, c.jitter(), c.seed(), maxT) : null;
        this.twoLayer = c.routerHidden() > 0
                ? new TwoLayerGate(arena, prefix, d, e, c.routerHidden(), maxT, kernels, pool) : null;
        this.gateMap = c.gatingResidual() ? new Param(arena, prefix + ".gate_map", e, e) : null;
        this.losses = new RouterLosses(e, maxT);
        this.prev = new float[c.gatingResidual() ? maxT * e : 0];
        this.normed = new float[maxT * e];
        this.dProbs = new float[maxT * e];
        this.dLogits = new float[maxT * e];
        this.du = new float[e];
        this.sel = new int[k];
    }

    @Override public String name() { return "moe++"; }
    @Override public int slots() { return k; }
    @Override public float expertInputScale() { return inputScale; }
    @Override public CounterRng rng() { return linear != null ? linear.rng() : null; }

    @Override
    public List<Param> params() {
        List<Param> ps = new ArrayList<>(linear != null ? List.of(linear.weight()) : twoLayer.params());
        if (gateMap != null) ps.add(gateMap);
        return ps;
    }

    /** The residual map G (E, E), or null. */
    public Param gateMap() { return gateMap; }

    @Override
    public void forward(MemorySegment x, long xOff, int t, int[] tokenIds, Routing r, boolean training) {
        forward(x, xOff, t, tokenIds, null, r, training);
    }

    @Override
    public void forward(MemorySegment x, long xOff, int t, int[] tokenIds, float[] prevLogits, Routing r,
                        boolean training) {
        float[] z = r.logits, p = r.scores;
        if (linear != null) linear.forward(x, xOff, t, z, training);
        else twoLayer.forward(x, xOff, t, z);
        hasPrev = prevLogits != null;
        if (hasPrev) {
            if (gateMap == null) {
                throw new IllegalArgumentException("layer " + layer + ": previous logits given but moe.gatingResidual is false");
            }
            System.arraycopy(prevLogits, 0, prev, 0, t * e);
            kernels.gemm().nt(pool, t, e, e, MemorySegment.ofArray(prev), 0, e, gateMap.data(), 0, e,
                    MemorySegment.ofArray(z), 0, e, true);
        }
        RouterMath.requireFinite(z, t, e, layer);
        for (int i = 0; i < t; i++) {
            int off = i * e;
            double c = normFactor(z, off);
            for (int j = 0; j < e; j++) normed[off + j] = (float) (c * z[off + j]);
            RouterMath.softmax(normed, p, off, e);
            RouterMath.topK(p, off, e, k, sel);
            double sum = 0;
            for (int j = 0; j < k; j++) sum += kept(sel[j]) ? p[off + sel[j]] : 0;
            for (int j = 0; j < k; j++) {
                double w = kept(sel[j]) ? p[off + sel[j]] : 0;
                if (normalize) w = sum > 0 ? w / sum : 0;
                r.assign(i, j, sel[j], (float) (w * scale));
            }
        }
        Arrays.fill(dProbs, 0, t * e, 0f);
        Arrays.fill(dLogits, 0, t * e, 0f);
        r.balanceLoss = losses.balance(balance, r, p, t, k, balanceCoef, groupSize, eta, training ? dProbs : null);
        r.zLoss = ZLoss.compute(z, t, e, zCoef, training ? dLogits : null);
    }

    /** Whether a selection of expert {@code ex} keeps its probability as weight (zero experts lose it). */
    private boolean kept(int ex) { return !(dropZero && ex >= zeroFrom); }

    /**
     * c = logitsNormStd / std(z row) (unbiased), or 1 when the normalisation is off or the logits are all equal
     * (the softmax is uniform either way, and the reference's 0/0 would be NaN).
     */
    private double normFactor(float[] z, int off) {
        if (normStd <= 0) return 1;
        double m = 0, v = 0;
        for (int j = 0; j < e; j++) m += z[off + j];
        m /= e;
        for (int j = 0; j < e; j++) v += (z[off + j] - m) * (z[off + j] - m);
        double sd = Math.sqrt(v / (e - 1));
        return sd > 0 ? normStd / sd : 1;
    }

    @Override
    public void backward(MemorySegment x, long xOff, int t, Routing r, float[] dWeight, MemorySegment dx, long dxOff) {
        backward(x, xOff, t, r, dWeight, null, null, dx, dxOff);
    }

    @Override
    public void backward(MemorySegment x, long xOff, int t, Routing r, float[] dWeight, float[] dLogitsIn,
                         float[] dPrevLogits, MemorySegment dx, long dxOff) {
        float[] p = r.scores, z = r.logits;
        for (int i = 0; i < t; i++) {
            int off = i * e, s0 = i * k;
            double sum = 0, dot = 0;
            for (int j = 0; j < k; j++) if (kept(r.expert[s0 + j])) sum += p[off + r.expert[s0 + j]];
            if (normalize && sum > 0) {
                for (int j = 0; j < k; j++) {
                    if (kept(r.expert[s0 + j])) dot += dWeight[s0 + j] * (p[off + r.expert[s0 + j]] / sum);
                }
            }
            for (int j = 0; j < k; j++) {
                int ex = r.expert[s0 + j];
                if (!kept(ex)) continue;
                if (!normalize) dProbs[off + ex] += scale * dWeight[s0 + j];
                else if (sum > 0) dProbs[off + ex] += (float) (scale * (dWeight[s0 + j] - dot) / sum);
            }
            Arrays.fill(du, 0f);
            double pdot = 0;
            for (int j = 0; j < e; j++) pdot += (double) dProbs[off + j] * p[off + j];
            for (int j = 0; j < e; j++) du[j] = (float) (p[off + j] * (dProbs[off + j] - pdot));
            double m = 0, v = 0, duz = 0;
            if (normStd > 0) {
                for (int j = 0; j < e; j++) m += z[off + j];
                m /= e;
                for (int j = 0; j < e; j++) {
                    v += (z[off + j] - m) * (z[off + j] - m);
                    duz += (double) du[j] * z[off + j];
                }
            }
            double var = v / Math.max(1, e - 1);
            if (var > 0) {
                double c = normStd / Math.sqrt(var);
                for (int j = 0; j < e; j++) {
                    dLogits[off + j] += (float) (c * du[j] - c * (z[off + j] - m) / ((e - 1) * var) * duz);
                }
            } else {
                for (int j = 0; j < e; j++) dLogits[off + j] += du[j];
            }
        }
        if (dLogitsIn != null) for (int i = 0; i < t * e; i++) dLogits[i] += dLogitsIn[i];
        if (hasPrev) {
            MemorySegment dz = MemorySegment.ofArray(dLogits);
            kernels.gemm().tn(pool, e, e, t, dz, 0, e, MemorySegment.ofArray(prev), 0, e, gateMap.gradData(), 0, e, true);
            if (dPrevLogits != null) {
                kernels.gemm().nn(pool, t, e, e, dz, 0, e, gateMap.data(), 0, e, MemorySegment.ofArray(dPrevLogits), 0,
                        e, true);
            }
        }
        if (linear != null) linear.backward(x, xOff, t, dLogits, dx, dxOff);
        else twoLayer.backward(x, xOff, t, dLogits, dx, dxOff);
    }
}
