package io.moe4j.moe.router;

import io.moe4j.kernel.Kernels;
import io.moe4j.kernel.gemm.Gemm;
import io.moe4j.kernel.row.RowOps;
import io.moe4j.moe.InvalidConfigException;
import io.moe4j.moe.MoeConfig;
import io.moe4j.moe.Routing;
import io.moe4j.moe.loss.BalanceLoss;
import io.moe4j.moe.loss.ZLoss;
import io.moe4j.nn.F32;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.List;

/**
 * Autonomy-of-Experts self-selection ("aoe", spec §4.15; trestad/Autonomy-of-Experts {@code AoE.py}): there is no
 * router matrix; each expert scores itself by the norm of its own low-rank gate activation, which its gate then
 * reuses.
 * <pre>
 *   A = x·W_down_all          W_down_all "wg": (d, E·r), r = moe.expertGateRank (d_low); A: (T, E·r)
 *   a_{t,e} = ‖A_{t,e}‖₂       A_{t,e} = A[t, e·r … (e+1)·r)      → Routing.logits
 *   p = softmax(a);  I = topk(p, k);  w = p_I                      (reference: normalizeTopK = false)
 *   experts: h = act(A_{t,e}·W_up,eᵀ) ⊙ (x·V_eᵀ), out = h·W2_eᵀ    (the layer's factorised-gate ExpertBank)
 * </pre>
 * W_down_all keeps the reference's [in, out] layout so a checkpoint's "wg" loads unchanged. A is published through
 * {@link #expertFeatures()}; the layer gathers the selected rows as the experts' gate input and returns their
 * gradient through {@link #expertFeatureGrad()}. Aux losses: the configured balance loss on p (reference:
 * MegaBlocks normalisation) and the z-loss on a.
 *
 * <p>Backward: ∂L/∂p from the weights (renormalised when configured) and the balance loss, the softmax Jacobian,
 * plus the z-loss, gives ∂L/∂a; then {@code dA_{t,e} += ∂L/∂a_{t,e} · A_{t,e}/‖A_{t,e}‖} for every expert (so
 * every expert's W_down gets gradient through the norms) on top of the experts' gate gradient for the selected
 * ones; finally {@code dW_down_all += xᵀ·dA}, {@code dx += dA·W_down_allᵀ}.
 */
public final class AutonomyRouter implements Router {
    private final Kernels kernels;
    private final WorkerPool pool;
    private final int d, e, k, rank, layer, groupSize;
    private final boolean normalize;
    private final float scale;
    private final BalanceLoss balance;
    private final double balanceCoef, zCoef;
    private final RouterLosses losses;
    private final Param wg;              // (d, E·r) W_down_all, [in, out] as in the reference
    private final MemorySegment acts;    // (maxT, E·r) A
    private final MemorySegment dActs;   // (maxT, E·r) ∂L/∂A
    private final float[] dProbs;        // (maxT·E)
    private final float[] dNorms;        // (maxT·E) ∂L/∂a, seeded with the z-loss gradient in forward
    private final int[] sel;             // (k)

    public AutonomyRouter(MoeConfig c, Arena arena, Kernels kernels, WorkerPool pool) {
        if (c.expertGateRank() <= 0) {
            throw new InvalidConfigException("moe.expertGateRank (AoE d_low) must be > 0 for moe.router = aoe, got "
                    + c.expertGateRank());
        }
        if (c.jitter() > 0) {
            // A feeds the experts' gates too, so jittering the router input would jitter the experts
            throw new InvalidConfigException("moe.jitter must be 0 for moe.router = aoe, got " + c.jitter());
        }
        this.kernels = kernels;
        this.pool = pool;
        this.d = c.dModel();
        this.e = c.numExperts();
        this.k = c.topK();
        this.rank = c.expertGateRank();
        this.layer = c.layerIndex();
        this.groupSize = c.groupSize();
        this.normalize = c.normalizeTopK();
        this.scale = c.routedScale();
        this.balance = c.balanceLoss();
        this.balanceCoef = c.balanceCoef();
        this.zCoef = c.zLossCoef();
        int maxT = c.maxTokens();
        this.losses = new RouterLosses(e, maxT);
        this.wg = new Param(arena, "layers." + layer + ".moe.router.wg", d, (long) e * rank);
        this.acts = F32.alloc(arena, (long) maxT * e * rank);
        this.dActs = F32.alloc(arena, (long) maxT * e * rank);
        this.dProbs = new float[maxT * e];
        this.dNorms = new float[maxT * e];
        this.sel = new int[k];
    }

    @Override public String name() { return "aoe"; }
    @Override public int slots() { return k; }
    @Override public List<Param> params() { return List.of(wg); }
    @Override public int expertFeatureWidth() { return rank; }
    @Override public MemorySegment expertFeatures() { return acts; }
    @Override public MemorySegment expertFeatureGrad() { return dActs; }

    /** W_down_all (d, E·r). */
    public Param downAll() { return wg; }

    @Override
    public void forward(MemorySegment x, long xOff, int t, int[] tokenIds, Routing r, boolean training) {
        float[] a = r.logits, p = r.scores;
        int n = e * rank;
        RowOps ops = kernels.rows();
        kernels.gemm().nn(pool, t, n, d, x, xOff, d, wg.data(), 0, n, acts, 0, n, false);
        for (int i = 0; i < t; i++) {
            for (int j = 0; j < e; j++) {
                long o = (long) i * n + (long) j * rank;
                a[i * e + j] = (float) Math.sqrt(ops.dot(rank, acts, o, acts, o));
            }
        }
        RouterMath.requireFinite(a, t, e, layer);
        for (int i = 0; i < t; i++) {
            int off = i * e;
            RouterMath.softmax(a, p, off, e);
            RouterMath.topK(p, off, e, k, sel);
            double sum = 0;
            for (int j = 0; j < k; j++) sum += p[off + sel[j]];
            for (int j = 0; j < k; j++) {
                double w = p[off + sel[j]];
                if (normalize) w /= sum;
                r.assign(i, j, sel[j], (float) (w * scale));
            }
        }
        F32.zero(dActs, 0, (long) t * n);
        Arrays.fill(dProbs, 0, t * e, 0f);
        Arrays.fill(dNorms, 0, t * e, 0f);
        r.balanceLoss = losses.balance(balance, r, p, t, k, balanceCoef, groupSize, training ? dProbs : null);
        r.zLoss = ZLoss.compute(a, t, e, zCoef, training ? dNorms : null);
    }

    @Override
    public void backward(MemorySegment x, long xOff, int t, Routing r, float[] dWeight, MemorySegment dx, long dxOff) {
        float[] a = r.logits, p = r.scores;
        int n = e * rank;
        RowOps ops = kernels.rows();
        for (int i = 0; i < t; i++) {
            int off = i * e, s0 = i * k;
            RouterMath.topKWeightsBackward(p, off, r.expert, s0, k, dWeight, normalize, scale, 0, dProbs);
            RouterMath.softmaxBackward(p, dProbs, dNorms, off, e);
            // through the norm: ∂a/∂A = A/‖A‖ (a zero activation has no direction; its subgradient 0 is used)
            for (int j = 0; j < e; j++) {
                float norm = a[off + j];
                if (norm == 0) continue;
                long o = (long) i * n + (long) j * rank;
                ops.axpy(rank, dNorms[off + j] / norm, acts, o, dActs, o);
            }
        }
        Gemm g = kernels.gemm();
        g.tn(pool, d, n, t, x, xOff, d, dActs, 0, n, wg.gradData(), 0, n, true);
        g.nt(pool, t, d, n, dActs, 0, n, wg.data(), 0, n, dx, dxOff, d, true);
    }
}
