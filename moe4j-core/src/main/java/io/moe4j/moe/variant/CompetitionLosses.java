package io.moe4j.moe.variant;

import io.moe4j.nn.F32;

import java.lang.foreign.MemorySegment;

/**
 * The two CompeteSMoE losses that are not balance losses (spec §4.18), values and gradients, accumulated in double.
 *
 * <pre>
 *   router loss     R = (1/(T·E)) Σ_{t,e} (p_{t,e} − q_{t,e})²          p = softmax(router), q = softmax(affinity)
 *                   ∂R/∂p = 2(p − q)/(T·E);   q is a stop-gradient target, so nothing flows into the experts
 *   hybrid term     H = (1/(T·K)) Σ_t Σ_{e∈I_t} (p_{t,e} − q_{t,e})²    I_t the K competition-selected experts
 *                   ∂H/∂p_{t,e} = 2(p − q)/(T·K) on I_t, 0 elsewhere (the reference's MSE of the gathered top-k)
 *   diversity loss  D = (1/(T·K²)) Σ_t Σ_{i≠j} cos(o_i, o_j)             o_i the K selected outputs of token t
 *                   ∂D/∂o_i = (2/(T·K²)) · Σ_{j≠i} (n_j − cos_ij·n_i) / ‖o_i‖,   n = o/‖o‖
 * </pre>
 * The diagonal is excluded but still counted in the K² of the mean, as in the reference's {@code
 * (similarity * (1 − I)).mean()}. Norms below 1e-12 are clamped like {@code F.normalize}; a clamped vector's n is
 * o/1e-12, whose Jacobian is I/1e-12.
 */
public final class CompetitionLosses {
    private CompetitionLosses() {}

    private static final double NORM_EPS = 1e-12;

    /**
     * R over t rows of E; when {@code dP} is not null, {@code coef·∂R/∂p} is written (overwritten) into it.
     */
    public static double routerLoss(float[] p, float[] q, int t, int e, double coef, float[] dP) {
        double sum = 0, scale = 2.0 / ((double) t * e);
        for (int i = 0; i < t * e; i++) {
            double diff = (double) p[i] - q[i];
            sum += diff * diff;
            if (dP != null) dP[i] = (float) (coef * scale * diff);
        }
        return t == 0 ? 0 : sum / ((double) t * e);
    }

    /**
     * The hybrid term H over t rows of E, selected experts {@code expert[i·k + r]}; when {@code dP} is not null,
     * {@code coef·∂H/∂p} is added into it.
     */
    public static double topKRouterLoss(float[] p, float[] q, int[] expert, int t, int e, int k, double coef,
                                        float[] dP) {
        double sum = 0, scale = 2.0 / ((double) t * k);
        for (int i = 0; i < t; i++) {
            for (int r = 0; r < k; r++) {
                int at = i * e + expert[i * k + r];
                double diff = (double) p[at] - q[at];
                sum += diff * diff;
                if (dP != null) dP[at] += (float) (coef * scale * diff);
            }
        }
        return t == 0 ? 0 : sum / ((double) t * k);
    }

    /** Σ_{i≠j} cos(o_i, o_j) of one token's k vectors of length d, row i at float offset {@code off[i]} of o. */
    public static double pairwiseCosine(int k, int d, MemorySegment o, long[] off) {
        double sum = 0;
        for (int i = 0; i < k; i++) {
            for (int j = i + 1; j < k; j++) {
                sum += 2 * dot(d, o, off[i], off[j]) / (norm(d, o, off[i]) * norm(d, o, off[j]));
            }
        }
        return sum;
    }

    /**
     * Adds {@code scale · ∂/∂o_i Σ_{a≠b} cos(o_a, o_b)} to {@code dO} rows {@code dOff[i]}, for one token's k vectors.
     * With scale = coef/(T·K²) this is the diversity loss's gradient.
     */
    public static void pairwiseCosineBackward(int k, int d, MemorySegment o, long[] off, double scale,
                                              MemorySegment dO, long[] dOff) {
        for (int i = 0; i < k; i++) {
            double ni = norm(d, o, off[i]);
            boolean clamped = ni <= NORM_EPS;
            for (int j = 0; j < k; j++) {
                if (j == i) continue;
                double nj = norm(d, o, off[j]);
                double cos = dot(d, o, off[i], off[j]) / (ni * nj);
                // ∂cos_ij/∂o_i = (n_j − cos·n_i)/‖o_i‖ (clamped: n_j/ε); the pair appears as (i,j) and (j,i): ×2
                for (int c = 0; c < d; c++) {
                    double oj = F32.get(o, off[j] + c) / nj, oi = F32.get(o, off[i] + c) / ni;
                    double g = clamped ? oj / NORM_EPS : (oj - cos * oi) / ni;
                    long at = dOff[i] + c;
                    F32.set(dO, at, (float) (F32.get(dO, at) + 2 * scale * g));
                }
            }
        }
    }

    private static double dot(int d, MemorySegment o, long a, long b) {
        double s = 0;
        for (int c = 0; c < d; c++) s += (double) F32.get(o, a + c) * F32.get(o, b + c);
        return s;
    }

    /** max(‖o‖, 1e-12), as F.normalize. */
    private static double norm(int d, MemorySegment o, long a) {
        return Math.max(Math.sqrt(dot(d, o, a, a)), NORM_EPS);
    }
}
