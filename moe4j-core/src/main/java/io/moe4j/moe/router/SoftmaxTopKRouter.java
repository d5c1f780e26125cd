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
 * Softmax top-k token-choice routing (spec §4.5; Mixtral, Qwen2/3-MoE, OLMoE, Granite, DBRX) and its top-1
 * special case, Switch (§4.3).
 *
 * <pre>
 *   z = x·W_rᵀ,  p = softmax(z)  (over all E),  I = topk(p, k)
 *   w_r = p_{I_r}                      (no renormalisation: Switch, Qwen norm_topk_prob=false, OLMoE, Grok-1)
 *   w_r = p_{I_r} / Σ_j p_{I_j}         (renormalised: Mixtral, DBRX, Granite ≡ softmax over the selected logits)
 *   w_r ·= routedScale
 * </pre>
 * Aux losses: the configured balance-loss normalisation on p (counts before dropping) and the z-loss on z.
 *
 * <p>Backward (§3.9): renormalisation {@code ∂L/∂v_i = s·(∂L/∂w_i − Σ_j ŵ_j ∂L/∂w_j)/Σv} with ŵ the unscaled
 * normalised weights; then through the softmax Jacobian; aux-loss gradients are added on p and z.
 */
public final class SoftmaxTopKRouter implements Router {
    private final String name;
    private final int d, e, k, layer;
    private final boolean normalize;
    private final float scale;
    private final BalanceLoss balance;
    private final double balanceCoef, zCoef;
    private final int groupSize;
    private final RouterLosses losses;
    private final LinearGate gate;

    // Preallocated per maxTokens.
    private final float[] dProbs;   // (maxT·E) ∂L/∂p, seeded with the balance loss gradient in forward
    private final float[] dLogits;  // (maxT·E)
    private final int[] sel;        // (k)

    public SoftmaxTopKRouter(String name, MoeConfig c, Arena arena, Kernels kernels, WorkerPool pool) {
        this.name = name;
        this.d = c.dModel();
        this.e = c.numExperts();
        this.k = c.topK();
        this.layer = c.layerIndex();
        this.normalize = c.normalizeTopK() && !name.equals("switch");
        this.scale = c.routedScale();
        this.balance = c.balanceLoss();
        this.balanceCoef = c.balanceCoef();
        this.zCoef = c.zLossCoef();
        this.groupSize = c.groupSize();
        this.losses = new RouterLosses(e, c.maxTokens());
        this.gate = new LinearGate(arena, "layers." + layer + ".moe.router.weight", d, e, kernels, pool,
                c.jitter(), c.seed(), c.maxTokens());
        int maxT = c.maxTokens();
        this.dProbs = new float[maxT * e];
        this.dLogits = new float[maxT * e];
        this.sel = new int[k];
    }

    @Override public String name() { return name; }
    @Override public int slots() { return k; }
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
            RouterMath.topK(p, off, e, k, sel);
            double sum = 0;
            for (int j = 0; j < k; j++) sum += p[off + sel[j]];
            for (int j = 0; j < k; j++) {
                double w = p[off + sel[j]];
                if (normalize) w /= sum;
                r.assign(i, j, sel[j], (float) (w * scale));
            }
        }
        Arrays.fill(dProbs, 0, t * e, 0f);
        Arrays.fill(dLogits, 0, t * e, 0f);
        r.balanceLoss = losses.balance(balance, r, p, t, k, balanceCoef, groupSize, training ? dProbs : null);
        r.zLoss = ZLoss.compute(z, t, e, zCoef, training ? dLogits : null);
    }

    @Override
    public void backward(MemorySegment x, long xOff, int t, Routing r, float[] dWeight, MemorySegment dx, long dxOff) {
        float[] p = r.scores;
        for (int i = 0; i < t; i++) {
            int off = i * e, s0 = i * k;
            RouterMath.topKWeightsBackward(p, off, r.expert, s0, k, dWeight, normalize, scale, 0, dProbs);
            RouterMath.softmaxBackward(p, dProbs, dLogits, off, e);
        }
        gate.backward(x, xOff, t, dLogits, dx, dxOff);
    }
}
