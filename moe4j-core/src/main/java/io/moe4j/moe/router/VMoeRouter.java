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
 * The V-MoE router ({@code NoisyTopExpertsPerItemRouter}, spec §4.10), as vmoe's {@code nn/routing.py}:
 *
 * <pre>
 *   logits = W·x;   σn = noiseStd / E
 *   training: noisy = logits + σn·n, n ~ N(0, 1);   eval: noisy = logits
 *   gates = softmax(noisy) over all E          (softmax BEFORE top-k)
 *   I = top-k(gates);  combine weight = gates_{t,i} for i ∈ I   (no renormalisation)
 *   importance_e = Σ_t softmax(logits)_{t,e}          (clean softmax)
 *   thr_t = k-th largest noisy logit of token t;  P_{t,e} = 1 − Φ((thr_t − logits_{t,e}) / σn)
 *   load_e = mean_t P_{t,e}
 *   aux = balanceCoef · (CV²(importance) + CV²(load))   per routing group (groupSize), averaged over groups
 * </pre>
 * vmoe weighs the two losses separately (importance_loss_weight = load_loss_weight = 0.005): here one coefficient,
 * {@code balanceCoef}, applies to both (set it to 0.005 for V-MoE's recipe); the losses are on when
 * {@code balanceLoss != NONE}. Capacity is the layer's business: V-MoE's recipe is {@code dispatch = CAPACITY},
 * {@code capacityRule = VMOE}, {@code capacityFactor = 1.05}, and Batch Prioritized Routing is
 * {@code priority = BATCH_PRIORITY}.
 *
 * <p>Backward (spec §3.9): the noise is a constant, so ∂/∂noisy = ∂/∂logits. Combine weights go through the full
 * softmax of the noisy logits; importance through the clean softmax; the load through Φ — both through
 * {@code logits_{t,e}} and, as vmoe does not stop the gradient, through the threshold, which is the noisy logit of
 * the k-th expert. Indices: no gradient. At k = E every threshold is the smallest logit: still smooth.
 *
 * <p>Non-goals: vmoe's optional "gshard loss" term (weight 0 by default) — use the switch router for it.
 */
public final class VMoeRouter implements Router {
    private static final double INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
    private static final double SQRT2 = Math.sqrt(2);

    private final int e, k, layer, groupSize;
    private final double sigma, coef, zCoef;
    private final LinearGate gate;
    private final CounterRng rng;

    private final float[] noisy;      // (maxT·E) noisy logits (= logits at inference)
    private final float[] clean;      // (maxT·E) softmax(logits), the importance distribution
    private final float[] dNoisy;     // (maxT·E) ∂L/∂noisy from the combine weights (backward)
    private final float[] dLogits;    // (maxT·E) ∂L/∂logits, seeded by the aux and z losses in forward
    private final float[] dClean;     // (maxT·E) scratch: ∂L/∂softmax(logits)
    private final int[] thrExpert;    // (maxT) expert whose noisy logit is token t's threshold
    private final int[] idx;          // (k)
    private final double[] importance, load, dImportance, dLoad; // (E)

    public VMoeRouter(MoeConfig c, Arena arena, Kernels kernels, WorkerPool pool) {
        this.e = c.numExperts();
        this.k = c.topK();
        this.layer = c.layerIndex();
        this.groupSize = c.groupSize();
        this.sigma = c.noiseStd() / e;
        this.coef = c.balanceLoss() == BalanceLoss.NONE ? 0 : c.balanceCoef();
        this.zCoef = c.zLossCoef();
        this.gate = new LinearGate(arena, "layers." + layer + ".moe.router.weight", c.dModel(), e, kernels, pool,
                0, c.seed(), c.maxTokens());
        this.rng = gate.rng();
        int n = c.maxTokens() * e;
        this.noisy = new float[n];
        this.clean = new float[n];
        this.dNoisy = new float[n];
        this.dLogits = new float[n];
        this.dClean = new float[n];
        this.thrExpert = new int[c.maxTokens()];
        this.idx = new int[k];
        this.importance = new double[e];
        this.load = new double[e];
        this.dImportance = new double[e];
        this.dLoad = new double[e];
    }

    @Override public String name() { return "vmoe"; }
    @Override public int slots() { return k; }
    @Override public List<Param> params() { return List.of(gate.weight()); }
    @Override public CounterRng rng() { return rng; }

    /** Noisy logits of the last forward, T×E (the clean logits at inference). */
    public float[] noisyLogits() { return noisy; }

    @Override
    public void forward(MemorySegment x, long xOff, int t, int[] tokenIds, Routing r, boolean training) {
        float[] z = r.logits, gates = r.scores;
        int n = t * e;
        gate.forward(x, xOff, t, z, false);
        RouterMath.requireFinite(z, t, e, layer);
        if (training) {
            long draw = rng.next();
            for (int i = 0; i < n; i++) noisy[i] = (float) (z[i] + sigma * rng.gaussian(draw, i));
        } else {
            System.arraycopy(z, 0, noisy, 0, n);
        }
        for (int i = 0; i < t; i++) {
            int off = i * e;
            RouterMath.softmax(noisy, gates, off, e);
            RouterMath.topK(gates, off, e, k, idx);
            for (int j = 0; j < k; j++) r.assign(i, j, idx[j], gates[off + idx[j]]);
            // the k-th largest noisy logit: softmax is monotone, so it is the noisy logit of the k-th gate
            thrExpert[i] = idx[k - 1];
            RouterMath.softmax(z, clean, off, e);
        }
        Arrays.fill(dLogits, 0, n, 0f);
        r.balanceLoss = coef == 0 || t == 0 ? 0 : auxLosses(r, t, z, training);
        r.zLoss = ZLoss.compute(z, t, e, zCoef, training ? dLogits : null);
    }

    /** coef·(CV²(importance) + CV²(load)) per group, averaged over groups; seeds dLogits when training. */
    private double auxLosses(Routing r, int t, float[] z, boolean training) {
        double c = coef / r.activeGroups(groupSize), total = 0;
        for (int gi = 0, gn = r.groupCount(groupSize); gi < gn; gi++) {
            int start = r.groupStart(groupSize, gi), end = r.groupEnd(groupSize, gi), cnt = end - start;
            if (cnt == 0) continue; // a group of padding only
            Arrays.fill(importance, 0);
            Arrays.fill(load, 0);
            for (int i = start; i < end; i++) {
                int off = i * e;
                double thr = noisy[off + thrExpert[i]];
                for (int j = 0; j < e; j++) {
                    importance[j] += clean[off + j];
                    // 1 − Φ(u) = ½·erfc(u/√2)
                    load[j] += 0.5 * Gaussian.erfc((thr - z[off + j]) / sigma / SQRT2) / cnt;
                }
            }
            Arrays.fill(dImportance, 0);
            Arrays.fill(dLoad, 0);
            total += c * (CvSquared.valueAndGradient(importance, e, c, training ? dImportance : null)
                    + CvSquared.valueAndGradient(load, e, c, training ? dLoad : null));
            if (!training) continue;
            for (int i = start; i < end; i++) {
                int off = i * e, te = thrExpert[i];
                // importance: through the clean softmax
                for (int j = 0; j < e; j++) dClean[off + j] = (float) dImportance[j];
                RouterMath.softmaxBackward(clean, dClean, dLogits, off, e);
                // load: ∂P/∂logits_e = φ(u)/σn, ∂P/∂thr = −φ(u)/σn with u = (thr − logits_e)/σn; thr = noisy[te]
                double thr = noisy[off + te], toThr = 0;
                for (int j = 0; j < e; j++) {
                    double u = (thr - z[off + j]) / sigma;
                    double dp = dLoad[j] / cnt * INV_SQRT_2PI * Math.exp(-0.5 * u * u) / sigma;
                    dLogits[off + j] += (float) dp;
                    toThr -= dp;
                }
                dLogits[off + te] += (float) toThr;
            }
        }
        return total;
    }

    @Override
    public void backward(MemorySegment x, long xOff, int t, Routing r, float[] dWeight, MemorySegment dx, long dxOff) {
        float[] gates = r.scores;
        int n = t * e;
        Arrays.fill(dNoisy, 0, n, 0f);
        for (int i = 0; i < t; i++) {
            int off = i * e, s0 = i * k;
            Arrays.fill(dClean, off, off + e, 0f);
            for (int j = 0; j < k; j++) {
                int ex = r.expert[s0 + j];
                if (ex >= 0) dClean[off + ex] += dWeight[s0 + j];
            }
            RouterMath.softmaxBackward(gates, dClean, dNoisy, off, e);
        }
        for (int i = 0; i < n; i++) dLogits[i] += dNoisy[i];
        gate.backward(x, xOff, t, dLogits, dx, dxOff);
    }
}
