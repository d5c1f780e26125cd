package io.moe4j.moe.router;

import io.moe4j.kernel.Kernels;
import io.moe4j.moe.MoeConfig;
import io.moe4j.moe.Routing;
import io.moe4j.moe.loss.BalanceLoss;
import io.moe4j.moe.loss.CvSquared;
import io.moe4j.moe.loss.ZLoss;
import io.moe4j.nn.CounterRng;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.List;

/**
 * Noisy top-k gating with importance and load losses (Shazeer et al. 2017; spec §4.1, as tensor2tensor's
 * {@code noisy_top_k_gating} and {@code local_moe}).
 *
 * <pre>
 *   clean = x·W_gᵀ,  std = softplus(x·W_noiseᵀ) + ε  (training; 0 at inference),  noisy = clean + n ⊙ std
 *   v = the min(k+1, E) largest noisy values (descending), I = the indices of the first k
 *   w_r = softmax over {noisy_j : j ∈ I}          (selection and weighting both on the noisy logits)
 *   Importance_e = Σ_t gates_{t,e}
 *   Load_e = Σ_t Φ((clean_{t,e} − thr_{t,e}) / std_{t,e}),  thr = (noisy_{t,e} > v_k) ? v_k : v_{k−1}
 *            (inference, or k = E: the number of tokens routed to e — no gradient)
 *   L_aux = balanceCoef · (CV²(Importance) + CV²(Load))
 * </pre>
 * The noise n ~ N(0, I) is one {@link CounterRng} draw per training forward ({@link #rng()}), so resetting the
 * draw counter replays it. Φ is t2t's {@code 0.5·(1 + erf(Δ / (√2·std + 1e-20)))}.
 *
 * <p>Config mapping: the losses are on when {@code balanceLoss != NONE}; t2t uses one coefficient for the sum
 * ({@code loss_coef = 1e-2}), which is {@code balanceCoef} here (the paper's separate weights are unverified,
 * spec §6 item 1). The kind of {@code balanceLoss} is otherwise unused. Computed per routing group
 * ({@code groupSize}) and averaged over groups; the z-loss, if configured, is on the clean logits.
 * The spec zero-initialises W_g and W_noise: the parameters are allocated zeroed, so a router that is never
 * initialised starts exactly there (all logits equal, noise std ln 2 + ε), while {@code MoeLayer.init} draws both
 * from N(0, std²) like every other parameter. Jitter is rejected for this router (its noise is learned).
 *
 * <p>Backward (spec §3.9 rule 10, re-parameterised noise): the gates' softmax over the selected noisy logits
 * gives ∂L/∂noisy; {@code noisy = clean + n·std} sends it to W_g (through clean) and to W_noise (through
 * {@code std = softplus(h) + ε}, softplus' = σ). The load term adds ∂P/∂clean_e, ∂P/∂std_e and, because the
 * thresholds are not detached, −∂P/∂Δ on the noisy logit of the threshold expert. Indices: no gradient.
 *
 * <p>Non-goals: the paper's hierarchical MoE and its separate importance/load weights; the V-MoE noisy router
 * (§4.10), which differs (softmax before top-k, fixed noise std, clean-softmax importance).
 */
public final class NoisyTopKRouter implements Router {
    private static final double SQRT2 = Math.sqrt(2);
    private static final double INV_SQRT_PI = 1 / Math.sqrt(Math.PI);

    private final int d, e, k, m, layer;
    private final double eps, coef, zCoef;
    private final int groupSize;
    private final LinearGate gate;       // W_g
    private final LinearGate noiseGate;  // W_noise
    private final CounterRng rng;

    // Preallocated per maxTokens.
    private final float[] rawNoise;  // (maxT·E) h = x·W_noiseᵀ
    private final float[] std;       // (maxT·E) softplus(h) + ε, 0 at inference
    private final float[] noise;     // (maxT·E) n ~ N(0, 1)
    private final float[] noisy;     // (maxT·E) clean + n·std
    private final float[] loadProb;  // (maxT·E) P_{t,e} (or the 0/1 routing indicator when not smooth)
    private final float[] dNoisy;    // (maxT·E) ∂L/∂noisy, seeded with the aux losses in forward
    private final float[] dClean;    // (maxT·E) ∂L/∂clean, seeded with the load and z-loss terms in forward
    private final float[] dStd;      // (maxT·E) ∂L/∂std, seeded with the load term in forward
    private final int[] top;         // (maxT·m) indices of the m largest noisy values per token, descending
    private final int[] sel;         // (m)
    private final double[] importance, load, dImportance, dLoad; // (E)
    private boolean lastTraining;

    public NoisyTopKRouter(MoeConfig c, Arena arena, Kernels kernels, WorkerPool pool) {
        this.d = c.dModel();
        this.e = c.numExperts();
        this.k = c.topK();
        this.m = Math.min(k + 1, e);
        this.layer = c.layerIndex();
        this.eps = c.noiseEps();
        this.coef = c.balanceLoss() == BalanceLoss.NONE ? 0 : c.balanceCoef();
        this.zCoef = c.zLossCoef();
        this.groupSize = c.groupSize();
        String prefix = "layers." + layer + ".moe.router.";
        this.gate = new LinearGate(arena, prefix + "weight", d, e, kernels, pool, 0, c.seed(), c.maxTokens());
        this.noiseGate = new LinearGate(arena, prefix + "noise_weight", d, e, kernels, pool);
        this.rng = gate.rng();
        int n = c.maxTokens() * e;
        this.rawNoise = new float[n];
        this.std = new float[n];
        this.noise = new float[n];
        this.noisy = new float[n];
        this.loadProb = new float[n];
        this.dNoisy = new float[n];
        this.dClean = new float[n];
        this.dStd = new float[n];
        this.top = new int[c.maxTokens() * m];
        this.sel = new int[m];
        this.importance = new double[e];
        this.load = new double[e];
        this.dImportance = new double[e];
        this.dLoad = new double[e];
    }

    @Override public String name() { return "noisy-topk"; }
    @Override public int slots() { return k; }
    @Override public List<Param> params() { return List.of(gate.weight(), noiseGate.weight()); }
    @Override public CounterRng rng() { return rng; }

    /** W_g (E, d). */
    public Param gateWeight() { return gate.weight(); }
    /** W_noise (E, d). */
    public Param noiseWeight() { return noiseGate.weight(); }
    /** Noise std per (token, expert) of the last forward, T×E (0 at inference); for tests and diagnostics. */
    public float[] noiseStd() { return std; }
    /** Noisy logits of the last forward, T×E (= the clean logits at inference). */
    public float[] noisyLogits() { return noisy; }
    /** P_{t,e} of the last forward's load estimate, T×E (the 0/1 routing indicator when the load is a count). */
    public float[] loadProbability() { return loadProb; }

    @Override
    public void forward(MemorySegment x, long xOff, int t, int[] tokenIds, Routing r, boolean training) {
        float[] clean = r.logits, gates = r.scores;
        int n = t * e;
        gate.forward(x, xOff, t, clean, false);
        RouterMath.requireFinite(clean, t, e, layer);
        lastTraining = training;
        if (training) {
            noiseGate.forward(x, xOff, t, rawNoise, false);
            RouterMath.requireFinite(rawNoise, t, e, layer);
            long draw = rng.next();
            for (int i = 0; i < n; i++) {
                std[i] = (float) (softplus(rawNoise[i]) + eps);
                noise[i] = (float) rng.gaussian(draw, i);
                noisy[i] = clean[i] + noise[i] * std[i];
            }
        } else {
            Arrays.fill(std, 0, n, 0f);
            Arrays.fill(noise, 0, n, 0f);
            System.arraycopy(clean, 0, noisy, 0, n);
        }
        for (int i = 0; i < t; i++) {
            int off = i * e;
            RouterMath.topK(noisy, off, e, m, sel);
            System.arraycopy(sel, 0, top, i * m, m);
            // softmax over the k selected noisy logits (max-shifted: sel[0] is the largest)
            double max = noisy[off + sel[0]], sum = 0;
            for (int j = 0; j < k; j++) sum += Math.exp(noisy[off + sel[j]] - max);
            Arrays.fill(gates, off, off + e, 0f);
            for (int j = 0; j < k; j++) {
                float g = (float) (Math.exp(noisy[off + sel[j]] - max) / sum);
                gates[off + sel[j]] = g;
                r.assign(i, j, sel[j], g);
            }
        }
        Arrays.fill(dNoisy, 0, n, 0f);
        Arrays.fill(dClean, 0, n, 0f);
        Arrays.fill(dStd, 0, n, 0f);
        r.balanceLoss = coef == 0 || t == 0 ? 0 : auxLosses(r, t, gates, clean, training);
        r.zLoss = ZLoss.compute(clean, t, e, zCoef, training ? dClean : null);
    }

    /** coef·(CV²(Importance) + CV²(Load)) per group, averaged; seeds the gradient buffers when training. */
    private double auxLosses(Routing r, int t, float[] gates, float[] clean, boolean training) {
        double c = coef / r.activeGroups(groupSize), total = 0;
        boolean smooth = training && k < e;
        for (int gi = 0, gn = r.groupCount(groupSize); gi < gn; gi++) {
            int start = r.groupStart(groupSize, gi), end = r.groupEnd(groupSize, gi);
            if (end == start) continue; // a group of padding only
            Arrays.fill(importance, 0);
            Arrays.fill(load, 0);
            for (int i = start; i < end; i++) {
                int off = i * e;
                for (int j = 0; j < e; j++) {
                    importance[j] += gates[off + j];
                    double p = smooth ? probInTopK(i, j, clean) : (gates[off + j] > 0 ? 1 : 0);
                    loadProb[off + j] = (float) p;
                    load[j] += p;
                }
            }
            Arrays.fill(dImportance, 0);
            Arrays.fill(dLoad, 0);
            total += c * (CvSquared.valueAndGradient(importance, e, c, training ? dImportance : null)
                    + CvSquared.valueAndGradient(load, e, c, smooth ? dLoad : null));
            if (training) for (int i = start; i < end; i++) seedAuxGradient(i, gates, clean, smooth);
        }
        return total;
    }

    /** Φ((clean − thr)/std) for (token i, expert j), t2t's formula with its 1e-20 guard. */
    private double probInTopK(int i, int j, float[] clean) {
        int off = i * e;
        double thr = noisy[off + thresholdExpert(i, j)];
        double w = (clean[off + j] - thr) / (SQRT2 * std[off + j] + 1e-20);
        return 0.5 * Gaussian.erfc(-w);
    }

    /** The expert whose noisy logit is the threshold: v_k's if noisy_{i,j} > v_k (j is in the top k), else v_{k−1}'s. */
    private int thresholdExpert(int i, int j) {
        int in = top[i * m + k];
        return noisy[i * e + j] > noisy[i * e + in] ? in : top[i * m + k - 1];
    }

    /** Adds token i's share of ∂(aux)/∂(noisy, clean, std). */
    private void seedAuxGradient(int i, float[] gates, float[] clean, boolean smooth) {
        int off = i * e, o = i * m;
        // importance: ∂/∂gates, then the softmax over the selected noisy logits
        double dot = 0;
        for (int j = 0; j < k; j++) dot += gates[off + top[o + j]] * dImportance[top[o + j]];
        for (int j = 0; j < k; j++) {
            int ex = top[o + j];
            dNoisy[off + ex] += (float) (gates[off + ex] * (dImportance[ex] - dot));
        }
        if (!smooth) return;
        // load: P = ½(1 + erf(w)), w = (clean_j − noisy_thr) / den, den = √2·std_j + 1e-20
        for (int j = 0; j < e; j++) {
            if (dLoad[j] == 0) continue;
            int te = thresholdExpert(i, j);
            double den = SQRT2 * std[off + j] + 1e-20;
            double w = (clean[off + j] - noisy[off + te]) / den;
            double dw = dLoad[j] * INV_SQRT_PI * Math.exp(-w * w);   // ∂L/∂w
            dClean[off + j] += (float) (dw / den);
            dStd[off + j] += (float) (-dw * w * SQRT2 / den);
            dNoisy[off + te] += (float) (-dw / den);
        }
    }

    @Override
    public void backward(MemorySegment x, long xOff, int t, Routing r, float[] dWeight, MemorySegment dx, long dxOff) {
        float[] gates = r.scores;
        for (int i = 0; i < t; i++) {
            int off = i * e, s0 = i * k;
            // weights = softmax over the selected noisy logits; pre-drop values are in gates (scores)
            double dot = 0;
            for (int j = 0; j < k; j++) dot += gates[off + r.expert[s0 + j]] * dWeight[s0 + j];
            for (int j = 0; j < k; j++) {
                int ex = r.expert[s0 + j];
                dNoisy[off + ex] += (float) (gates[off + ex] * (dWeight[s0 + j] - dot));
            }
        }
        int n = t * e;
        for (int i = 0; i < n; i++) dClean[i] += dNoisy[i];
        gate.backward(x, xOff, t, dClean, dx, dxOff);
        if (lastTraining) {
            // noisy = clean + n·std, std = softplus(h) + ε: ∂L/∂h = (∂L/∂std + n·∂L/∂noisy)·σ(h)
            for (int i = 0; i < n; i++) dStd[i] = (float) ((dStd[i] + noise[i] * dNoisy[i]) * sigmoid(rawNoise[i]));
            noiseGate.backward(x, xOff, t, dStd, dx, dxOff);
        }
    }

    private static double softplus(double h) { return h > 30 ? h : Math.log1p(Math.exp(h)); }

    private static double sigmoid(double h) { return 1 / (1 + Math.exp(-h)); }
}
