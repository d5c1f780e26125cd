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
 * Dynamic top-p ("threshold") routing (spec §4.12, Huang et al. 2024): harder tokens get more experts.
 *
 * <pre>
 *   p = softmax(z);  order = experts by p descending (ties → lower index);  c_j = Σ_{i≤j} p_{order[i]}
 *   I = order[0..m],  m = first j with c_j > topPThreshold   (strict ">", at least one expert)
 *   w_e = p_e  for e ∈ I                                      (raw probabilities, not renormalised)
 * </pre>
 * Ranks are filled in that descending order, so rank 0 is the top-1 expert (what the Switch loss and capacity
 * priority read); slots = E and the trailing slots stay empty. Experts with p = 0 (softmax underflow) are never
 * selected: they would be computed with weight 0, and property 3 asks for "all experts with non-zero
 * probability" when the threshold is 1.
 *
 * <p>Aux losses: {@code otherLoss = entropyCoef · (1/T) Σ_t H(p_t)} (the paper's "dynamic loss"), the configured
 * balance loss on p counting every selected expert — its k' (MEGABLOCKS normalisation) is {@code topK}, the
 * nominal experts per token, since the real count varies per token — and the z-loss on z.
 *
 * <p>Backward: the task loss reaches p only for selected experts, then all logits through the softmax Jacobian;
 * the cut-off gets none (§3.9). The entropy gradient is applied on the logits directly,
 * {@code ∂H/∂z_j = −p_j (log p_j + H)} with {@code log p_j = z_j − lse} — finite even where p underflows to 0.
 */
public final class TopPRouter implements Router {
    private final int d, e, k, layer, groupSize;
    private final double threshold, entropyCoef;
    private final BalanceLoss balance;
    private final double balanceCoef, zCoef;
    private final RouterLosses losses;
    private final LinearGate gate;

    private final float[] dProbs;  // (maxT·E) ∂L/∂p, seeded with the balance-loss gradient in forward
    private final float[] dLogits; // (maxT·E) seeded with the entropy and z-loss gradients in forward
    private final long[] keys;     // (E) rank keys of one token

    public TopPRouter(MoeConfig c, Arena arena, Kernels kernels, WorkerPool pool) {
        this.d = c.dModel();
        this.e = c.numExperts();
        this.k = c.topK();
        this.layer = c.layerIndex();
        this.groupSize = c.groupSize();
        this.threshold = c.topPThreshold();
        this.entropyCoef = c.entropyCoef();
        this.balance = c.balanceLoss();
        this.balanceCoef = c.balanceCoef();
        this.zCoef = c.zLossCoef();
        this.losses = new RouterLosses(e, c.maxTokens());
        this.gate = new LinearGate(arena, "layers." + layer + ".moe.router.weight", d, e, kernels, pool,
                c.jitter(), c.seed(), c.maxTokens());
        int n = c.maxTokens() * e;
        this.dProbs = new float[n];
        this.dLogits = new float[n];
        this.keys = new long[e];
    }

    @Override public String name() { return "top-p"; }
    @Override public int slots() { return e; }
    @Override public List<Param> params() { return List.of(gate.weight()); }
    @Override public io.moe4j.nn.CounterRng rng() { return gate.rng(); }
    public LinearGate gate() { return gate; }

    @Override
    public void forward(MemorySegment x, long xOff, int t, int[] tokenIds, Routing r, boolean training) {
        float[] z = r.logits, p = r.scores;
        gate.forward(x, xOff, t, z, training);
        RouterMath.requireFinite(z, t, e, layer);
        for (int i = 0; i < t; i++) {
            int off = i * e;
            RouterMath.softmax(z, p, off, e);
            for (int j = 0; j < e; j++) keys[j] = RankKeys.key(p[off + j], j);
            Arrays.sort(keys, 0, e);
            double cum = 0;
            for (int rank = 0; rank < e; rank++) {
                int j = RankKeys.index(keys[e - 1 - rank]);
                float pj = p[off + j];
                if (rank > 0 && (cum > threshold || pj == 0f)) break;
                r.assign(i, rank, j, pj);
                cum += pj;
            }
        }
        Arrays.fill(dProbs, 0, t * e, 0f);
        Arrays.fill(dLogits, 0, t * e, 0f);
        r.balanceLoss = losses.balance(balance, r, p, t, k, balanceCoef, groupSize, training ? dProbs : null);
        r.zLoss = ZLoss.compute(z, t, e, zCoef, training ? dLogits : null);
        r.otherLoss = entropyLoss(z, t, training ? dLogits : null);
    }

    /** entropyCoef · (1/T) Σ_t H(softmax(z_t)) in double; accumulates its gradient into dz when not null. */
    private double entropyLoss(float[] z, int t, float[] dz) {
        if (entropyCoef == 0 || t == 0) return 0;
        double total = 0, c = entropyCoef / t;
        for (int i = 0; i < t; i++) {
            int off = i * e;
            double max = Double.NEGATIVE_INFINITY, s = 0;
            for (int j = 0; j < e; j++) max = Math.max(max, z[off + j]);
            for (int j = 0; j < e; j++) s += Math.exp(z[off + j] - max);
            double lse = max + Math.log(s);
            double h = 0; // H = −Σ p log p, log p = z − lse
            for (int j = 0; j < e; j++) {
                double logp = z[off + j] - lse;
                h -= Math.exp(logp) * logp;
            }
            total += h;
            if (dz != null) {
                for (int j = 0; j < e; j++) {
                    double logp = z[off + j] - lse;
                    dz[off + j] += (float) (-c * Math.exp(logp) * (logp + h));
                }
            }
        }
        return c * total;
    }

    @Override
    public void backward(MemorySegment x, long xOff, int t, Routing r, float[] dWeight, MemorySegment dx, long dxOff) {
        float[] p = r.scores;
        for (int i = 0; i < t; i++) {
            int off = i * e, s0 = i * e;
            for (int rank = 0; rank < e; rank++) {
                int ex = r.expert[s0 + rank];
                if (ex < 0) break;
                dProbs[off + ex] += dWeight[s0 + rank];
            }
            RouterMath.softmaxBackward(p, dProbs, dLogits, off, e);
        }
        gate.backward(x, xOff, t, dLogits, dx, dxOff);
    }
}
