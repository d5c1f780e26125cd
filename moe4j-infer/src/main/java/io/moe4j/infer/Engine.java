package io.moe4j.infer;

import io.moe4j.kernel.Kernels;
import io.moe4j.kernel.quant.QuantMatmul;
import io.moe4j.kernel.row.RowOps;
import io.moe4j.parallel.WorkerPool;
import io.moe4j.tensor.quant.Quant;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The forward pass of a {@link Model} with a KV cache: evaluates a {@link Batch} of tokens — a prompt, one
 * decode step of several sequences, or both — layer by layer, all tokens of the batch together, and leaves the
 * next-token logits of the tokens that asked for them.
 *
 * <pre>
 *   x = embed(tokens) · embeddingScale                                   (n, D)
 *   per layer:  h = rmsnorm(x) ; q,k,v = h·Wqᵀ(+b), ... ; [q/k norm] ; RoPE ; store k,v in the cache
 *               x += residualScale · Wo · attention(q, cache)
 *               h = rmsnorm(x) ; x += residualScale · FFN(h)       (dense SwiGLU, or {@link MoeBlock})
 *   logits = (rmsnorm(x) · Woutᵀ + b) / logitScale                 (only rows that asked for logits)
 * </pre>
 * DeepSeek-V2's multi-head latent attention replaces the attention line (see {@code mlaAttentionBlock}).
 * Every buffer is allocated in the constructor for {@code maxBatch} tokens; {@link #forward} allocates nothing of
 * its own (the SIMD kernels may, while the JIT has not yet compiled them) except when the KV cache, which is sized
 * by use rather than by the context length, doubles (see {@link KvCache}).
 * Matmuls run on the shared quantized kernels (activation rounding as ggml), multi-threaded over output rows;
 * attention over (token, head) pairs.
 *
 * <p>Not thread-safe: one engine serves one caller (it may hold many sequences, one per cache slot).
 */
public final class Engine implements AutoCloseable {
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT;

    /** Cache positions when the options leave the context length to the model. */
    public static final int DEFAULT_MAX_CONTEXT = 4096;

    /**
     * @param maxBatch      tokens per {@link #forward} call
     * @param slots         sequences the cache holds
     * @param contextLength positions per sequence (≤ 0: the model's training context, at most
     *                      {@link #DEFAULT_MAX_CONTEXT} — a 32k-token cache of a Mixtral-size model takes gigabytes)
     * @param kvType        cache element type
     * @param maxOutputs    logit rows per call (≤ 0: maxBatch)
     */
    public record Options(int maxBatch, int slots, int contextLength, KvCache.Type kvType, int maxOutputs, MoeOptions moe) {
        public Options {
            if (moe == null) throw new NullPointerException("moe options");
        }

        public static Options defaults() { return new Options(64, 1, 0, KvCache.Type.F32, 0, MoeOptions.defaults()); }

        public Options withMaxBatch(int n) { return new Options(n, slots, contextLength, kvType, maxOutputs, moe); }
        public Options withSlots(int n) { return new Options(maxBatch, n, contextLength, kvType, maxOutputs, moe); }
        public Options withContextLength(int n) { return new Options(maxBatch, slots, n, kvType, maxOutputs, moe); }
        public Options withKvType(KvCache.Type t) { return new Options(maxBatch, slots, contextLength, t, maxOutputs, moe); }
        public Options withMaxOutputs(int n) { return new Options(maxBatch, slots, contextLength, kvType, n, moe); }
        /** MoE controls (top-k override, expert skipping, routing observer); ignored by dense models. */
        public Options withMoe(MoeOptions m) { return new Options(maxBatch, slots, contextLength, kvType, maxOutputs, m); }
    }

    private final Model model;
    private final HyperParams hp;
    private final WorkerPool pool;
    private final QuantMatmul qm;
    private final RowOps ops;
    private final Arena arena = Arena.ofShared();
    private final KvCache cache;
    private final Rope rope;
    private final Attention attention;
    private final MoeBlock moe;        // null for dense models
    private final int maxBatch, maxOutputs;

    private final int[] positions;      // (T) position of each batch token
    private final int[] outRows;        // (maxOutputs) batch row of each logits row
    private final float[] embRow;       // (D) one dequantized embedding row
    private final MemorySegment x;      // (T, D) residual stream
    private final MemorySegment h;      // (T, D) normalised input of a branch
    private final MemorySegment q;      // (T, Hq·hd); MLA (T, H·(n+ρ)) before absorption
    private final MemorySegment k;      // (T, Hkv·hd)
    private final MemorySegment v;      // (T, Hkv·hd)
    private final MemorySegment att;    // (T, Hq·hd) attention output before Wo; MLA (T, H·dv)
    private final MemorySegment qa;     // MLA (T, q_lora_rank) query bottleneck
    private final MemorySegment qcat;   // MLA (T, H, c+ρ) absorbed queries: [W_kb·q_nope, RoPE(q_pe)]
    private final MemorySegment attLatent; // MLA (T, H, c) attention output in latent space
    private final MemorySegment branch; // (T, D) a branch's output
    private final MemorySegment fGate;  // (T, F) dense FFN gate, then hidden
    private final MemorySegment fUp;    // (T, F)
    private final MemorySegment outX;   // (maxOutputs, D) final hidden states of the logit rows
    private final MemorySegment logits; // (maxOutputs, V)
    private int lastOutputs;

    // State of the running layer for the preallocated parallel loop bodies (no capturing lambda per call).
    private int curLayer;
    private LayerWeights curWeights;
    private int[] curSlots;
    private MemorySegment normIn, normGain, normOut;
    private final WorkerPool.Body prepareBody = (i, worker) -> prepareToken(curLayer, curWeights, i, curSlots[i]);
    private final WorkerPool.Body mlaPrepareBody = (i, worker) -> prepareMlaToken(curLayer, curWeights, i, curSlots[i]);
    private final WorkerPool.Body normBody = this::normRow;

    private void normRow(int i, int worker) {
        int d = hp.dim();
        ops.rmsnorm(d, normIn, (long) i * d, normGain, 0, hp.rmsEps(), normOut, (long) i * d);
    }

    /** cos / sin tables (positions, rot/2) for {@link RowOps#rope}. */
    private record Rope(float[] cos, float[] sin, int half) {
        Rope(float[][] t, int rot) { this(t[0], t[1], rot / 2); }
        int offset(int pos) { return pos * half; }
    }

    public Engine(Model model, WorkerPool pool, Options o) {
        this.model = model;
        this.hp = model.hyperParams();
        this.pool = pool;
        Kernels kernels = Kernels.get();
        this.qm = kernels.quant();
        this.ops = kernels.rows();
        if (o.maxBatch() < 1) throw new IllegalArgumentException("maxBatch must be >= 1, got " + o.maxBatch());
        if (o.slots() < 1) throw new IllegalArgumentException("slots must be >= 1, got " + o.slots());
        int ctx = o.contextLength() > 0 ? o.contextLength() : Math.min(hp.contextLength(), DEFAULT_MAX_CONTEXT);
        this.maxBatch = o.maxBatch();
        this.maxOutputs = o.maxOutputs() > 0 ? o.maxOutputs() : o.maxBatch();
        HyperParams.Mla mla = hp.mla();
        if (mla == null) {
            this.cache = new KvCache(o.kvType(), hp.layers(), o.slots(), ctx, hp.kvDim(), hp.kvDim(), hp.kvHeads());
            this.rope = new Rope(hp.ropeScaling().tables(ctx, hp.headDim(), hp.ropeBase(), model.ropeFreqs()), hp.headDim());
            this.attention = new Attention(arena, ops, hp.heads(), hp.kvHeads(), hp.headDim(), hp.headDim(),
                    hp.attentionScale(), ctx, pool.threads());
        } else {
            // one latent row per position serves as key ([latent, rotary]) and value (latent)
            this.cache = new KvCache(o.kvType(), hp.layers(), o.slots(), ctx, mla.latentRow(), 0);
            this.rope = new Rope(hp.ropeScaling().tables(ctx, mla.qkRope(), hp.ropeBase(), model.ropeFreqs()), mla.qkRope());
            this.attention = new Attention(arena, ops, hp.heads(), 1, mla.latentRow(), mla.kvLoraRank(),
                    hp.attentionScale(), ctx, pool.threads());
        }
        this.moe = hp.moe() ? new MoeBlock(arena, hp, qm, ops, maxBatch, o.moe()) : null;
        int t = maxBatch, d = hp.dim();
        positions = new int[t];
        outRows = new int[maxOutputs];
        embRow = new float[d];
        x = MoeBlock.floats(arena, (long) t * d);
        h = MoeBlock.floats(arena, (long) t * d);
        int nh = hp.heads();
        q = MoeBlock.floats(arena, (long) t * (mla == null ? hp.qDim() : nh * mla.qHead()));
        k = MoeBlock.floats(arena, (long) t * hp.kvDim());
        v = MoeBlock.floats(arena, (long) t * (mla == null ? hp.kvDim() : 0));
        att = MoeBlock.floats(arena, (long) t * (mla == null ? hp.qDim() : nh * mla.vHeadDim()));
        qa = MoeBlock.floats(arena, mla == null ? 0 : (long) t * mla.qLoraRank());
        qcat = MoeBlock.floats(arena, mla == null ? 0 : (long) t * nh * mla.latentRow());
        attLatent = MoeBlock.floats(arena, mla == null ? 0 : (long) t * nh * mla.kvLoraRank());
        branch = MoeBlock.floats(arena, (long) t * d);
        long ff = !hp.moe() || hp.denseLead() > 0 ? (long) t * hp.ff() : 0;
        fGate = MoeBlock.floats(arena, ff);
        fUp = MoeBlock.floats(arena, ff);
        outX = MoeBlock.floats(arena, (long) maxOutputs * d);
        logits = MoeBlock.floats(arena, (long) maxOutputs * hp.vocab());
    }

    public Model model() { return model; }
    public KvCache cache() { return cache; }
    public int maxBatch() { return maxBatch; }
    public int maxOutputs() { return maxOutputs; }
    public int vocab() { return hp.vocab(); }

    /** A batch sized for this engine. */
    public Batch newBatch() { return new Batch(maxBatch); }

    /**
     * Evaluates {@code b}: each token continues its slot's sequence; afterwards {@link #logits(int, float[])}
     * holds the next-token logits of the tokens added with {@code logits = true}, in batch order.
     *
     * @throws IllegalArgumentException for a token id outside the vocabulary, a bad slot, a full context or a
     *                                  batch larger than the engine's limits (nothing is changed then)
     */
    public void forward(Batch b) {
        int n = b.size;
        if (n == 0) throw new IllegalArgumentException("empty batch");
        if (n > maxBatch) throw new IllegalArgumentException("batch of " + n + " tokens exceeds maxBatch " + maxBatch);
        if (b.outputs > maxOutputs) throw new IllegalArgumentException(b.outputs + " logit rows exceed maxOutputs " + maxOutputs);
        int d = hp.dim();
        // Validate everything and assign positions before touching the cache.
        int outs = 0;
        for (int i = 0; i < n; i++) {
            int tok = b.tokens[i], s = b.slots[i];
            if (tok < 0 || tok >= hp.vocab()) {
                throw new IllegalArgumentException("token id " + tok + " at batch index " + i + " is outside the vocabulary [0, " + hp.vocab() + ")");
            }
            if (s < 0 || s >= cache.slots()) throw new IllegalArgumentException("slot " + s + " outside [0, " + cache.slots() + ")");
            int pos = cache.length(s);
            for (int j = 0; j < i; j++) if (b.slots[j] == s) pos++;
            if (pos >= cache.capacity()) {
                throw new IllegalArgumentException("sequence in slot " + s + " is full: context length " + cache.capacity());
            }
            positions[i] = pos;
            if (b.wantLogits[i]) outRows[outs++] = i;
        }
        int needed = 0;
        for (int i = 0; i < n; i++) needed = Math.max(needed, positions[i] + 1);
        cache.reserve(needed);   // the cache grows with use (see KvCache), never past its capacity

        // Embeddings.
        Matrix emb = model.tokenEmbedding();
        for (int i = 0; i < n; i++) {
            Quant.dequantize(emb.type(), emb.data(), b.tokens[i] * emb.rowBytes(), embRow, 0, d);
            MemorySegment.copy(embRow, 0, x, F, (long) i * d * Float.BYTES, d);
            if (hp.embeddingScale() != 1f) ops.scale(d, hp.embeddingScale(), x, (long) i * d);
        }

        for (int l = 0; l < hp.layers(); l++) {
            LayerWeights w = model.layer(l);
            norm(n, x, w.attnNorm(), h);
            attentionBlock(l, w, n, b.slots);
            residual(n);
            norm(n, x, w.ffnNorm(), h);
            if (w.moe()) {
                moe.forward(pool, l, w, n, h, branch, b.slots, positions);
            } else {
                matmul(w.ffnGate(), h, n, fGate);
                matmul(w.ffnUp(), h, n, fUp);
                ops.swiglu(n * hp.ff(), fGate, 0, fUp, 0, fGate, 0);
                matmul(w.ffnDown(), fGate, n, branch);
            }
            residual(n);
        }
        for (int i = 0; i < n; i++) {
            int s = b.slots[i];
            cache.setLength(s, Math.max(cache.length(s), positions[i] + 1));
        }

        // Logits of the requested rows only.
        for (int r = 0; r < outs; r++) {
            ops.rmsnorm(d, x, (long) outRows[r] * d, model.outputNorm(), 0, hp.rmsEps(), outX, (long) r * d);
        }
        if (outs > 0) {
            matmul(model.output(), outX, outs, logits);
            int vocab = hp.vocab();
            for (int r = 0; r < outs; r++) {
                if (model.outputBias() != null) ops.add(vocab, logits, (long) r * vocab, model.outputBias(), 0, logits, (long) r * vocab);
                if (hp.logitScale() != 1f) ops.scale(vocab, 1f / hp.logitScale(), logits, (long) r * vocab);
            }
        }
        lastOutputs = outs;
    }

    /**
     * Convenience for one sequence: appends {@code ids} to {@code slot} (in chunks of maxBatch, all tokens of a
     * chunk together) and returns the next-token logits after the last id.
     */
    public float[] evaluate(int slot, int[] ids) {
        if (ids.length == 0) throw new IllegalArgumentException("no token ids to evaluate");
        Batch b = newBatch();
        for (int start = 0; start < ids.length; start += maxBatch) {
            int end = Math.min(ids.length, start + maxBatch);
            b.clear();
            for (int i = start; i < end; i++) b.add(ids[i], slot, i == ids.length - 1);
            forward(b);
        }
        return logits(0);
    }

    /** Copies logits row {@code row} (of the last forward) into dst (length ≥ vocab) and returns it. */
    public float[] logits(int row, float[] dst) {
        if (row < 0 || row >= lastOutputs) throw new IllegalArgumentException("no logits row " + row + " (last forward produced " + lastOutputs + ")");
        MemorySegment.copy(logits, F, (long) row * hp.vocab() * Float.BYTES, dst, 0, hp.vocab());
        return dst;
    }

    /** Logits row {@code row} as a new array. */
    public float[] logits(int row) { return logits(row, new float[hp.vocab()]); }

    private void attentionBlock(int l, LayerWeights w, int n, int[] slots) {
        if (w.mla() != null) {
            mlaAttentionBlock(l, w, n, slots);
            return;
        }
        int qd = hp.qDim(), kvd = hp.kvDim();
        matmul(w.wq(), h, n, q);
        matmul(w.wk(), h, n, k);
        matmul(w.wv(), h, n, v);
        bias(n, q, w.bq(), qd);
        bias(n, k, w.bk(), kvd);
        bias(n, v, w.bv(), kvd);
        // Per token: Q/K norm, RoPE, store K and V. Tokens are independent (distinct cache cells), so they run in
        // parallel; each task's arithmetic does not depend on the thread.
        curLayer = l;
        curWeights = w;
        curSlots = slots;
        pool.parallelFor(n, prepareBody);
        attention.forward(pool, cache, l, n, slots, positions, q, att);
        matmul(w.wo(), att, n, branch);
        bias(n, branch, w.bo(), hp.dim());
    }

    private void prepareToken(int l, LayerWeights w, int i, int slot) {
        int qd = hp.qDim(), kvd = hp.kvDim(), hd = hp.headDim();
        long qo = (long) i * qd, ko = (long) i * kvd;
        switch (hp.arch().qkNorm()) {
            case PER_HEAD -> {
                for (int hh = 0; hh < hp.heads(); hh++) ops.rmsnorm(hd, q, qo + (long) hh * hd, w.qNorm(), 0, hp.rmsEps(), q, qo + (long) hh * hd);
                for (int hh = 0; hh < hp.kvHeads(); hh++) ops.rmsnorm(hd, k, ko + (long) hh * hd, w.kNorm(), 0, hp.rmsEps(), k, ko + (long) hh * hd);
            }
            case FULL_WIDTH -> {
                ops.rmsnorm(qd, q, qo, w.qNorm(), 0, hp.rmsEps(), q, qo);
                ops.rmsnorm(kvd, k, ko, w.kNorm(), 0, hp.rmsEps(), k, ko);
            }
            case NONE -> { }
        }
        if (hp.rope()) {
            int tab = rope.offset(positions[i]);
            boolean neox = hp.arch().neoxRope();
            ops.rope(hp.heads(), hd, hd, q, qo, rope.cos(), rope.sin(), tab, neox, false);
            ops.rope(hp.kvHeads(), hd, hd, k, ko, rope.cos(), rope.sin(), tab, neox, false);
        }
        cache.store(l, slot, positions[i], k, ko, v, ko);
    }

    /**
     * DeepSeek-V2 attention, absorbed (llama.cpp's MLA path): the cache row of a position is
     * [rmsnorm(latent), RoPE(k_pe)] from {@code attn_kv_a_mqa}; each query head's no-RoPE part is mapped into latent
     * space by {@code attn_k_b} and its RoPE part appended, so scores are dot products with cache rows; the
     * attention-weighted latent is mapped to the value head by {@code attn_v_b}, then {@code attn_output}.
     */
    private void mlaAttentionBlock(int l, LayerWeights w, int n, int[] slots) {
        HyperParams.Mla a = hp.mla();
        LayerWeights.Mla m = w.mla();
        int heads = hp.heads(), qh = a.qHead(), row = a.latentRow(), c = a.kvLoraRank();
        if (m.qA() != null) {
            matmul(m.qA(), h, n, qa);
            for (int i = 0; i < n; i++) ops.rmsnorm(a.qLoraRank(), qa, (long) i * a.qLoraRank(), m.qANorm(), 0, hp.rmsEps(), qa, (long) i * a.qLoraRank());
            matmul(w.wq(), qa, n, q);
        } else {
            matmul(w.wq(), h, n, q);
        }
        matmul(m.kvA(), h, n, k);   // (n, c+ρ)
        curLayer = l;
        curWeights = w;
        curSlots = slots;
        pool.parallelFor(n, mlaPrepareBody);
        for (int hh = 0; hh < heads; hh++) {
            Matrix kb = m.kB();   // head hh: (c, n) · q_nope (n) → latent-space query
            qm.matmul(pool, kb.type(), kb.data(), kb.offset(hh), c, a.qkNope(), q, (long) hh * qh, heads * qh, n,
                    qcat, (long) hh * row, heads * row, false);
        }
        attention.forward(pool, cache, l, n, slots, positions, qcat, attLatent);
        for (int hh = 0; hh < heads; hh++) {
            Matrix vb = m.vB();   // head hh: (dv, c) · latent → value head
            qm.matmul(pool, vb.type(), vb.data(), vb.offset(hh), a.vHeadDim(), c, attLatent, (long) hh * c, heads * c, n,
                    att, (long) hh * a.vHeadDim(), heads * a.vHeadDim(), false);
        }
        matmul(w.wo(), att, n, branch);
    }

    /** MLA, one token: RoPE and norm of its latent row, store it, RoPE of each query head's rotary part into qcat. */
    private void prepareMlaToken(int l, LayerWeights w, int i, int slot) {
        HyperParams.Mla a = hp.mla();
        LayerWeights.Mla m = w.mla();
        int heads = hp.heads(), qh = a.qHead(), row = a.latentRow(), c = a.kvLoraRank();
        int tab = rope.offset(positions[i]);
        long ko = (long) i * row;
        ops.rope(1, a.qkRope(), a.qkRope(), k, ko + c, rope.cos(), rope.sin(), tab, false, false);
        ops.rmsnorm(c, k, ko, m.kvANorm(), 0, hp.rmsEps(), k, ko);
        cache.store(l, slot, positions[i], k, ko, null, 0);
        for (int hh = 0; hh < heads; hh++) {
            long qo = (long) i * heads * qh + (long) hh * qh + a.qkNope();
            ops.rope(1, a.qkRope(), a.qkRope(), q, qo, rope.cos(), rope.sin(), tab, false, false);
            MemorySegment.copy(q, qo * Float.BYTES, qcat, ((long) i * heads * row + (long) hh * row + c) * Float.BYTES,
                    (long) a.qkRope() * Float.BYTES);
        }
    }

    /** x += residualScale · branch. */
    private void residual(int n) {
        int d = hp.dim();
        float s = hp.residualScale();
        for (int i = 0; i < n; i++) {
            if (s != 1f) ops.scale(d, s, branch, (long) i * d);
            ops.add(d, x, (long) i * d, branch, (long) i * d, x, (long) i * d);
        }
    }

    private void norm(int n, MemorySegment in, MemorySegment gain, MemorySegment out) {
        int d = hp.dim();
        if (n == 1) {
            ops.rmsnorm(d, in, 0, gain, 0, hp.rmsEps(), out, 0);
        } else {
            normIn = in;
            normGain = gain;
            normOut = out;
            pool.parallelFor(n, normBody);
        }
    }

    private void bias(int n, MemorySegment y, MemorySegment b, int width) {
        if (b == null) return;
        for (int i = 0; i < n; i++) ops.add(width, y, (long) i * width, b, 0, y, (long) i * width);
    }

    /** y (n, rows) = x (n, cols) · Wᵀ. */
    private void matmul(Matrix m, MemorySegment in, int n, MemorySegment y) {
        qm.matmul(pool, m.type(), m.data(), m.offset(0), m.rows(), m.cols(), in, 0, m.cols(), n, y, 0, m.rows(), false);
    }

    @Override
    public void close() {
        cache.close();
        if (arena.scope().isAlive()) arena.close();
    }
}
