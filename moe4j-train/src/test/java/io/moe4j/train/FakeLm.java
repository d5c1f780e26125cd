package io.moe4j.train;

import io.moe4j.kernel.Kernels;
import io.moe4j.moe.MoeConfig;
import io.moe4j.moe.MoeLayer;
import io.moe4j.nn.F32;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;
import io.moe4j.train.model.CausalLm;
import io.moe4j.train.model.LossBreakdown;
import io.moe4j.train.model.ModelConfig;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Test-only causal LM with real gradients: logits_t = head · (x_t + MoE(x_t)), x_t = emb[token_t], with a real
 * {@link MoeLayer} (so the trainer sees real routing metrics, router RNG draws and DeepSeek-V3 bias) or, when
 * {@code config.denseLayers() == layers}, without it (a bigram model). Token {@code vocab − 1} at the start of a
 * batch is a "poison" marker: it makes the step non-finite while {@link #poisonLeft} is not 0.
 */
final class FakeLm implements CausalLm {
    enum Poison { GRADIENT, LOSS }

    private final ModelConfig config;
    private final Arena arena = Arena.ofShared();
    private final Param emb;   // (V, d)
    private final Param head;  // (V, d)
    private final MoeLayer moe; // null when dense
    private final int v, d;
    private final MemorySegment x, h, dh, dx; // (maxT, d)
    private final float[] probs;              // (V)
    Poison poison = Poison.GRADIENT;
    int poisonLeft = 0; // −1 = always
    int afterSteps;

    FakeLm(ModelConfig c, WorkerPool pool) {
        this.config = c;
        this.v = c.vocabSize();
        this.d = c.dModel();
        this.emb = new Param(arena, "tok_emb", v, d);
        this.head = new Param(arena, "head.weight", v, d);
        SplittableRandom rng = new SplittableRandom(c.seed());
        emb.initNormal(rng, c.initStd());
        head.initNormal(rng, c.initStd());
        if (c.denseLayers() < c.layers()) {
            MoeConfig mc = c.moe().toBuilder().layerIndex(0).build();
            this.moe = new MoeLayer(mc, arena, Kernels.get(), pool);
            moe.init(rng, c.initStd(), 1.0);
        } else {
            this.moe = null;
        }
        int maxT = c.moe().maxTokens();
        x = F32.alloc(arena, (long) maxT * d);
        h = F32.alloc(arena, (long) maxT * d);
        dh = F32.alloc(arena, (long) maxT * d);
        dx = F32.alloc(arena, (long) maxT * d);
        probs = new float[v];
    }

    @Override public ModelConfig config() { return config; }

    @Override
    public List<Param> params() {
        List<Param> ps = new ArrayList<>();
        ps.add(emb);
        if (moe != null) ps.addAll(moe.params());
        ps.add(head);
        return ps;
    }

    @Override public List<MoeLayer> moeLayers() { return moe == null ? List.of() : List.of(moe); }

    @Override
    public void afterStep(int step) {
        afterSteps++;
        if (moe != null) moe.router().afterStep();
    }

    private int forward(int[] tokens, int batch, int seqLen, boolean training) {
        int n = batch * seqLen;
        for (int b = 0; b < batch; b++) {
            for (int i = 0; i < seqLen; i++) {
                int tok = tokens[b * (seqLen + 1) + i];
                MemorySegment.copy(emb.data(), (long) tok * d * 4, x, (long) (b * seqLen + i) * d * 4, (long) d * 4);
            }
        }
        if (moe != null) {
            moe.forward(x, 0, n, h, 0, training);
            for (long j = 0; j < (long) n * d; j++) F32.set(h, j, F32.get(h, j) + F32.get(x, j));
        } else {
            MemorySegment.copy(x, 0, h, 0, (long) n * d * 4);
        }
        return n;
    }

    /** softmax(head·h_t) into probs; returns −log p[target]. */
    private double rowLoss(int t, int target) {
        float max = Float.NEGATIVE_INFINITY;
        for (int k = 0; k < v; k++) {
            float z = 0;
            for (int j = 0; j < d; j++) z += F32.get(head.data(), (long) k * d + j) * F32.get(h, (long) t * d + j);
            probs[k] = z;
            max = Math.max(max, z);
        }
        double sum = 0;
        for (int k = 0; k < v; k++) sum += Math.exp(probs[k] - max);
        for (int k = 0; k < v; k++) probs[k] = (float) (Math.exp(probs[k] - max) / sum);
        return -Math.log(Math.max(probs[target], 1e-30));
    }

    @Override
    public LossBreakdown forwardBackward(int[] tokens, int batch, int seqLen, float gradScale) {
        int n = forward(tokens, batch, seqLen, true);
        F32.zero(dh, 0, (long) n * d);
        double loss = 0;
        for (int b = 0; b < batch; b++) {
            for (int i = 0; i < seqLen; i++) {
                int t = b * seqLen + i, target = tokens[b * (seqLen + 1) + i + 1];
                loss += rowLoss(t, target);
                for (int k = 0; k < v; k++) {
                    float g = (probs[k] - (k == target ? 1f : 0f)) * gradScale / n;
                    if (g == 0) continue;
                    for (int j = 0; j < d; j++) {
                        long hk = (long) k * d + j, tj = (long) t * d + j;
                        F32.set(head.gradData(), hk, F32.get(head.gradData(), hk) + g * F32.get(h, tj));
                        F32.set(dh, tj, F32.get(dh, tj) + g * F32.get(head.data(), hk));
                    }
                }
            }
        }
        MemorySegment.copy(dh, 0, dx, 0, (long) n * d * 4);
        if (moe != null) moe.backward(x, 0, dh, 0, dx, 0);
        for (int b = 0; b < batch; b++) {
            for (int i = 0; i < seqLen; i++) {
                int tok = tokens[b * (seqLen + 1) + i];
                for (int j = 0; j < d; j++) {
                    long e = (long) tok * d + j;
                    F32.set(emb.gradData(), e, F32.get(emb.gradData(), e) + F32.get(dx, (long) (b * seqLen + i) * d + j));
                }
            }
        }
        double aux = moe == null ? 0 : moe.metrics().balanceLoss() + moe.metrics().zLoss() + moe.metrics().otherLoss();
        if (tokens[0] == v - 1 && poisonLeft != 0) {
            if (poisonLeft > 0) poisonLeft--;
            if (poison == Poison.LOSS) return new LossBreakdown(Double.NaN, aux, n);
            F32.set(head.gradData(), 5, Float.NaN);
        }
        return new LossBreakdown(loss / n, aux, n);
    }

    @Override
    public LossBreakdown evaluate(int[] tokens, int batch, int seqLen) {
        int n = forward(tokens, batch, seqLen, false);
        double loss = 0;
        for (int b = 0; b < batch; b++) {
            for (int i = 0; i < seqLen; i++) loss += rowLoss(b * seqLen + i, tokens[b * (seqLen + 1) + i + 1]);
        }
        return new LossBreakdown(loss / n, 0, n);
    }

    @Override
    public void nextLogits(int[] tokens, int len, float[] out) {
        int[] row = new int[len + 1];
        System.arraycopy(tokens, 0, row, 0, len);
        forward(row, 1, len, false);
        int t = len - 1;
        for (int k = 0; k < v; k++) {
            float z = 0;
            for (int j = 0; j < d; j++) z += F32.get(head.data(), (long) k * d + j) * F32.get(h, (long) t * d + j);
            out[k] = z;
        }
    }
}
