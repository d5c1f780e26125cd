package io.moe4j.moe.router;

import io.moe4j.kernel.Kernels;
import io.moe4j.moe.MoeConfig;
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

/**
 * EvoMoE dense-to-sparse gate (spec §4.17; codecaution/EvoMoE {@code topkgate.py}, schedule in {@code train.py}):
 * a Gumbel-softmax gate whose temperature decays with the optimizer step, dense ("soft") at first, top-1 later.
 *
 * <pre>
 *   training:  G = softmax((z + g) / τ),  g ~ Gumbel(0, 1) i.i.d. (one {@link CounterRng} draw per forward)
 *              soft phase (step &lt; hardAfterStep): chosen_e = G_e &gt; 0.001   — up to E experts per token
 *              hard phase (step ≥ hardAfterStep):  chosen = one_hot(argmax G)
 *              gate = chosen ⊙ G                   (use_gumbel_gates)
 *              aux  = E · Σ_e mean_t(gate_{t,e}) · mean_t(chosen_{t,e})   (masked gates, not the full softmax)
 *   inference: top-1 of the clean logits, weight softmax(z)[argmax]   (no noise, no threshold)
 *   τ(step) = max(τ_max · exp(step · ln(τ_min/τ_max) / decaySteps), τ_min)      (the "exp" schedule)
 * </pre>
 * {@code afterStep()} advances the step (call it once per optimizer update); {@link #step()} / {@link #setStep} carry
 * it through checkpoints. {@code hardAfterStep = −1} (the reference default) is hard from the first update.
 *
 * <p>Config mapping: the aux loss is on when {@code balanceLoss != NONE}, with coefficient {@code balanceCoef},
 * per routing group and averaged over groups (the reference uses the whole batch: groupSize 0); the kind of
 * {@code balanceLoss} is otherwise unused. {@link Routers} requires {@code topK = 1} (the hard phase) and dropless
 * dispatch (EvoMoE sets capacity = T). At inference the aux value is the same formula on the top-1 gates (no
 * gradient). Jitter, if configured, applies to the router input, drawn from the same stream before the Gumbel noise.
 *
 * <p>Cost: a router with a soft phase ({@code hardAfterStep > 0}) has E slots per token, so the layer's dispatch
 * buffers are sized for maxTokens·E rows — dense mixing is what the soft phase is. Without one it has 1 slot.
 *
 * <p>Backward (Gumbel-softmax relaxation, noise constant): ∂L/∂G_e = dWeight + the aux term
 * {@code coef·E·mean_t(chosen_e)/S} on chosen (t, e); {@code ∂L/∂z = G ⊙ (dG − ⟨dG, G⟩) / τ}. The threshold and the
 * argmax carry no gradient.
 *
 * <p>Non-goals: the linear schedule, the softmax-gates variant ({@code use_gumbel_gates = false}) and the
 * "expert-diversify" stage before it (unverified, spec §6 item 10).
 */
public final class EvoMoeRouter implements Router {
    /** EvoMoE's GUMBEL_THRESHOLD: an expert is used in the soft phase when its gate exceeds this. */
    public static final double GATE_THRESHOLD = 0.001;

    private final int d, e, layer, groupSize, slots, decaySteps, hardAfterStep;
    private final double tauMax, tauMin, coef, zCoef;
    private final LinearGate gate;
    private final CounterRng rng;
    private final boolean linear;
    private long step;

    // Preallocated per maxTokens.
    private final float[] dGate;    // (maxT·E) ∂L/∂G, seeded with the aux-loss gradient in forward
    private final float[] dLogits;  // (maxT·E)
    private final float[] row;      // (E) (z + g)/τ of one token
    private final int[] order;      // (E) chosen experts of one token, by descending gate
    private final double[] meanGate, meanChosen; // (E)
    private double lastTau = 1;

    public EvoMoeRouter(MoeConfig c, Arena arena, Kernels kernels, WorkerPool pool) {
        this.d = c.dModel();
        this.e = c.numExperts();
        this.layer = c.layerIndex();
        this.groupSize = c.groupSize();
        this.hardAfterStep = c.hardAfterStep();
        this.slots = hardAfterStep > 0 ? e : 1;
        this.decaySteps = c.temperatureDecaySteps();
        this.tauMax = c.temperatureMax();
        this.tauMin = c.temperatureMin();
        this.linear = c.temperatureLinear();
        this.coef = c.balanceLoss() == BalanceLoss.NONE ? 0 : c.balanceCoef();
        this.zCoef = c.zLossCoef();
        this.gate = new LinearGate(arena, "layers." + layer + ".moe.router.weight", d, e, kernels, pool,
                c.jitter(), c.seed(), c.maxTokens());
        this.rng = gate.rng();
        int n = c.maxTokens() * e;
        this.dGate = new float[n];
        this.dLogits = new float[n];
        this.row = new float[e];
        this.order = new int[e];
        this.meanGate = new double[e];
        this.meanChosen = new double[e];
    }

    @Override public String name() { return "evomoe"; }
    @Override public int slots() { return slots; }
    @Override public List<Param> params() { return List.of(gate.weight()); }
    @Override public CounterRng rng() { return rng; }

    /** Optimizer updates seen so far (the schedule's t); part of the checkpoint. */
    public long step() { return step; }

    /** The step, as a float (exact up to 2²⁴ steps). */
    @Override public float[] state() { return new float[]{step}; }

    @Override
    public void restoreState(float[] state) {
        if (state.length != 1) throw new IllegalArgumentException("router evomoe state is the step (1 value), got " + state.length);
        setStep((long) state[0]);
    }
    public void setStep(long s) {
        if (s < 0) throw new IllegalArgumentException("EvoMoE step must be >= 0, got " + s);
        step = s;
    }
    /** The Gumbel-softmax temperature at the current step. */
    public double temperature() {
        return linear ? temperatureLinear(step, tauMax, tauMin, decaySteps) : temperature(step, tauMax, tauMin, decaySteps);
    }
    /** True once the gate is hard top-1 (step ≥ hardAfterStep). */
    public boolean hard() { return step >= hardAfterStep; }

    /**
     * The exp schedule {@code max(τ_max·exp(t·ln(τ_min/τ_max)/decay), τ_min)}. From {@code t = decay} on the
     * formula is ≤ τ_min, so τ_min is returned exactly rather than a value one rounding above it.
     */
    public static double temperature(long t, double tauMax, double tauMin, int decaySteps) {
        if (t >= decaySteps) return tauMin;
        return Math.max(tauMax * Math.exp(t * Math.log(tauMin / tauMax) / decaySteps), tauMin);
    }

    /** The linear schedule {@code max(τ_max − t·(τ_max − τ_min)/decay, τ_min)} (EvoMoE's "linear" option). */
    public static double temperatureLinear(long t, double tauMax, double tauMin, int decaySteps) {
        if (t >= decaySteps) return tauMin;
        return Math.max(tauMax - t * (tauMax - tauMin) / decaySteps, tauMin);
    }

    @Override
    public void afterStep() { step++; }

    @Override
    public void forward(MemorySegment x, long xOff, int t, int[] tokenIds, Routing r, boolean training) {
        float[] z = r.logits, g = r.scores;
        gate.forward(x, xOff, t, z, training);
        RouterMath.requireFinite(z, t, e, layer);
        if (training) {
            lastTau = temperature();
            boolean hard = hard();
            long draw = rng.next();
            for (int i = 0; i < t; i++) {
                int off = i * e;
                for (int j = 0; j < e; j++) row[j] = (float) ((z[off + j] + rng.gumbel(draw, off + j)) / lastTau);
                RouterMath.softmax(row, row, 0, e);
                System.arraycopy(row, 0, g, off, e);
                if (hard) {
                    RouterMath.topK(g, off, e, 1, order);
                    r.assign(i, 0, order[0], g[off + order[0]]);
                } else {
                    assignAboveThreshold(r, i, g, off);
                }
            }
        } else {
            lastTau = 1;
            for (int i = 0; i < t; i++) {
                int off = i * e;
                RouterMath.softmax(z, g, off, e);
                RouterMath.topK(g, off, e, 1, order);
                r.assign(i, 0, order[0], g[off + order[0]]);
            }
        }
        Arrays.fill(dGate, 0, t * e, 0f);
        Arrays.fill(dLogits, 0, t * e, 0f);
        r.balanceLoss = coef == 0 || t == 0 ? 0 : auxLoss(r, t, training);
        r.zLoss = ZLoss.compute(z, t, e, zCoef, training ? dLogits : null);
    }

    /** Soft phase: every expert with G > 0.001, ranks by descending G (ties: lower index). */
    private void assignAboveThreshold(Routing r, int i, float[] g, int off) {
        int n = 0;
        for (int j = 0; j < e; j++) {
            if (g[off + j] <= GATE_THRESHOLD) continue;
            int p = n++;
            while (p > 0 && g[off + order[p - 1]] < g[off + j]) {
                order[p] = order[p - 1];
                p--;
            }
            order[p] = j;
        }
        for (int rank = 0; rank < n; rank++) r.assign(i, rank, order[rank], g[off + order[rank]]);
    }

    /** E·Σ_e mean(gate_e)·mean(chosen_e) per group, averaged; seeds ∂/∂gate on the chosen pairs when training. */
    private double auxLoss(Routing r, int t, boolean training) {
        double c = coef / r.activeGroups(groupSize), total = 0;
        for (int gi = 0, gn = r.groupCount(groupSize); gi < gn; gi++) {
            int start = r.groupStart(groupSize, gi), end = r.groupEnd(groupSize, gi), n = end - start;
            if (n == 0) continue; // a group of padding only
            Arrays.fill(meanGate, 0);
            Arrays.fill(meanChosen, 0);
            for (int s = start * slots; s < end * slots; s++) {
                int ex = r.expert[s];
                if (ex < 0) continue;
                meanGate[ex] += r.weight[s] / (double) n;
                meanChosen[ex] += 1.0 / n;
            }
            double l = 0;
            for (int j = 0; j < e; j++) l += meanGate[j] * meanChosen[j];
            total += c * e * l;
            if (training) {
                for (int s = start * slots; s < end * slots; s++) {
                    int ex = r.expert[s];
                    if (ex >= 0) dGate[(s / slots) * e + ex] += (float) (c * e * meanChosen[ex] / n);
                }
            }
        }
        return total;
    }

    @Override
    public void backward(MemorySegment x, long xOff, int t, Routing r, float[] dWeight, MemorySegment dx, long dxOff) {
        float[] g = r.scores;
        for (int s = 0; s < t * slots; s++) {
            int ex = r.expert[s];
            if (ex >= 0) dGate[(s / slots) * e + ex] += dWeight[s];
        }
        for (int i = 0; i < t; i++) {
            int off = i * e;
            double dot = 0;
            for (int j = 0; j < e; j++) dot += (double) dGate[off + j] * g[off + j];
            for (int j = 0; j < e; j++) dLogits[off + j] += (float) (g[off + j] * (dGate[off + j] - dot) / lastTau);
        }
        gate.backward(x, xOff, t, dLogits, dx, dxOff);
    }
}
