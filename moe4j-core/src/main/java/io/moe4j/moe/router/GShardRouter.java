package io.moe4j.moe.router;

import io.moe4j.kernel.Kernels;
import io.moe4j.moe.CapacityPlanner;
import io.moe4j.moe.DispatchMode;
import io.moe4j.moe.MoeConfig;
import io.moe4j.moe.PriorityOrder;
import io.moe4j.moe.Routing;
import io.moe4j.moe.loss.BalanceLoss;
import io.moe4j.moe.loss.ZLoss;
import io.moe4j.nn.CounterRng;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.List;
import java.util.function.IntUnaryOperator;

/**
 * GShard top-2 gating (spec §4.2, lingvo {@code Top2GatingOnLogits}), per routing group of S tokens:
 *
 * <pre>
 *   raw = softmax(z);  i1 = argmax raw;  g1 = raw[i1]
 *   i2 = argmax of raw without i1                         (policy "all")
 *      | Gumbel-max sample from softmax(z with z[i1] = −∞)  (policy "sampling")
 *   g2 = raw[i2];  legacy: g1, g2 /= g1 + g2 + 1e-9
 *   policy "random": keep the 2nd choice iff U[0,1) &lt; g2 / max(threshold, 1e-9)   (g2 after the legacy step)
 *   capacity C per group: top-1 choices claim slots first, in position order; a 2nd choice's position is
 *     (#earlier surviving 2nd choices of that expert) + (#kept top-1 assignments of that expert in the group)
 *   not legacy: renormalise the surviving gates by their sum (a lone survivor gets 1)
 *   aux = E · Σ_e f¹_e · P_e  (top-1 counts only: {@link BalanceLoss#SWITCH}), value 1 at balance
 * </pre>
 *
 * <p>Capacity. The layer's rank-major {@link CapacityPlanner} in position order reproduces these positions exactly:
 * once an expert's count reaches C every later claim on it drops in both formulations, and before that every
 * earlier claim was kept, so "earlier claims" and "earlier kept claims" coincide; a 2nd choice dropped by the
 * random policy is never assigned, so it claims nothing, as in lingvo. What the planner cannot do is renormalise the
 * survivors after dropping ({@code legacyNormalize = false}), and it would honour Batch Prioritized Routing, which
 * GShard does not have. So this router runs the planner itself (position order, the config's capacity rule and
 * groups), renormalises, and reports {@link #appliesOwnCapacity()} so the layer does not plan again.
 *
 * <p>Randomness ("random" and "sampling" policies, jitter) is one {@link CounterRng} draw per training forward;
 * at inference both policies fall back to "all" so serving is deterministic (the spec allows disabling them).
 *
 * <p>Backward: dWeight → the gates (legacy: {@code w = raw/(raw1 + raw2 + 1e-9)} over both choices, dropped or not,
 * so a dropped choice still shapes the survivor's gradient; otherwise over the survivors) → ∂L/∂raw, plus the
 * aux loss's {@code coef·E·f¹_e/S} on every token → softmax Jacobian → z; plus the z-loss. No gradient through i1,
 * i2, the random decision or the capacity decision.
 *
 * <p>Non-goals: lingvo's padding masks (the layer has no padding input) and its over-capacity metrics.
 */
public final class GShardRouter implements Router {
    private enum Policy { ALL, RANDOM, SAMPLING }

    private final int d, e, layer, groupSize;
    private final Policy policy;
    private final double threshold, coef, zCoef;
    private final boolean legacy, capacityLimited;
    private final BalanceLoss balance;
    private final LinearGate gate;
    private final CounterRng rng;
    private final RouterLosses losses;
    private final CapacityPlanner planner;
    private final IntUnaryOperator capacityOf;
    private final MoeConfig config;

    // Preallocated per maxTokens.
    private final int[] second;      // (maxT) i2 of each token, also when its slot is empty (random policy)
    private final float[] dRaw;      // (maxT·E) ∂L/∂raw, seeded with the aux-loss gradient in forward
    private final float[] dLogits;   // (maxT·E)

    public GShardRouter(MoeConfig c, Arena arena, Kernels kernels, WorkerPool pool) {
        this.config = c;
        this.d = c.dModel();
        this.e = c.numExperts();
        this.layer = c.layerIndex();
        this.groupSize = c.groupSize();
        this.policy = Policy.valueOf(c.secondExpert().toUpperCase(java.util.Locale.ROOT));
        this.threshold = c.secondExpertThreshold();
        this.legacy = c.legacyNormalize();
        this.capacityLimited = c.dispatch() == DispatchMode.CAPACITY;
        this.balance = c.balanceLoss();
        this.coef = c.balanceCoef();
        this.zCoef = c.zLossCoef();
        this.gate = new LinearGate(arena, "layers." + layer + ".moe.router.weight", d, e, kernels, pool,
                c.jitter(), c.seed(), c.maxTokens());
        this.rng = gate.rng();
        this.losses = new RouterLosses(e, c.maxTokens());
        this.planner = new CapacityPlanner(e, c.maxTokens());
        this.capacityOf = c::capacity;
        int n = c.maxTokens() * e;
        this.second = new int[c.maxTokens()];
        this.dRaw = new float[n];
        this.dLogits = new float[n];
    }

    @Override public String name() { return "gshard"; }
    @Override public int slots() { return 2; }
    @Override public List<Param> params() { return List.of(gate.weight()); }
    @Override public CounterRng rng() { return rng; }
    @Override public boolean appliesOwnCapacity() { return true; }

    @Override
    public void forward(MemorySegment x, long xOff, int t, int[] tokenIds, Routing r, boolean training) {
        float[] z = r.logits, raw = r.scores;
        gate.forward(x, xOff, t, z, training);
        RouterMath.requireFinite(z, t, e, layer);
        Policy p = training ? policy : Policy.ALL;
        long draw = p == Policy.ALL ? 0 : rng.next();
        for (int i = 0; i < t; i++) {
            int off = i * e;
            RouterMath.softmax(z, raw, off, e);
            int i1 = argmax(raw, off, -1, null, 0);
            int i2 = p == Policy.SAMPLING ? argmax(z, off, i1, rng, draw) : argmax(raw, off, i1, null, 0);
            double g1 = raw[off + i1], g2 = raw[off + i2];
            if (legacy) {
                double den = g1 + g2 + 1e-9;
                g1 /= den;
                g2 /= den;
            }
            second[i] = i2;
            r.assign(i, 0, i1, (float) g1);
            boolean keep2 = p != Policy.RANDOM || rng.uniform(draw, i) < g2 / Math.max(threshold, 1e-9);
            if (keep2) r.assign(i, 1, i2, (float) g2);
        }
        if (capacityLimited) planner.apply(r, config.groupSize(), capacityOf, PriorityOrder.POSITION);
        if (!legacy) {
            for (int i = 0; i < t; i++) {
                int s = 2 * i;
                double sum = r.weight[s] + r.weight[s + 1];
                if (sum > 0) {
                    r.weight[s] = (float) (r.weight[s] / sum);
                    r.weight[s + 1] = (float) (r.weight[s + 1] / sum);
                }
            }
        }
        Arrays.fill(dRaw, 0, t * e, 0f);
        Arrays.fill(dLogits, 0, t * e, 0f);
        r.balanceLoss = losses.balance(balance, r, raw, t, 1, coef, groupSize, training ? dRaw : null);
        r.zLoss = ZLoss.compute(z, t, e, zCoef, training ? dLogits : null);
    }

    /**
     * Index of the largest {@code row[off+j]} (+ a standard Gumbel sample of element off+j of the draw, when
     * {@code gumbel} is not null), skipping {@code skip}; ties go to the lower index.
     */
    private int argmax(float[] row, int off, int skip, CounterRng gumbel, long draw) {
        int best = -1;
        double bv = Double.NEGATIVE_INFINITY;
        for (int j = 0; j < e; j++) {
            if (j == skip) continue;
            double v = row[off + j];
            if (gumbel != null) v += gumbel.gumbel(draw, off + j);
            if (best < 0 || v > bv) {
                best = j;
                bv = v;
            }
        }
        return best;
    }

    @Override
    public void backward(MemorySegment x, long xOff, int t, Routing r, float[] dWeight, MemorySegment dx, long dxOff) {
        float[] raw = r.scores;
        for (int i = 0; i < t; i++) {
            int off = i * e, s = 2 * i;
            int i1 = r.expert[s], i2 = second[i];
            double r1 = raw[off + i1], r2 = raw[off + i2];
            double dw1 = dWeight[s], dw2 = dWeight[s + 1];
            // w_j = raw_j / D over the gates in the normaliser: ∂L/∂raw_j = (dw_j − Σ_l w_l·dw_l) / D
            boolean in1 = legacy || r.kept[s], in2 = legacy || r.kept[s + 1];
            double den = (in1 ? r1 : 0) + (in2 ? r2 : 0) + (legacy ? 1e-9 : 0);
            if (den > 0) {
                double dot = (in1 ? dw1 * r1 / den : 0) + (in2 ? dw2 * r2 / den : 0);
                if (in1) dRaw[off + i1] += (float) ((dw1 - dot) / den);
                if (in2) dRaw[off + i2] += (float) ((dw2 - dot) / den);
            }
            RouterMath.softmaxBackward(raw, dRaw, dLogits, off, e);
        }
        gate.backward(x, xOff, t, dLogits, dx, dxOff);
    }
}
