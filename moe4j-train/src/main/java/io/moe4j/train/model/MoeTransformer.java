package io.moe4j.train.model;

import io.moe4j.kernel.Kernels;
import io.moe4j.kernel.gemm.Gemm;
import io.moe4j.kernel.row.RopeTable;
import io.moe4j.kernel.row.RowOps;
import io.moe4j.moe.MoeConfig;
import io.moe4j.moe.MoeLayer;
import io.moe4j.nn.F32;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The trainable decoder-only MoE transformer: forward and explicit backward, F32, on the project's kernels.
 * <pre>
 *   x = tok_embd[tokens]                                                          (N = B·T, d)
 *   L × [ x += Attention(RMSNorm(x));  x += FFN(RMSNorm(x)) ]     FFN = dense SwiGLU (first denseLayers) or MoE
 *   logits = RMSNorm(x)·Wᵀ,  W = output (V, d), or tok_embd when tied                  (N, V)
 *   loss = mean cross-entropy over the N targets + Σ_MoE-layers routing aux losses
 * </pre>
 *
 * <p><b>Parameter names</b> ({@link #params()}, in this order; weights row-major [out, in] like nn.Linear):
 * <ul>
 *   <li>{@code tok_embd} (V, d)</li>
 *   <li>per block i: {@code layers.i.attn_norm} (d); {@code layers.i.attn.wq} (H·hd, d), {@code .wk}, {@code .wv}
 *       (KV·hd, d), {@code .wo} (d, H·hd); with qkNorm {@code layers.i.attn.q_norm}, {@code .k_norm} (hd);
 *       {@code layers.i.ffn_norm} (d); then dense {@code layers.i.ffn.gate}, {@code .up} (f, d), {@code .down}
 *       (d, f), or the MoE layer's own parameters, all under {@code layers.i.moe.} ({@code router.weight} (E, d),
 *       {@code experts.gate|up} (E, f, d), {@code experts.down} (E, d, f), {@code shared.*}, ... as
 *       {@link MoeLayer#params()} names them)</li>
 *   <li>{@code output_norm} (d); {@code output} (V, d), absent when the embeddings are tied</li>
 * </ul>
 *
 * <p><b>Conventions.</b> RoPE rotates adjacent pairs (2i, 2i+1) (llama.cpp's normal mode), so Wq/Wk export to a
 * llama GGUF unpermuted. GQA: query head h reads kv head h / (H/KV). Tokens enter the MoE layers batch-major
 * (sequence b is rows b·T … b·T+T−1), so a MoE {@code groupSize} of T makes every routing group exactly one
 * sequence (DeepSeek's sequence-wise balance loss, per-sequence capacity); 0 keeps the whole batch as one group.
 * The config's groupSize is used as given.
 *
 * <p><b>Init</b> (bit-reproducible from {@code config.seed()}): one SplittableRandom, drawn in parameter order;
 * weights N(0, initStd²), attention wo and FFN down projections (dense, routed and shared experts) scaled by
 * 1/sqrt(2·layers) (GPT-2), norms 1.
 *
 * <p><b>Memory.</b> Parameters live in the model's own shared arena. Activations (the residual stream of every
 * block, norms, q/k/v, attention probabilities (B·H·T²), logits (B·T·V)) live in a second arena sized for the
 * largest shape seen; a smaller shape reuses it, a larger one reallocates it — the steady state allocates
 * nothing off-heap. MoE layers are sized once for {@code maxTokens} (see {@link #create(ModelConfig, Kernels,
 * WorkerPool, int)}).
 *
 * <p><b>gradScale.</b> The routers add their aux-loss gradients at unit scale inside {@link MoeLayer#backward},
 * so a scaled CE gradient alone would not scale them. Instead the backward runs at scale 1 and the gradients are
 * rescaled around it: g ← g/s before, g ← g·s after, giving g_old + s·∂L/∂θ (two passes over the gradients,
 * skipped when s = 1).
 *
 * <p>Non-finite values raise {@link io.moe4j.moe.NonFiniteException} naming where: each block's attention and FFN
 * outputs, the logits, each block's input gradient and every parameter gradient are checked (one read each).
 *
 * <p>Not thread-safe: one caller at a time (the work inside runs on the pool).
 */
public final class MoeTransformer implements CausalLm, AutoCloseable {
    private final ModelConfig config;
    private final Kernels kernels;
    private final WorkerPool pool;
    private final Arena arena = Arena.ofShared();
    private final int maxTokens;
    private final int d, vocab;
    private final Embedding embedding;
    private final List<Block> blocks;
    private final RmsNorm outputNorm;
    private final Param output; // (V, d): its own or tok_embd when tied
    private final List<Param> params;
    private final List<MoeLayer> moeLayers;
    private final float[][] dMoeLogits; // per MoE layer (maxTokens·E) gating-residual gradients, null if unused
    private final boolean gatingResidual;
    private final String[] gradNames; // "gradient of <param>", for NaN messages
    private final ModelProfile profile = new ModelProfile();

    // Activations, sized for capacity (capRows = B·T, capBT2 = B·T², capT = T).
    private Arena actArena;
    private int capRows, capT;
    private long capBT2;
    private MemorySegment[] resid; // (L+1) × (N, d): input of block l, resid[L] = final residual
    private MemorySegment finalNorm; // (N, d)
    private float[] rstdF;           // (N)
    private MemorySegment logits;    // (N, V), then ∂L/∂logits
    private double[] rowLoss;        // (N)
    private int[] inputs, targets;   // (N)
    private Scratch scratch;

    private MoeTransformer(ModelConfig c, Kernels kernels, WorkerPool pool, int maxTokens) {
        validate(c);
        this.config = c;
        this.kernels = kernels;
        this.pool = pool;
        this.maxTokens = maxTokens;
        this.d = c.dModel();
        this.vocab = c.vocabSize();
        RopeTable rope = new RopeTable(c.maxSeqLen(), c.headDim(), c.ropeTheta());
        Gemm[] headGemm = new Gemm[pool.threads()];
        for (int w = 0; w < headGemm.length; w++) headGemm[w] = kernels.gemm().fork();
        this.embedding = new Embedding(arena, "tok_embd", vocab, d);
        List<Block> bs = new ArrayList<>();
        List<MoeLayer> ms = new ArrayList<>();
        for (int i = 0; i < c.layers(); i++) {
            MoeConfig mc = i < c.denseLayers() ? null
                    : c.moe().toBuilder().layerIndex(i).maxTokens(maxTokens).build();
            Block b = new Block(arena, i, c, mc, rope, kernels, pool, headGemm);
            bs.add(b);
            if (b.moe != null) ms.add(b.moe);
        }
        this.blocks = List.copyOf(bs);
        this.moeLayers = List.copyOf(ms);
        this.outputNorm = new RmsNorm(arena, "output_norm", d, c.normEps());
        this.output = c.tiedEmbeddings() ? embedding.w : new Param(arena, "output", vocab, d);
        List<Param> ps = new ArrayList<>();
        ps.add(embedding.w);
        for (Block b : blocks) ps.addAll(b.params());
        ps.add(outputNorm.w);
        if (!c.tiedEmbeddings()) ps.add(output);
        this.params = Collections.unmodifiableList(ps);
        this.gradNames = ps.stream().map(p -> "gradient of " + p.name()).toArray(String[]::new);
        for (Block b : blocks) b.profile = profile;
        this.gatingResidual = !moeLayers.isEmpty() && c.moe().gatingResidual();
        this.dMoeLogits = new float[moeLayers.size()][];
        if (gatingResidual) {
            for (int j = 0; j < dMoeLogits.length; j++) dMoeLogits[j] = new float[maxTokens * c.moe().numExperts()];
        }
        init();
    }

    /** A model whose MoE layers accept up to max(moe.maxTokens, maxSeqLen) tokens per forward (batch·seqLen). */
    public static MoeTransformer create(ModelConfig config, Kernels kernels, WorkerPool pool) {
        validate(config);
        int mt = config.moe() == null ? config.maxSeqLen() : Math.max(config.moe().maxTokens(), config.maxSeqLen());
        return new MoeTransformer(config, kernels, pool, mt);
    }

    /** A model whose MoE layers are sized for batches of up to {@code maxBatch} sequences of maxSeqLen tokens. */
    public static MoeTransformer create(ModelConfig config, Kernels kernels, WorkerPool pool, int maxBatch) {
        validate(config);
        if (maxBatch < 1) throw new IllegalArgumentException("maxBatch must be >= 1, got " + maxBatch);
        return new MoeTransformer(config, kernels, pool, Math.multiplyExact(maxBatch, config.maxSeqLen()));
    }

    /** Checks the shape fields, naming the bad one. */
    static void validate(ModelConfig c) {
        if (c == null) throw new IllegalArgumentException("model config is missing");
        require(c.vocabSize() >= 2, "model.vocabSize must be >= 2, got " + c.vocabSize());
        require(c.dModel() >= 1, "model.dModel must be >= 1, got " + c.dModel());
        require(c.layers() >= 1, "model.layers must be >= 1, got " + c.layers());
        require(c.heads() >= 1, "model.heads must be >= 1, got " + c.heads());
        require(c.kvHeads() >= 1 && c.heads() % c.kvHeads() == 0,
                "model.kvHeads must divide model.heads = " + c.heads() + ", got " + c.kvHeads());
        require(c.headDim() >= 2 && c.headDim() % 2 == 0, "model.headDim must be even and >= 2 (RoPE pairs), got " + c.headDim());
        require(c.maxSeqLen() >= 1, "model.maxSeqLen must be >= 1, got " + c.maxSeqLen());
        require(c.ropeTheta() > 0 && Double.isFinite(c.ropeTheta()), "model.ropeTheta must be > 0, got " + c.ropeTheta());
        require(c.normEps() > 0 && Double.isFinite(c.normEps()), "model.normEps must be > 0, got " + c.normEps());
        require(c.denseLayers() >= 0 && c.denseLayers() <= c.layers(),
                "model.denseLayers must be in [0, model.layers = " + c.layers() + "], got " + c.denseLayers());
        require(c.denseLayers() == 0 || c.denseHidden() >= 1,
                "model.denseHidden must be >= 1 when model.denseLayers > 0, got " + c.denseHidden());
        require(c.initStd() >= 0 && Double.isFinite(c.initStd()), "model.initStd must be >= 0, got " + c.initStd());
        if (c.denseLayers() < c.layers()) {
            require(c.moe() != null, "model.moe is missing but model.denseLayers = " + c.denseLayers()
                    + " < model.layers = " + c.layers());
            require(c.moe().dModel() == c.dModel(),
                    "moe.dModel = " + c.moe().dModel() + " must equal model.dModel = " + c.dModel());
        }
    }

    private static void require(boolean ok, String message) {
        if (!ok) throw new IllegalArgumentException(message);
    }

    private void init() {
        SplittableRandom rng = new SplittableRandom(config.seed());
        double std = config.initStd(), outScale = 1.0 / Math.sqrt(2.0 * config.layers());
        embedding.w.initNormal(rng, std);
        for (Block b : blocks) b.init(rng, std, outScale);
        outputNorm.w.fill(1f);
        if (!config.tiedEmbeddings()) output.initNormal(rng, std);
    }

    @Override public ModelConfig config() { return config; }
    @Override public List<Param> params() { return params; }
    @Override public List<MoeLayer> moeLayers() { return moeLayers; }
    /** Largest batch·seqLen one forward accepts (the MoE layers' maxTokens). */
    public int maxTokens() { return maxTokens; }
    public Kernels kernels() { return kernels; }
    public WorkerPool pool() { return pool; }
    /** Time per phase since the last reset (see also each MoE layer's profile()). */
    public ModelProfile profile() { return profile; }

    /** Total and active-per-token parameter counts of this model's config (see {@link ParamCounts}). */
    public ParamCounts paramCounts() { return ParamCounts.of(config); }

    @Override
    public void afterStep(int step) {
        for (MoeLayer m : moeLayers) m.router().afterStep();
    }

    // ------------------------------------------------------------------ shapes and inputs

    private void checkShape(int[] tokens, int batch, int seqLen) {
        if (tokens == null) throw new IllegalArgumentException("tokens is null");
        if (batch < 1) throw new IllegalArgumentException("batch must be >= 1, got " + batch);
        if (seqLen < 1 || seqLen > config.maxSeqLen()) {
            throw new IllegalArgumentException("seqLen must be in [1, model.maxSeqLen = " + config.maxSeqLen() + "], got " + seqLen);
        }
        long need = (long) batch * (seqLen + 1);
        if (tokens.length < need) {
            throw new IllegalArgumentException("tokens holds " + tokens.length + " ids, a batch of " + batch + " × (seqLen "
                    + seqLen + " + 1) needs " + need);
        }
        if ((long) batch * seqLen > maxTokens) {
            throw new IllegalArgumentException("batch·seqLen = " + (long) batch * seqLen + " exceeds the model's maxTokens = "
                    + maxTokens + " (create the model with a larger maxBatch or moe.maxTokens)");
        }
        for (int i = 0; i < need; i++) checkToken(tokens[i], i);
    }

    private void checkToken(int id, int i) {
        if (id < 0 || id >= vocab) {
            throw new IllegalArgumentException("token id " + id + " at index " + i + " outside [0, vocabSize = " + vocab + ")");
        }
    }

    /** Ensures activation buffers for (batch, seqLen); reallocates only when the shape outgrows them. */
    private void ensure(int batch, int seqLen) {
        int rows = batch * seqLen;
        long bt2 = (long) rows * seqLen;
        if (actArena != null && rows <= capRows && bt2 <= capBT2 && seqLen <= capT) return;
        if (actArena != null) actArena.close();
        capRows = Math.max(rows, capRows);
        capBT2 = Math.max(bt2, capBT2);
        capT = Math.max(seqLen, capT);
        actArena = Arena.ofShared();
        resid = new MemorySegment[blocks.size() + 1];
        for (int l = 0; l < resid.length; l++) resid[l] = F32.alloc(actArena, (long) capRows * d);
        for (Block b : blocks) b.allocate(actArena, capRows, capBT2);
        outputNorm.allocate(actArena, capRows);
        finalNorm = F32.alloc(actArena, (long) capRows * d);
        rstdF = new float[capRows];
        logits = F32.alloc(actArena, (long) capRows * vocab);
        rowLoss = new double[capRows];
        inputs = new int[capRows];
        targets = new int[capRows];
        scratch = new Scratch(actArena, config, capRows, capT, pool.threads());
    }

    private void splitTokens(int[] tokens, int batch, int seqLen) {
        for (int b = 0; b < batch; b++) {
            System.arraycopy(tokens, b * (seqLen + 1), inputs, b * seqLen, seqLen);
            System.arraycopy(tokens, b * (seqLen + 1) + 1, targets, b * seqLen, seqLen);
        }
    }

    // ------------------------------------------------------------------ forward / backward

    /** Embedding → blocks → final norm over inputs[0..B·T); returns the summed MoE aux losses. */
    private double forwardTrunk(int batch, int seqLen, boolean training) {
        RowOps ops = kernels.rows();
        int n = batch * seqLen;
        long t0 = System.nanoTime();
        embedding.forward(ops, pool, n, inputs, resid[0], 0);
        profile.add(ModelProfile.Phase.EMBED, System.nanoTime() - t0);
        double aux = 0;
        int j = 0;
        for (int l = 0; l < blocks.size(); l++) {
            Block b = blocks.get(l);
            float[] prev = null;
            if (b.moe != null) {
                if (gatingResidual && j > 0) prev = moeLayers.get(j - 1).logits();
                j++;
            }
            b.forward(batch, seqLen, resid[l], resid[l + 1], inputs, prev, training);
            if (b.moe != null) aux += b.moe.routing().auxLoss();
        }
        long t1 = System.nanoTime();
        outputNorm.forward(ops, pool, n, resid[blocks.size()], 0, finalNorm, 0, rstdF);
        profile.add(ModelProfile.Phase.HEAD, System.nanoTime() - t1);
        return aux;
    }

    /** logits rows [0, rows) = finalNorm rows [from, from + rows)·Wᵀ. */
    private void head(int from, int rows) {
        kernels.gemm().nt(pool, rows, vocab, d, finalNorm, (long) from * d, d, output.data(), 0, d, logits, 0, vocab, false);
    }

    @Override
    public LossBreakdown forwardBackward(int[] tokens, int batch, int seqLen, float gradScale) {
        if (!(gradScale > 0) || !Float.isFinite(gradScale)) {
            throw new IllegalArgumentException("gradScale must be finite and > 0, got " + gradScale);
        }
        checkShape(tokens, batch, seqLen);
        ensure(batch, seqLen);
        splitTokens(tokens, batch, seqLen);
        RowOps ops = kernels.rows();
        Gemm g = kernels.gemm();
        int n = batch * seqLen;
        double aux = forwardTrunk(batch, seqLen, true);
        long t0 = System.nanoTime();
        head(0, n);
        double ce = CrossEntropy.run(ops, pool, n, vocab, logits, targets, rowLoss, 1f / n) / n;
        long t1 = System.nanoTime();
        profile.add(ModelProfile.Phase.HEAD, t1 - t0);
        if (!Double.isFinite(ce + aux)) {
            throw new io.moe4j.moe.NonFiniteException("non-finite loss: cross-entropy " + ce + ", aux " + aux);
        }
        if (gradScale != 1f) scaleGrads(1f / gradScale);

        // head: dW += dlogitsᵀ·finalNorm, dFinalNorm = dlogits·W
        Scratch s = scratch;
        g.tn(pool, vocab, d, n, logits, 0, vocab, finalNorm, 0, d, output.gradData(), 0, d, true);
        g.nn(pool, n, d, vocab, logits, 0, vocab, output.data(), 0, d, s.dNorm, 0, d, false);
        F32.zero(s.dResid, 0, (long) n * d);
        outputNorm.backward(ops, pool, n, s.dNorm, 0, resid[blocks.size()], 0, rstdF, s.dResid, 0);
        long t2 = System.nanoTime();
        profile.add(ModelProfile.Phase.HEAD_BWD, t2 - t1);
        if (gatingResidual) for (float[] a : dMoeLogits) java.util.Arrays.fill(a, 0, n * config.moe().numExperts(), 0f);
        int j = moeLayers.size();
        for (int l = blocks.size() - 1; l >= 0; l--) {
            Block b = blocks.get(l);
            float[] dLog = null, dPrev = null;
            if (b.moe != null) {
                j--;
                if (gatingResidual) {
                    if (j + 1 < moeLayers.size()) dLog = dMoeLogits[j];
                    if (j > 0) dPrev = dMoeLogits[j - 1];
                }
            }
            b.backward(batch, seqLen, resid[l], s, dLog, dPrev);
        }
        long t3 = System.nanoTime();
        embedding.backward(ops, n, inputs, s.dResid, 0);
        long t4 = System.nanoTime();
        profile.add(ModelProfile.Phase.EMBED_BWD, t4 - t3);

        if (gradScale != 1f) scaleGrads(gradScale);
        for (int i = 0; i < params.size(); i++) {
            Param p = params.get(i);
            FiniteCheck.check(ops, p.gradData(), 0, Math.toIntExact(p.numel()), gradNames[i]);
        }
        profile.add(ModelProfile.Phase.GRAD_CHECK, System.nanoTime() - t4);
        return new LossBreakdown(ce, aux, n);
    }

    private void scaleGrads(float s) {
        RowOps ops = kernels.rows();
        for (Param p : params) ops.scale(Math.toIntExact(p.numel()), s, p.gradData(), 0);
    }

    @Override
    public LossBreakdown evaluate(int[] tokens, int batch, int seqLen) {
        checkShape(tokens, batch, seqLen);
        ensure(batch, seqLen);
        splitTokens(tokens, batch, seqLen);
        int n = batch * seqLen;
        double aux = forwardTrunk(batch, seqLen, false);
        head(0, n);
        double ce = CrossEntropy.run(kernels.rows(), pool, n, vocab, logits, targets, rowLoss, 0f) / n;
        return new LossBreakdown(ce, aux, n);
    }

    @Override
    public void nextLogits(int[] tokens, int len, float[] out) {
        if (tokens == null || out == null) throw new IllegalArgumentException("tokens and out must not be null");
        if (len < 1 || len > config.maxSeqLen() || len > tokens.length) {
            throw new IllegalArgumentException("len must be in [1, min(model.maxSeqLen = " + config.maxSeqLen()
                    + ", tokens.length = " + tokens.length + ")], got " + len);
        }
        if (out.length < vocab) throw new IllegalArgumentException("out needs vocabSize = " + vocab + " floats, has " + out.length);
        if (len > maxTokens) throw new IllegalArgumentException("len " + len + " exceeds maxTokens = " + maxTokens);
        for (int i = 0; i < len; i++) checkToken(tokens[i], i);
        ensure(1, len);
        System.arraycopy(tokens, 0, inputs, 0, len);
        forwardTrunk(1, len, false);
        head(len - 1, 1);
        MemorySegment.copy(logits, F32.LAYOUT, 0, out, 0, vocab);
        FiniteCheck.check(kernels.rows(), logits, 0, vocab, "output logits");
    }

    /** Evaluation-mode logits of every position, (B·T, V) row-major (tests; allocates the result). */
    float[] allLogits(int[] tokens, int batch, int seqLen) {
        checkShape(tokens, batch, seqLen);
        ensure(batch, seqLen);
        splitTokens(tokens, batch, seqLen);
        int n = batch * seqLen;
        forwardTrunk(batch, seqLen, false);
        head(0, n);
        return F32.toArray(logits, 0, n * vocab);
    }

    @Override
    public void close() {
        if (actArena != null) actArena.close();
        actArena = null;
        arena.close();
    }
}
