package io.moe4j.moe.router;

import io.moe4j.kernel.Kernels;
import io.moe4j.moe.MoeConfig;
import io.moe4j.moe.Routing;
import io.moe4j.moe.loss.ZLoss;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.List;

/**
 * ReMoE (spec §4.13, thu-ml/ReMoE {@code ReLURouter}): a ReLU router, so the layer is continuous in W_r — an
 * expert switches on or off with weight exactly 0 — and sparsity is steered by an adaptive L1 penalty.
 *
 * <pre>
 *   r = ReLU(x̃·W_rᵀ)                 active(t) = { e : r_{t,e} > 0 }   (0…E experts; none ⇒ output 0)
 *   y_t = Σ_{e ∈ active(t)} r_{t,e} · FFN_e(x_t)
 *   L_reg = λ · E/(k·T²) · Σ_e count_e · Σ_t r_{t,e},   count_e = #{t : r_{t,e} > 0}   (k = topK, the target)
 * </pre>
 * Ranks are filled by r descending (ties → lower index), so capacity priority, if configured, sees each token's
 * strongest expert first; slots = E, trailing slots empty. L_reg goes to {@code Routing.otherLoss}; it is
 * computed over the whole batch (the spec's T; {@code groupSize} is not used), and its value is reported for
 * inference batches too but only training forwards seed its gradient. The configured balance loss is not used —
 * L_reg is this method's balance term; the z-loss on the logits is applied if its coefficient is set.
 *
 * <p>λ is non-trainable fp32 state ({@link #state()}, {@link #l1Coef()}/{@link #setL1Coef}), starting at
 * {@code l1Init}. {@link #afterStep()} compares the sparsity S (fraction of r == 0 entries over the training
 * forwards since the previous step) with S* = 1 − k/E: λ·α if S &lt; S*, λ/α otherwise (α = {@code l1Multiplier}).
 * The reference shares one λ across layers with S averaged over layers; here each layer's router keeps its own λ
 * from its own S — a model-level controller can average {@link #stepSparsity()} and call {@link #setL1Coef}.
 *
 * <p>Backward: {@code ∂L/∂r_{t,e} = ∂L/∂w + λ·E·count_e/(k·T²)} on active entries; ReLU passes it where z &gt; 0
 * and blocks it at z ≤ 0 (gradient 0 at exactly 0, as torch's relu).
 */
public final class ReMoERouter implements Router {
    private final int d, e, k, layer;
    private final double zCoef, alpha, targetSparsity;
    private final LinearGate gate;

    private float lambda;               // λ, fp32 like the reference's buffer
    private long stepZeros, stepEntries; // r == 0 entries / all entries since the last afterStep
    private final double[] rowSum;      // (E) Σ_t r_{t,e} of the batch
    private final float[] regGrad;      // (E) ∂L_reg/∂r_{t,e} on active entries, seeded in training forwards
    private final float[] dLogits;      // (maxT·E) seeded with the z-loss gradient in forward
    private final long[] keys;          // (E) rank keys of one token

    public ReMoERouter(MoeConfig c, Arena arena, Kernels kernels, WorkerPool pool) {
        this.d = c.dModel();
        this.e = c.numExperts();
        this.k = c.topK();
        this.layer = c.layerIndex();
        this.zCoef = c.zLossCoef();
        this.alpha = c.l1Multiplier();
        this.targetSparsity = 1.0 - (double) k / e;
        this.lambda = (float) c.l1Init();
        this.gate = new LinearGate(arena, "layers." + layer + ".moe.router.weight", d, e, kernels, pool,
                c.jitter(), c.seed(), c.maxTokens());
        this.rowSum = new double[e];
        this.regGrad = new float[e];
        this.dLogits = new float[c.maxTokens() * e];
        this.keys = new long[e];
    }

    @Override public String name() { return "remoe"; }
    @Override public int slots() { return e; }
    @Override public List<Param> params() { return List.of(gate.weight()); }
    @Override public io.moe4j.nn.CounterRng rng() { return gate.rng(); }
    /** {λ}: the L1 coefficient, the only non-trainable state. */
    @Override public float[] state() { return new float[]{lambda}; }

    @Override
    public void restoreState(float[] state) {
        if (state.length != 1) throw new IllegalArgumentException("router remoe state is λ (1 value), got " + state.length);
        lambda = state[0];
    }
    public LinearGate gate() { return gate; }

    /** The current L1 coefficient λ. */
    public float l1Coef() { return lambda; }

    /** Sets λ (checkpoint restore, or a model-level controller sharing one λ across layers). */
    public void setL1Coef(float v) {
        if (!(v >= 0) || !Float.isFinite(v)) throw new IllegalArgumentException("ReMoE λ must be finite and >= 0, got " + v);
        lambda = v;
    }

    /** Sparsity S of the training forwards since the last {@link #afterStep()} (NaN if there were none). */
    public double stepSparsity() {
        return stepEntries == 0 ? Double.NaN : stepZeros / (double) stepEntries;
    }

    @Override
    public void forward(MemorySegment x, long xOff, int t, int[] tokenIds, Routing r, boolean training) {
        float[] z = r.logits, s = r.scores;
        gate.forward(x, xOff, t, z, training);
        RouterMath.requireFinite(z, t, e, layer);
        Arrays.fill(rowSum, 0);
        long zeros = 0;
        for (int i = 0; i < t; i++) {
            int off = i * e, n = 0;
            for (int j = 0; j < e; j++) {
                float v = z[off + j] > 0 ? z[off + j] : 0f;
                s[off + j] = v;
                rowSum[j] += v;
                if (v > 0) keys[n++] = RankKeys.key(v, j);
                else zeros++;
            }
            Arrays.sort(keys, 0, n);
            for (int rank = 0; rank < n; rank++) {
                int j = RankKeys.index(keys[n - 1 - rank]);
                r.assign(i, rank, j, s[off + j]);
            }
        }
        if (training) {
            stepZeros += zeros;
            stepEntries += (long) t * e;
        }
        // L_reg = λ·E/(k·T²)·Σ_e count_e·Σ_t r; count_e = r.assigned (before any capacity dropping)
        double c = t == 0 ? 0 : (double) lambda * e / ((double) k * t * t), reg = 0;
        for (int j = 0; j < e; j++) {
            reg += r.assigned[j] * rowSum[j];
            regGrad[j] = training ? (float) (c * r.assigned[j]) : 0f;
        }
        r.otherLoss = c * reg;
        Arrays.fill(dLogits, 0, t * e, 0f);
        r.zLoss = ZLoss.compute(z, t, e, zCoef, training ? dLogits : null);
    }

    @Override
    public void backward(MemorySegment x, long xOff, int t, Routing r, float[] dWeight, MemorySegment dx, long dxOff) {
        for (int i = 0; i < t; i++) {
            int off = i * e; // slots = E: a token's slot row and logit row start at the same offset
            // every filled slot is an entry with z > 0, where ReLU passes the gradient unchanged
            for (int rank = 0; rank < e; rank++) {
                int ex = r.expert[off + rank];
                if (ex < 0) break;
                dLogits[off + ex] += dWeight[off + rank] + regGrad[ex];
            }
        }
        gate.backward(x, xOff, t, dLogits, dx, dxOff);
    }

    /** λ update from the sparsity of the step (none if no training forward ran), then a new step starts. */
    @Override
    public void afterStep() {
        if (stepEntries > 0) lambda = updateL1(lambda, stepSparsity(), targetSparsity, alpha);
        stepZeros = 0;
        stepEntries = 0;
    }

    /** λ·α if S &lt; S* (too dense: push harder), λ/α otherwise. */
    public static float updateL1(float lambda, double sparsity, double target, double alpha) {
        return (float) (sparsity < target ? lambda * alpha : lambda / alpha);
    }
}
