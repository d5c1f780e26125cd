package io.moe4j.moe.router;

import io.moe4j.kernel.Kernels;
import io.moe4j.moe.CapacityRule;
import io.moe4j.moe.InvalidConfigException;
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
 * Expert Choice routing (spec §4.9, Zhou et al. 2022; flaxformer {@code ExpertsChooseMaskedRouter}): each expert
 * picks its top-C tokens, so every expert is exactly full and a token gets 0…E experts.
 *
 * <pre>
 *   p = softmax(z)  over experts, per token
 *   per routing group of S tokens ({@code groupSize}; 0 = the whole batch; the last group may be shorter):
 *     C = min(capacity(S), S)     capacity from {@code capacityRule}/{@code capacityFactor} (flaxformer default:
 *                                 max(round(CF·S/E), 4)); capped at S because an expert cannot take a token twice
 *     J_e = the C tokens with the largest p[s, e]   (ties → lower token index)
 *   combine[s, e] = p[s, e] if s ∈ J_e else 0    (no renormalisation)
 * </pre>
 * A token's chosen experts fill its slots in ascending expert id (slots = E, trailing slots empty): the rank
 * carries no priority here, because the capacity was already applied per expert. The layer therefore runs this
 * router dropless; {@code DispatchMode.CAPACITY} is rejected in {@link Routers}.
 *
 * <p><b>Not causal.</b> Whether a token is chosen depends on every other token of its group, future positions
 * included, so Expert Choice must not be used in autoregressive decoders (flaxformer: the model "learns to
 * cheat"), and a token's output depends on the batch/group composition.
 *
 * <p>Aux losses: no balance loss — balance holds by construction and flaxformer returns 0, so the configured
 * {@code balanceLoss} is ignored; the z-loss applies if its coefficient is set. Backward: the task loss reaches
 * p[s, e] for the chosen pairs, then every logit through the softmax Jacobian; the token selection gets no
 * gradient (§3.9).
 */
public final class ExpertChoiceRouter implements Router {
    private final MoeConfig config;
    private final int d, e, layer;
    private final double zCoef;
    private final LinearGate gate;

    private final boolean[] chosen; // (maxT·E) token s chosen by expert e
    private final long[] heap;      // (maxT) min-heap of rank keys: the best C tokens seen so far for one expert
    private final float[] dProbs;   // (maxT·E)
    private final float[] dLogits;  // (maxT·E) seeded with the z-loss gradient in forward

    public ExpertChoiceRouter(MoeConfig c, Arena arena, Kernels kernels, WorkerPool pool) {
        validate(c);
        this.config = c;
        this.d = c.dModel();
        this.e = c.numExperts();
        this.layer = c.layerIndex();
        this.zCoef = c.zLossCoef();
        this.gate = new LinearGate(arena, "layers." + layer + ".moe.router.weight", d, e, kernels, pool,
                c.jitter(), c.seed(), c.maxTokens());
        int n = c.maxTokens() * e;
        this.chosen = new boolean[n];
        this.heap = new long[c.maxTokens()];
        this.dProbs = new float[n];
        this.dLogits = new float[n];
    }

    /** MoeConfig.build() checks the capacity fields only for CAPACITY dispatch; expert choice always uses them. */
    private static void validate(MoeConfig c) {
        CapacityRule rule = c.capacityRule();
        if (rule == null) throw new InvalidConfigException("moe.capacityRule must be set for moe.router = expert-choice");
        if (rule == CapacityRule.FIXED && c.fixedCapacity() <= 0) {
            throw new InvalidConfigException("moe.fixedCapacity must be > 0 for moe.router = expert-choice, got "
                    + c.fixedCapacity());
        }
        if (rule != CapacityRule.FIXED && !(c.capacityFactor() > 0 && Double.isFinite(c.capacityFactor()))) {
            throw new InvalidConfigException("moe.capacityFactor must be > 0 for moe.router = expert-choice, got "
                    + c.capacityFactor());
        }
    }

    @Override public String name() { return "expert-choice"; }
    @Override public int slots() { return e; }
    @Override public List<Param> params() { return List.of(gate.weight()); }
    @Override public io.moe4j.nn.CounterRng rng() { return gate.rng(); }
    public LinearGate gate() { return gate; }

    /**
     * Each expert takes at most min(C, S) tokens per group, so the rows are bounded by full groups of the
     * configured size plus the largest possible last group — far below slots·T = E·T when C ≪ S.
     */
    @Override
    public int maxRows(int maxTokens) {
        int g = config.groupSize() <= 0 || config.groupSize() > maxTokens ? 0 : config.groupSize();
        long best = 0;
        if (g == 0) {
            for (int t = 1; t <= maxTokens; t++) best = Math.max(best, (long) e * capacity(t));
        } else {
            long full = (long) (maxTokens / g) * e * capacity(g);
            long tail = 0;
            for (int r = 1; r < g && r <= maxTokens; r++) tail = Math.max(tail, (long) e * capacity(r));
            best = full + tail;
        }
        return Math.toIntExact(Math.min(best, (long) e * maxTokens));
    }

    /** Tokens each expert takes from a routing group of {@code groupTokens} tokens: min(capacity rule, S). */
    public int capacity(int groupTokens) {
        return Math.max(0, Math.min(config.capacity(groupTokens), groupTokens));
    }

    @Override
    public void forward(MemorySegment x, long xOff, int t, int[] tokenIds, Routing r, boolean training) {
        float[] z = r.logits, p = r.scores;
        gate.forward(x, xOff, t, z, training);
        RouterMath.requireFinite(z, t, e, layer);
        for (int i = 0; i < t; i++) RouterMath.softmax(z, p, i * e, e);
        Arrays.fill(chosen, 0, t * e, false);
        int gs = config.groupSize();
        for (int g = 0, gn = r.groupCount(gs); g < gn; g++) {
            // with a padding mask, C comes from the group's positions and the experts choose among its real tokens
            int start = r.groupStart(gs, g), n = r.groupEnd(gs, g) - start;
            int c = Math.min(capacity(r.groupNominal(gs, g)), n);
            if (n > 0) for (int j = 0; j < e; j++) choose(p, start, n, j, c);
        }
        for (int i = 0; i < t; i++) {
            int off = i * e, rank = 0;
            for (int j = 0; j < e; j++) if (chosen[off + j]) r.assign(i, rank++, j, p[off + j]);
        }
        Arrays.fill(dProbs, 0, t * e, 0f);
        Arrays.fill(dLogits, 0, t * e, 0f);
        r.balanceLoss = 0;
        r.zLoss = ZLoss.compute(z, t, e, zCoef, training ? dLogits : null);
    }

    /**
     * Marks the c tokens of [start, start+n) with the largest p[·, j] as chosen by expert j: a size-c min-heap of
     * rank keys, O(n log c) and allocation-free (a full sort of a 4096-token group would be n log n).
     */
    private void choose(float[] p, int start, int n, int j, int c) {
        if (c >= n) {
            for (int i = start; i < start + n; i++) chosen[i * e + j] = true;
            return;
        }
        if (c <= 0) return;
        int size = 0;
        for (int i = start; i < start + n; i++) {
            long key = RankKeys.key(p[i * e + j], i);
            if (size < c) {
                // sift up
                int h = size++;
                while (h > 0) {
                    int parent = (h - 1) >>> 1;
                    if (heap[parent] <= key) break;
                    heap[h] = heap[parent];
                    h = parent;
                }
                heap[h] = key;
            } else if (key > heap[0]) {
                // replace the weakest kept token and sift down
                int h = 0;
                while (true) {
                    int child = 2 * h + 1;
                    if (child >= c) break;
                    if (child + 1 < c && heap[child + 1] < heap[child]) child++;
                    if (heap[child] >= key) break;
                    heap[h] = heap[child];
                    h = child;
                }
                heap[h] = key;
            }
        }
        for (int h = 0; h < c; h++) chosen[RankKeys.index(heap[h]) * e + j] = true;
    }

    @Override
    public void backward(MemorySegment x, long xOff, int t, Routing r, float[] dWeight, MemorySegment dx, long dxOff) {
        float[] p = r.scores;
        for (int i = 0; i < t; i++) {
            int off = i * e; // slots = E: a token's slot row and probability row start at the same offset
            for (int rank = 0; rank < e; rank++) {
                int ex = r.expert[off + rank];
                if (ex < 0) break;
                dProbs[off + ex] += dWeight[off + rank];
            }
            RouterMath.softmaxBackward(p, dProbs, dLogits, off, e);
        }
        gate.backward(x, xOff, t, dLogits, dx, dxOff);
    }
}
