package io.moe4j.moe.router;

import io.moe4j.kernel.Kernels;
import io.moe4j.moe.MoeConfig;
import io.moe4j.moe.Routing;
import io.moe4j.moe.loss.BalanceLoss;
import io.moe4j.moe.loss.ZLoss;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.List;

/**
 * DeepSeek routing (spec §4.7, §4.8): fine-grained experts with group-limited selection.
 *
 * <pre>
 *   V2 ("deepseek-v2"):  s = softmax(z); group score = max of s in the group
 *   V3 ("deepseek-v3"):  s = σ(z); selection on sb = s + b (b: per-expert bias, no gradient);
 *                        group score = sum of the 2 largest sb in the group
 *   keep the topkGroup best groups (others masked to −∞ — DeepSeek's rule, not HF's 0.0), I = topk(masked, k)
 *   w_i = s_i  (unbiased), renormalised over I when normalizeTopK (V3: true), then × routedScale
 * </pre>
 * V3's bias moves after every optimizer step: {@code b_e += γ·sign(c̄ − c_e)} with c_e the tokens routed to e
 * over the step ({@link #afterStep}). The balance loss uses π = s/Σs for V3 (the sequence-wise loss when
 * groupSize is the sequence length and the loss is MEGABLOCKS) and π = s for V2. The indicator counts the actual
 * (biased, group-limited) routing decision — the spec's default for its unverified item 13 — or, with
 * {@code balanceUnbiasedTopK}, the paper's unbiased top-k of s.
 *
 * <p>Backward: through the renormalisation, then σ' = s(1−s) (V3) or the softmax Jacobian (V2); the balance
 * loss adds its gradient on π; no gradient reaches b, the group choice or the indices.
 */
public final class DeepSeekRouter implements Router {
    private final String name;
    private final boolean sigmoid;
    private final int d, e, k, layer, nGroup, topkGroup, perGroup, groupSize;
    private final boolean normalize;
    private final float scale;
    private final BalanceLoss balance;
    private final double balanceCoef, zCoef, gamma;
    private final LinearGate gate;
    private final RouterLosses losses;

    private final float[] bias;        // (E) V3 selection bias, fp32 state
    private final long[] stepLoad;     // (E) tokens per expert since the last afterStep
    private final float[] pi;          // (maxT·E) balance-loss distribution
    private final float[] dPi;         // (maxT·E)
    private final float[] dScores;     // (maxT·E)
    private final float[] dLogits;     // (maxT·E)
    private final float[] sel;         // (E) selection scores of one token
    private final float[] groupScore;  // (nGroup)
    private final int[] keptGroups;    // (topkGroup)
    private final int[] idx;           // (k)
    private final boolean unbiasedIndicator;
    private final int[] unbiased;      // (maxT·k) unbiased top-k of s, the balance-loss indicator when configured

    public DeepSeekRouter(String name, MoeConfig c, Arena arena, Kernels kernels, WorkerPool pool) {
        this.name = name;
        this.sigmoid = name.equals("deepseek-v3");
        this.d = c.dModel();
        this.e = c.numExperts();
        this.k = c.topK();
        this.layer = c.layerIndex();
        this.nGroup = c.nGroup();
        this.topkGroup = c.topkGroup();
        this.perGroup = e / nGroup;
        this.groupSize = c.groupSize();
        this.normalize = c.normalizeTopK();
        this.scale = c.routedScale();
        this.balance = c.balanceLoss();
        this.balanceCoef = c.balanceCoef();
        this.zCoef = c.zLossCoef();
        this.gamma = c.biasUpdateSpeed();
        this.gate = new LinearGate(arena, "layers." + layer + ".moe.router.weight", d, e, kernels, pool,
                c.jitter(), c.seed(), c.maxTokens());
        this.losses = new RouterLosses(e, c.maxTokens());
        int n = c.maxTokens() * e;
        this.bias = new float[e];
        this.stepLoad = new long[e];
        this.pi = new float[n];
        this.dPi = new float[n];
        this.dScores = new float[n];
        this.dLogits = new float[n];
        this.sel = new float[e];
        this.groupScore = new float[nGroup];
        this.keptGroups = new int[topkGroup];
        this.idx = new int[k];
        this.unbiasedIndicator = sigmoid && c.balanceUnbiasedTopK();
        this.unbiased = unbiasedIndicator ? new int[c.maxTokens() * k] : new int[0];
    }

    @Override public String name() { return name; }
    @Override public int slots() { return k; }
    @Override public List<Param> params() { return List.of(gate.weight()); }
    @Override public io.moe4j.nn.CounterRng rng() { return gate.rng(); }
    @Override public float[] state() { return sigmoid ? bias.clone() : new float[0]; }

    @Override
    public void restoreState(float[] state) {
        if (state.length != (sigmoid ? e : 0)) {
            throw new IllegalArgumentException("router " + name + " state has " + (sigmoid ? e : 0) + " values, got " + state.length);
        }
        System.arraycopy(state, 0, bias, 0, state.length);
    }

    /** The V3 selection bias (e_score_correction_bias); mutable for checkpoint loading and tests. */
    public float[] bias() { return bias; }

    @Override
    public void forward(MemorySegment x, long xOff, int t, int[] tokenIds, Routing r, boolean training) {
        float[] z = r.logits, s = r.scores;
        gate.forward(x, xOff, t, z, training);
        RouterMath.requireFinite(z, t, e, layer);
        for (int i = 0; i < t; i++) {
            int off = i * e;
            if (sigmoid) {
                for (int j = 0; j < e; j++) s[off + j] = (float) (1.0 / (1.0 + Math.exp(-z[off + j])));
                for (int j = 0; j < e; j++) sel[j] = s[off + j] + bias[j];
            } else {
                RouterMath.softmax(z, s, off, e);
                System.arraycopy(s, off, sel, 0, e);
            }
            if (nGroup > 1) maskGroups();
            RouterMath.topK(sel, 0, e, k, idx);
            double sum = 0;
            for (int j = 0; j < k; j++) sum += s[off + idx[j]];
            for (int j = 0; j < k; j++) {
                double w = s[off + idx[j]];
                if (normalize) w /= sum + 1e-20;
                r.assign(i, j, idx[j], (float) (w * scale));
            }
        }
        if (training) for (int j = 0; j < e; j++) stepLoad[j] += r.assigned[j];
        // balance loss on π: V3 normalises the sigmoid scores per token, V2 uses the softmax directly
        for (int i = 0; i < t; i++) {
            int off = i * e;
            if (sigmoid) {
                double sum = 0;
                for (int j = 0; j < e; j++) sum += s[off + j];
                for (int j = 0; j < e; j++) pi[off + j] = (float) (s[off + j] / sum);
            } else {
                System.arraycopy(s, off, pi, off, e);
            }
        }
        Arrays.fill(dPi, 0, t * e, 0f);
        Arrays.fill(dLogits, 0, t * e, 0f);
        if (unbiasedIndicator) {
            // the paper's f_i: 1[s_i ∈ TopK(s)] on the raw sigmoid scores, without bias or group mask
            for (int i = 0; i < t; i++) {
                RouterMath.topK(s, i * e, e, k, idx);
                System.arraycopy(idx, 0, unbiased, i * k, k);
            }
            r.balanceLoss = losses.balance(balance, r, unbiased, k, pi, t, k, balanceCoef, groupSize, training ? dPi : null);
        } else {
            r.balanceLoss = losses.balance(balance, r, pi, t, k, balanceCoef, groupSize, training ? dPi : null);
        }
        r.zLoss = ZLoss.compute(z, t, e, zCoef, training ? dLogits : null);
    }

    /** Keeps the topkGroup best groups of {@code sel}; the others become −∞. */
    private void maskGroups() {
        for (int g = 0; g < nGroup; g++) {
            int o = g * perGroup;
            if (sigmoid) {
                // sum of the two largest (or the single one if a group has one expert)
                float a = Float.NEGATIVE_INFINITY, b = Float.NEGATIVE_INFINITY;
                for (int j = 0; j < perGroup; j++) {
                    float v = sel[o + j];
                    if (v > a) { b = a; a = v; } else if (v > b) b = v;
                }
                groupScore[g] = perGroup == 1 ? a : a + b;
            } else {
                float m = Float.NEGATIVE_INFINITY;
                for (int j = 0; j < perGroup; j++) m = Math.max(m, sel[o + j]);
                groupScore[g] = m;
            }
        }
        RouterMath.topK(groupScore, 0, nGroup, topkGroup, keptGroups);
        for (int g = 0; g < nGroup; g++) {
            boolean keep = false;
            for (int kg : keptGroups) keep |= kg == g;
            if (!keep) Arrays.fill(sel, g * perGroup, (g + 1) * perGroup, Float.NEGATIVE_INFINITY);
        }
    }

    @Override
    public void backward(MemorySegment x, long xOff, int t, Routing r, float[] dWeight, MemorySegment dx, long dxOff) {
        float[] s = r.scores;
        Arrays.fill(dScores, 0, t * e, 0f);
        for (int i = 0; i < t; i++) {
            int off = i * e, s0 = i * k;
            RouterMath.topKWeightsBackward(s, off, r.expert, s0, k, dWeight, normalize, scale, 1e-20, dScores);
            if (sigmoid) {
                // π = s/Σs: ds_m += (dπ_m − Σ_j dπ_j π_j)/Σs; then σ'.
                double sum = 0, dot = 0;
                for (int j = 0; j < e; j++) {
                    sum += s[off + j];
                    dot += (double) dPi[off + j] * pi[off + j];
                }
                for (int j = 0; j < e; j++) {
                    double ds = dScores[off + j] + (dPi[off + j] - dot) / sum;
                    dLogits[off + j] += (float) (ds * s[off + j] * (1 - s[off + j]));
                }
            } else {
                for (int j = 0; j < e; j++) dScores[off + j] += dPi[off + j];
                RouterMath.softmaxBackward(s, dScores, dLogits, off, e);
            }
        }
        gate.backward(x, xOff, t, dLogits, dx, dxOff);
    }

    /** V3 bias update: b_e += γ·sign(c̄ − c_e) over the tokens routed since the last call. */
    @Override
    public void afterStep() {
        if (sigmoid && gamma > 0) updateBias(bias, stepLoad, gamma);
        Arrays.fill(stepLoad, 0);
    }

    /** b_e += γ·sign(c̄ − c_e): overloaded experts go down, underloaded up, those at the mean stay. */
    public static void updateBias(float[] bias, long[] counts, double gamma) {
        double mean = 0;
        for (long c : counts) mean += c;
        mean /= counts.length;
        for (int j = 0; j < bias.length; j++) bias[j] += (float) (gamma * Math.signum(mean - counts[j]));
    }
}
