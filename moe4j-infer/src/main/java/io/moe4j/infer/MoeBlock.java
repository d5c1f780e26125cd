package io.moe4j.infer;

import io.moe4j.kernel.quant.QuantMatmul;
import io.moe4j.kernel.row.RowOps;
import io.moe4j.moe.Dispatch;
import io.moe4j.moe.Routing;
import io.moe4j.parallel.WorkerPool;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The sparse FFN of an inference step, in MegaBlocks' named steps: route → dispatch (counting sort by expert) →
 * gather → one grouped matmul per non-empty expert over all its tokens → scatter-add weighted by the router →
 * plus the shared expert. Each expert's weights are read once per step however many tokens (of however many
 * sequences) chose it: that is what makes batched prompts and multi-sequence decoding cheaper than token-by-token.
 *
 * <p>Routing as llama.cpp's {@code build_moe_ffn}: probabilities = softmax over all E router logits (or a sigmoid
 * per expert), the k largest chosen (after an optional selection bias and group restriction, DeepSeek), their
 * probabilities as weights, renormalised to sum 1 (sum clamped at 2^-14, as llama.cpp does) when
 * {@link HyperParams#renormTopK()}, then scaled by {@link HyperParams#expertWeightsScale()}. Shared expert: {@code down(silu(gate·h) ⊙ up·h)} times
 * {@code sigmoid(ffn_gate_inp_shexp · h)} when gated (Qwen2-MoE), as is otherwise (Granite).
 *
 * <p>Activations are quantized per matmul by the kernels exactly as ggml does ({@link QuantMatmul}), so the
 * grouped matmul over an expert's tokens gives the same numbers as llama.cpp's {@code mul_mat_id}.
 */
final class MoeBlock {
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;
    /** llama.cpp clamps the top-k weight sum at the smallest normal F16 before dividing. */
    private static final float MIN_WEIGHT_SUM = 6.103515625e-5f;

    private final HyperParams hp;
    private final QuantMatmul qm;
    private final RowOps ops;
    private final Routing routing;
    private final Dispatch dispatch;
    private final float[] probs;          // (E) one token's router probabilities
    private final float[] selection;      // (E) probabilities + selection bias, groups masked
    private final float[] groupScore;     // (groups) best-two sums
    private final int[] groupTop;         // (groupsUsed) chosen groups
    private final int k;                  // experts chosen per token (the model's, or MoeOptions' override)
    private final float skipBeta;         // MoeOptions.skipBeta: 0 = off
    private final ExpertObserver observer; // null = none
    private final int[] top;              // (k) chosen experts of one token
    private final float[] topWeight;      // (k) their combine weights
    private final float[] rowWeight;      // (T·k) combine weight of each permuted row
    private final MemorySegment logits;   // (T, E) router logits
    private final MemorySegment in;       // (T·k, D) gathered inputs, expert-major
    private final MemorySegment gate;     // (T·k, Fe) gate, then SwiGLU hidden
    private final MemorySegment up;       // (T·k, Fe)
    private final MemorySegment down;     // (T·k, D) expert outputs
    private final MemorySegment shGate;   // (T, Fs) shared expert gate, then hidden; null without one
    private final MemorySegment shUp;     // (T, Fs)
    private final MemorySegment shOut;    // (T, D)
    private final MemorySegment shLogit;  // (T, 1) shared expert's gate logit

    MoeBlock(Arena arena, HyperParams hp, QuantMatmul qm, RowOps ops, int maxTokens, MoeOptions options) {
        this.hp = hp;
        this.qm = qm;
        this.ops = ops;
        int e = hp.experts(), d = hp.dim(), fe = hp.expertFf(), fs = hp.sharedFf();
        int k = options.expertsPerToken() > 0 ? options.expertsPerToken() : hp.expertsUsed();
        // with grouped routing only groupsUsed groups' experts are eligible
        int eligible = hp.expertGroups() > 0 ? hp.groupsUsed() * (e / hp.expertGroups()) : e;
        if (k > eligible) {
            throw new IllegalArgumentException("experts per token " + k + " exceeds the " + eligible + " experts the model can route a token to");
        }
        this.k = k;
        this.skipBeta = options.skipBeta();
        this.observer = options.observer();
        this.topWeight = new float[k];
        long rows = (long) maxTokens * k;
        this.routing = new Routing(e, k, maxTokens);
        this.dispatch = new Dispatch(e, k, maxTokens, (int) rows);
        this.probs = new float[e];
        this.selection = new float[e];
        this.groupScore = new float[Math.max(1, hp.expertGroups())];
        this.groupTop = new int[Math.max(1, hp.groupsUsed())];
        this.top = new int[k];
        this.rowWeight = new float[(int) rows];
        this.logits = floats(arena, (long) maxTokens * e);
        this.in = floats(arena, rows * d);
        this.gate = floats(arena, rows * fe);
        this.up = floats(arena, rows * fe);
        this.down = floats(arena, rows * d);
        if (fs > 0) {
            shGate = floats(arena, (long) maxTokens * fs);
            shUp = floats(arena, (long) maxTokens * fs);
            shOut = floats(arena, (long) maxTokens * d);
            shLogit = floats(arena, maxTokens);
        } else {
            shGate = shUp = shOut = shLogit = null;
        }
    }

    static MemorySegment floats(Arena arena, long n) {
        return arena.allocate(Math.max(1, n) * Float.BYTES, 64);
    }

    /** Experts chosen per token before skipping. */
    int expertsPerToken() { return k; }

    /**
     * out (n, D) = MoE FFN of x (n, D) with layer {@code l}'s experts {@code w} (out is overwritten); slots and
     * positions (n) of the batch tokens are for the observer.
     */
    void forward(WorkerPool pool, int l, LayerWeights w, int n, MemorySegment x, MemorySegment out, int[] slots, int[] positions) {
        int e = hp.experts(), d = hp.dim(), fe = hp.expertFf();
        matmul(pool, w.router(), 0, x, 0, n, logits, 0);
        route(l, n, w.probsBias(), slots, positions);
        dispatch.plan(routing);
        int rows = dispatch.rows();
        for (int r = 0; r < rows; r++) rowWeight[r] = routing.weight[dispatch.rowSlot[r]];
        ops.gatherRows(rows, d, x, 0, d, dispatch.rowToken, 0, in, 0, d);
        for (int ex = 0; ex < e; ex++) {
            int c = dispatch.count(ex);
            if (c == 0) continue;
            long r0 = dispatch.binStart[ex];
            matmulPair(pool, w.expGate(), w.expUp(), ex, in, r0 * d, c, gate, up, r0 * fe);
            ops.swiglu(c * fe, gate, r0 * fe, up, r0 * fe, gate, r0 * fe);
            matmul(pool, w.expDown(), ex, gate, r0 * fe, c, down, r0 * d);
        }
        out.asSlice(0, (long) n * d * Float.BYTES).fill((byte) 0);
        ops.scatterAddRows(rows, d, down, 0, d, dispatch.rowToken, 0, rowWeight, 0, out, 0, d);
        if (w.sharedExpert()) shared(pool, w, n, x, out);
    }

    /**
     * Router probabilities, expert choice and weights per token into {@link #routing}, as llama.cpp's
     * {@code build_moe_ffn}: probabilities by softmax or sigmoid; selection by top-k of the probabilities plus the
     * optional selection bias, restricted to the best groups when experts are grouped (a group scores the sum of
     * its two best); weights are the unbiased probabilities of the chosen, renormalised and scaled if configured.
     * With skipping, chosen experts whose probability is below β × the best chosen one's are dropped first, so
     * renormalisation spreads their weight over the survivors (as if the router had picked fewer).
     */
    private void route(int l, int n, MemorySegment bias, int[] slots, int[] positions) {
        int e = hp.experts();
        routing.reset(n);
        for (int i = 0; i < n; i++) {
            float max = Float.NEGATIVE_INFINITY;
            for (int j = 0; j < e; j++) {
                probs[j] = logits.getAtIndex(F, (long) i * e + j);
                max = Math.max(max, probs[j]);
            }
            if (!(max < Float.POSITIVE_INFINITY)) {
                throw new ArithmeticException("router logits of token " + i + " are not finite (max " + max + ")");
            }
            if (hp.gating() == HyperParams.Gating.SIGMOID) {
                for (int j = 0; j < e; j++) probs[j] = (float) (1.0 / (1.0 + Math.exp(-probs[j])));
            } else {
                double sum = 0;
                for (int j = 0; j < e; j++) {
                    probs[j] = (float) Math.exp(probs[j] - max);
                    sum += probs[j];
                }
                float inv = (float) (1.0 / sum);
                for (int j = 0; j < e; j++) probs[j] *= inv;
            }
            float[] sel = probs;
            if (bias != null || hp.expertGroups() > 0) {
                sel = selection;
                for (int j = 0; j < e; j++) sel[j] = probs[j] + (bias == null ? 0f : bias.getAtIndex(F, j));
                if (hp.expertGroups() > 0) maskGroups(sel, e);
            }
            topK(sel, e, k, top);
            int kept = k;
            if (skipBeta > 0f) kept = skip(top, k);
            float wsum = 0;
            for (int r = 0; r < kept; r++) wsum += probs[top[r]];
            float div = hp.renormTopK() ? Math.max(wsum, MIN_WEIGHT_SUM) : 1f;
            float scale = hp.expertWeightsScale();
            for (int r = 0; r < kept; r++) {
                topWeight[r] = probs[top[r]] / div * scale;
                routing.assign(i, r, top[r], topWeight[r]);
            }
            if (observer != null) observer.onRouting(l, slots[i], positions[i], top, topWeight, kept, k);
        }
    }

    /**
     * Keeps, in order, the chosen experts whose probability is at least skipBeta × the largest chosen probability
     * (with a selection bias the best-ranked is not always the most probable); returns how many remain (≥ 1).
     */
    private int skip(int[] top, int k) {
        float best = 0f;
        for (int r = 0; r < k; r++) best = Math.max(best, probs[top[r]]);
        float limit = skipBeta * best;
        int kept = 0;
        for (int r = 0; r < k; r++) if (!(probs[top[r]] < limit)) top[kept++] = top[r];
        return kept;
    }

    /** Sets the selection scores of all but the best {@code groupsUsed} groups to −∞ (DeepSeek-V3 group routing). */
    private void maskGroups(float[] sel, int e) {
        int groups = hp.expertGroups(), per = e / groups;
        for (int g = 0; g < groups; g++) {
            float a = Float.NEGATIVE_INFINITY, b = Float.NEGATIVE_INFINITY;   // the two largest
            for (int j = g * per; j < (g + 1) * per; j++) {
                float x = sel[j];
                if (x > a) {
                    b = a;
                    a = x;
                } else if (x > b) {
                    b = x;
                }
            }
            groupScore[g] = per > 1 ? a + b : a;
        }
        topK(groupScore, groups, hp.groupsUsed(), groupTop);
        for (int g = 0; g < groups; g++) {
            boolean kept = false;
            for (int u = 0; u < hp.groupsUsed(); u++) kept |= groupTop[u] == g;
            if (!kept) for (int j = g * per; j < (g + 1) * per; j++) sel[j] = Float.NEGATIVE_INFINITY;
        }
    }

    /** Indices of the k largest of p[0, e) in descending order, ties to the lower index (insertion into k slots). */
    static void topK(float[] p, int e, int k, int[] idx) {
        int filled = 0;
        for (int j = 0; j < e; j++) {
            float v = p[j];
            if (filled == k && !(v > p[idx[k - 1]])) continue;
            int pos = Math.min(filled, k - 1);
            while (pos > 0 && v > p[idx[pos - 1]]) {
                idx[pos] = idx[pos - 1];
                pos--;
            }
            idx[pos] = j;
            if (filled < k) filled++;
        }
    }

    private void shared(WorkerPool pool, LayerWeights w, int n, MemorySegment x, MemorySegment out) {
        int d = hp.dim(), fs = hp.sharedFf();
        matmulPair(pool, w.shGate(), w.shUp(), 0, x, 0, n, shGate, shUp, 0);
        ops.swiglu(n * fs, shGate, 0, shUp, 0, shGate, 0);
        matmul(pool, w.shDown(), 0, shGate, 0, n, shOut, 0);
        if (w.shRouter() != null) matmul(pool, w.shRouter(), 0, x, 0, n, shLogit, 0);
        for (int i = 0; i < n; i++) {
            float g = 1f;
            if (w.shRouter() != null) g = (float) (1.0 / (1.0 + Math.exp(-shLogit.getAtIndex(F, i))));
            ops.axpy(d, g, shOut, (long) i * d, out, (long) i * d);
        }
    }

    /**
     * Gate and up projections of matrix i of stacks g and u: {@link QuantMatmul#matmulPair} (x converted once, one
     * parallel pass; same bits as two matmuls) when the two have the same type and shape, else two matmuls.
     */
    private void matmulPair(WorkerPool pool, Matrix g, Matrix u, int i, MemorySegment x, long xOff, int n,
                            MemorySegment yg, MemorySegment yu, long yOff) {
        if (g.type() != u.type() || g.rows() != u.rows() || g.cols() != u.cols()) {
            matmul(pool, g, i, x, xOff, n, yg, yOff);
            matmul(pool, u, i, x, xOff, n, yu, yOff);
            return;
        }
        qm.matmulPair(pool, g.type(), g.data(), g.offset(i), u.data(), u.offset(i), g.rows(), g.cols(), x, xOff, g.cols(), n,
                yg, yOff, yu, yOff, g.rows(), false);
    }

    /** y (n, rows) = x (n, cols) · W_iᵀ for matrix i of stack m; x and y contiguous rows at float offsets. */
    private void matmul(WorkerPool pool, Matrix m, int i, MemorySegment x, long xOff, int n, MemorySegment y, long yOff) {
        qm.matmul(pool, m.type(), m.data(), m.offset(i), m.rows(), m.cols(), x, xOff, m.cols(), n, y, yOff, m.rows(), false);
    }
}
