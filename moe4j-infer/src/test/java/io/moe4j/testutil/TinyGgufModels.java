package io.moe4j.testutil;

import io.moe4j.gguf.GgmlType;
import io.moe4j.gguf.GgufArray;
import io.moe4j.gguf.GgufValue;
import io.moe4j.gguf.GgufWriter;
import io.moe4j.tensor.DType;
import io.moe4j.tensor.quant.Quant;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Tiny random-weight models in llama.cpp's {@code llama} architecture (dense, or Mixtral-style with experts), kept
 * in memory as plain float arrays and written as F32 GGUF files that llama.cpp loads. A differential test builds a
 * model here, gets llama.cpp's logits for it through {@link LlamaPeer}, and runs its own forward pass over
 * {@link Model#weights()} to compare.
 *
 * <p>Conventions confirmed against llama.cpp ({@code src/llama-model.cpp}, {@code llama-arch.cpp}) and by loading:
 * every {@link Weight} holds moe4j's row-major shape, slowest dimension first, so a projection is
 * {@code (out, in)} and {@code y = W x}; GGUF stores the reversed list ({@link Weight#ne()}, fastest first), which
 * is what llama.cpp's {@code create_tensor} shapes spell: {@code token_embd} {n_embd, n_vocab}, {@code attn_q}
 * {n_embd, n_head·head_dim}, {@code attn_k}/{@code attn_v} {n_embd, n_head_kv·head_dim}, {@code attn_output}
 * {n_head·head_dim, n_embd}, {@code ffn_gate}/{@code ffn_up} {n_embd, n_ff}, {@code ffn_down} {n_ff, n_embd},
 * {@code output} {n_embd, n_vocab}; with experts {@code ffn_gate_inp} {n_embd, n_expert} and the experts stacked
 * outermost: {@code ffn_gate_exps}/{@code ffn_up_exps} {n_embd, n_ff, n_expert}, {@code ffn_down_exps}
 * {n_ff, n_embd, n_expert}.
 *
 * <p>What llama.cpp computes for these files (the reference a moe4j forward pass must match): pre-norm blocks with
 * RMSNorm ({@code x / sqrt(mean(x²) + eps) · w}); RoPE on adjacent pairs (2i, 2i+1) with
 * {@code theta_i = base^(-2i/head_dim)}, position 0 for the first token; grouped-query attention, query head h
 * reading KV head {@code h / (n_head / n_head_kv)}, scale {@code 1/sqrt(head_dim)}, causal; SwiGLU
 * {@code down(silu(gate·x) ⊙ up·x)}; experts: softmax over all router logits, top-k, the k weights renormalised
 * to sum 1; final RMSNorm and {@code output}.
 *
 * <p>The tokenizer only has to load (tests pass ids, never text): a GPT-2 byte-level BPE vocabulary with no merges,
 * three control tokens, the newline byte {@code Ċ} and {@code Ġt<i>} pieces — 64 tokens in all. A SentencePiece
 * ({@code llama}) vocabulary of that size loads but then aborts the process ({@code std::out_of_range}) once
 * node-llama-cpp tokenizes text: its byte fallback looks up {@code <0xXX>} tokens with {@code map::at}, so it would
 * need all 256 of them, while BPE skips unknown bytes. BPE needs {@code tokenizer.ggml.merges} present (empty is
fine) and a token for {@code "\n"} (llama.cpp asserts its linefeed token exists).
 *
 * <p>Other architectures ({@link Config#arch()}): {@code qwen2} adds q/k/v biases, {@code qwen2moe} those plus a
 * gated shared expert, {@code qwen3moe} per-head Q/K norms, {@code olmoe} full-width Q/K norms, {@code granitemoe}
 * Granite's four scales in the metadata. {@link Model#write(Path, DType)} writes the matrices quantized.
 *
 * <p>Non-goals: realistic weight statistics.
 */
public final class TinyGgufModels {
    public static final String ARCH = "llama";
    public static final int PAD = 0, BOS = 1, EOS = 2, NEWLINE = 3;
    /** DeepSeek-V2 sizes of {@link Config#deepseek2}: q and kv LoRA ranks, no-RoPE / RoPE query dims, value head. */
    public static final int MLA_Q_LORA = 64, MLA_KV_LORA = 64, MLA_NOPE = 32, MLA_ROPE = 16, MLA_V_HEAD = 32;
    public static final int DEEPSEEK_DENSE_FF = 64;

    private TinyGgufModels() {}

    /**
     * Hyperparameters. {@code experts == 0} means dense FFN blocks; {@code ff} is the per-expert width otherwise.
     * llama.cpp requires {@code dim % heads == 0}, {@code heads % kvHeads == 0} and (for {@code llama})
     * {@code rope.dimension_count == head_dim}, which {@link #write} derives.
     */
    public record Config(String arch, int vocab, int dim, int layers, int heads, int kvHeads, int ff, int experts,
                         int expertsUsed, int sharedFf, int contextLength, float ropeBase, float rmsEps, long seed) {
        public Config {
            if (dim % heads != 0 || heads % kvHeads != 0) {
                throw new IllegalArgumentException("need dim % heads == 0 and heads % kvHeads == 0");
            }
            if ((experts == 0) != (expertsUsed == 0) || expertsUsed > experts) {
                throw new IllegalArgumentException("need 0 < expertsUsed <= experts, or both 0");
            }
            if (vocab <= NEWLINE) throw new IllegalArgumentException("vocab must hold <pad>, <s>, </s>, the newline and more");
        }

        /** The original 12-argument form: architecture {@code llama}, no shared expert. */
        public Config(int vocab, int dim, int layers, int heads, int kvHeads, int ff, int experts, int expertsUsed,
                      int contextLength, float ropeBase, float rmsEps, long seed) {
            this(ARCH, vocab, dim, layers, heads, kvHeads, ff, experts, expertsUsed, 0, contextLength, ropeBase, rmsEps, seed);
        }

        public int headDim() { return dim / heads; }
        public boolean moe() { return experts > 0; }

        /** 2 layers, d 64, 4 query / 2 KV heads of 16, FFN 128, vocab 64: loads and runs in llama.cpp in well under a second. */
        public static Config dense(long seed) {
            return new Config(64, 64, 2, 4, 2, 128, 0, 0, 128, 10000f, 1e-5f, seed);
        }

        /** {@link #dense} with 4 experts of width 32, top-2 (Mixtral-style). */
        public static Config mixtral(long seed) {
            return new Config(64, 64, 2, 4, 2, 32, 4, 2, 128, 10000f, 1e-5f, seed);
        }

        /** Dense {@code qwen2}: q/k/v biases, NEOX RoPE. */
        public static Config qwen2(long seed) { return dense(seed).withArch("qwen2"); }

        /** {@code qwen2moe}: 4 experts of 32 top-2 without renormalisation, plus a gated shared expert of 64. */
        public static Config qwen2moe(long seed) { return mixtral(seed).withArch("qwen2moe").withSharedFf(64); }

        /** {@code qwen3moe}: per-head Q/K RMS norms, 4 experts top-2, renormalised. */
        public static Config qwen3moe(long seed) { return mixtral(seed).withArch("qwen3moe"); }

        /** {@code olmoe}: full-width Q/K norms (llama.cpp needs as many KV heads as query heads), 4 experts top-2. */
        public static Config olmoe(long seed) { return mixtral(seed).withArch("olmoe").withKvHeads(4); }

        /**
         * {@code deepseek2}: multi-head latent attention (absorbed layout, sizes {@link #MLA_Q_LORA} ...), a leading
         * dense block of {@link #DEEPSEEK_DENSE_FF}, then 8 experts of 32 top-2, sigmoid gating with a selection
         * bias, 4 groups of which 2 are eligible, renormalised weights scaled by 2.5, one shared expert.
         */
        public static Config deepseek2(long seed) {
            return new Config("deepseek2", 64, 64, 2, 4, 4, 32, 8, 2, 32, 128, 10000f, 1e-5f, seed);
        }

        /** Dense {@code qwen3}: per-head Q/K RMS norms, NEOX RoPE. */
        public static Config qwen3(long seed) { return dense(seed).withArch("qwen3"); }

        /** Dense {@code granite}: llama blocks plus Granite's four scales. */
        public static Config granite(long seed) { return dense(seed).withArch("granite"); }

        /** {@code granitemoe}: Mixtral routing plus embedding, residual, attention and logit scales. */
        public static Config granitemoe(long seed) { return mixtral(seed).withArch("granitemoe"); }

        public Config withArch(String a) {
            return new Config(a, vocab, dim, layers, heads, kvHeads, ff, experts, expertsUsed, sharedFf, contextLength, ropeBase, rmsEps, seed);
        }

        public Config withSharedFf(int f) {
            return new Config(arch, vocab, dim, layers, heads, kvHeads, ff, experts, expertsUsed, f, contextLength, ropeBase, rmsEps, seed);
        }

        public Config withKvHeads(int n) {
            return new Config(arch, vocab, dim, layers, heads, n, ff, experts, expertsUsed, sharedFf, contextLength, ropeBase, rmsEps, seed);
        }

        /** Widths multiplied by {@code m} (K-quants need rows of 256: {@code widened(4)} of the 64-wide models). */
        public Config widened(int m) {
            return new Config(arch, vocab, dim * m, layers, heads, kvHeads, ff * m, experts, expertsUsed, sharedFf * m,
                    contextLength, ropeBase, rmsEps, seed);
        }
    }

    /** A weight in moe4j's row-major {@code shape} (slowest first) with its values. */
    public record Weight(String name, long[] shape, float[] data) {
        /** GGUF dimensions, fastest first: the shape reversed. */
        public long[] ne() {
            long[] ne = new long[shape.length];
            for (int i = 0; i < shape.length; i++) ne[i] = shape[shape.length - 1 - i];
            return ne;
        }
    }

    /** A model: its configuration, token strings (index = id) and weights by GGUF tensor name, in file order. */
    public record Model(Config config, List<String> tokens, Map<String, Weight> weights, Map<String, GgufValue> extraMetadata) {
        public Model(Config config, List<String> tokens, Map<String, Weight> weights) {
            this(config, tokens, weights, Map.of());
        }

        /** This model with one more metadata entry (e.g. {@code llama.rope.scaling.type}), written after the others. */
        public Model with(String key, GgufValue value) {
            Map<String, GgufValue> m = new LinkedHashMap<>(extraMetadata);
            m.put(key, value);
            return new Model(config, tokens, weights, Collections.unmodifiableMap(m));
        }

        public Weight weight(String name) {
            Weight w = weights.get(name);
            if (w == null) throw new IllegalArgumentException("no tensor " + name);
            return w;
        }

        /** This model with one more tensor (e.g. llama3's {@code rope_freqs.weight}), written after the others. */
        public Model with(Weight extra) {
            Map<String, Weight> w = new LinkedHashMap<>(weights);
            w.put(extra.name(), extra);
            return new Model(config, tokens, Collections.unmodifiableMap(w), extraMetadata);
        }

        /** Writes the model as an F32 GGUF v3 file. */
        public void write(Path file) throws IOException {
            TinyGgufModels.write(this, file, DType.F32);
        }

        /**
         * Writes the model with its matrices in {@code type} (the quant codecs of moe4j-core, bit-exact with ggml's
         * reference quantizers), as {@code llama-quantize} would: 1-D tensors (norm gains, biases, the shared
         * expert's gate) and the router {@code ffn_gate_inp} stay F32.
         */
        public void write(Path file, DType type) throws IOException {
            TinyGgufModels.write(this, file, type);
        }
    }

    /** Random weights for {@code c} (any of the architectures of {@link Config}), reproducible from {@code c.seed()}. */
    public static Model llama(Config c) {
        Random r = new Random(c.seed());
        Map<String, Weight> w = new LinkedHashMap<>();
        int q = c.heads() * c.headDim(), kv = c.kvHeads() * c.headDim();
        // Unit-scale embeddings and 1/sqrt(fan_in) projections keep activations O(1) through the blocks, so the
        // logits spread over a few units: differences between engines show, softmax does not saturate.
        gaussian(w, r, "token_embd.weight", 1f, c.vocab(), c.dim());
        for (int l = 0; l < c.layers(); l++) {
            String b = "blk." + l + ".";
            norm(w, r, b + "attn_norm.weight", c.dim());
            if (c.arch().equals("deepseek2")) {
                deepseekBlock(w, r, c, l);
                continue;
            }
            linear(w, r, b + "attn_q.weight", q, c.dim());
            linear(w, r, b + "attn_k.weight", kv, c.dim());
            linear(w, r, b + "attn_v.weight", kv, c.dim());
            linear(w, r, b + "attn_output.weight", c.dim(), q);
            if (c.arch().startsWith("qwen2")) {
                gaussian(w, r, b + "attn_q.bias", 0.2f, q);
                gaussian(w, r, b + "attn_k.bias", 0.2f, kv);
                gaussian(w, r, b + "attn_v.bias", 0.2f, kv);
            }
            if (c.arch().startsWith("qwen3")) {
                norm(w, r, b + "attn_q_norm.weight", c.headDim());
                norm(w, r, b + "attn_k_norm.weight", c.headDim());
            }
            if (c.arch().equals("olmoe")) {
                norm(w, r, b + "attn_q_norm.weight", q);
                norm(w, r, b + "attn_k_norm.weight", kv);
            }
            norm(w, r, b + "ffn_norm.weight", c.dim());
            if (c.moe()) {
                linear(w, r, b + "ffn_gate_inp.weight", c.experts(), c.dim());
                gaussian(w, r, b + "ffn_gate_exps.weight", scale(c.dim()), c.experts(), c.ff(), c.dim());
                gaussian(w, r, b + "ffn_down_exps.weight", scale(c.ff()), c.experts(), c.dim(), c.ff());
                gaussian(w, r, b + "ffn_up_exps.weight", scale(c.dim()), c.experts(), c.ff(), c.dim());
                if (c.sharedFf() > 0) {
                    if (c.arch().equals("qwen2moe")) gaussian(w, r, b + "ffn_gate_inp_shexp.weight", scale(c.dim()), c.dim());
                    linear(w, r, b + "ffn_gate_shexp.weight", c.sharedFf(), c.dim());
                    linear(w, r, b + "ffn_down_shexp.weight", c.dim(), c.sharedFf());
                    linear(w, r, b + "ffn_up_shexp.weight", c.sharedFf(), c.dim());
                }
            } else {
                linear(w, r, b + "ffn_gate.weight", c.ff(), c.dim());
                linear(w, r, b + "ffn_down.weight", c.dim(), c.ff());
                linear(w, r, b + "ffn_up.weight", c.ff(), c.dim());
            }
        }
        norm(w, r, "output_norm.weight", c.dim());
        linear(w, r, "output.weight", c.vocab(), c.dim());

        List<String> tokens = new ArrayList<>(List.of("<pad>", "<s>", "</s>", "\u010a"));   // Ċ: GPT-2's byte-level "\n"
        for (int i = tokens.size(); i < c.vocab(); i++) tokens.add("\u0120t" + i);   // Ġ: GPT-2's byte-level space
        return new Model(c, Collections.unmodifiableList(tokens), Collections.unmodifiableMap(w));
    }

    private static void write(Model m, Path file, DType type) throws IOException {
        Config c = m.config();
        String a = c.arch() + ".";
        GgufWriter g = new GgufWriter()
                .putString("general.architecture", c.arch())
                .putString("general.name", "moe4j-tiny-" + c.arch() + (c.moe() ? "-moe" : "") + "-" + c.seed())
                .putU32(a + "context_length", c.contextLength())
                .putU32(a + "embedding_length", c.dim())
                .putU32(a + "block_count", c.layers())
                .putU32(a + "attention.head_count", c.heads())
                .putF32(a + "rope.freq_base", c.ropeBase())
                .putF32(a + "attention.layer_norm_rms_epsilon", c.rmsEps());
        if (!c.arch().equals("deepseek2")) {
            g.putU32(a + "feed_forward_length", c.ff()).putU32(a + "attention.head_count_kv", c.kvHeads())
                    .putU32(a + "rope.dimension_count", c.headDim());
        }
        if (c.moe()) g.putU32(a + "expert_count", c.experts()).putU32(a + "expert_used_count", c.expertsUsed());
        if (c.moe() && c.arch().startsWith("qwen")) g.putU32(a + "expert_feed_forward_length", c.ff());
        if (c.sharedFf() > 0 && !c.arch().equals("deepseek2")) g.putU32(a + "expert_shared_feed_forward_length", c.sharedFf());
        if (c.arch().equals("deepseek2")) {
            // absorbed MLA as llama.cpp's converter writes it: one KV head whose key is [latent, rope]
            g.putU32(a + "feed_forward_length", DEEPSEEK_DENSE_FF).putU32(a + "attention.head_count_kv", 1)
                    .putU32(a + "rope.dimension_count", MLA_ROPE)
                    .putU32(a + "attention.key_length", MLA_KV_LORA + MLA_ROPE).putU32(a + "attention.value_length", MLA_KV_LORA)
                    .putU32(a + "attention.key_length_mla", MLA_NOPE + MLA_ROPE).putU32(a + "attention.value_length_mla", MLA_V_HEAD)
                    .putU32(a + "attention.q_lora_rank", MLA_Q_LORA).putU32(a + "attention.kv_lora_rank", MLA_KV_LORA)
                    .putU32(a + "expert_feed_forward_length", c.ff()).putU32(a + "expert_shared_count", c.sharedFf() / c.ff())
                    .putU32(a + "leading_dense_block_count", 1).putF32(a + "expert_weights_scale", 2.5f)
                    .putBool(a + "expert_weights_norm", true).putU32(a + "expert_gating_func", 2)
                    .putU32(a + "expert_group_count", 4).putU32(a + "expert_group_used_count", 2);
        }
        if (c.arch().startsWith("granite")) {
            // values of granite-3.0-1b-a400m's config; rope.scaling.finetuned stated because llama.cpp's granitemoe
            // loader defaults it to false (= no RoPE), moe4j to true
            g.putF32(a + "embedding_scale", 12f).putF32(a + "residual_scale", 0.22f)
                    .putF32(a + "attention.scale", 0.015625f * 4).putF32(a + "logit_scale", 6f)
                    .putBool(a + "rope.scaling.finetuned", true);
        }

        int n = m.tokens().size();
        int[] types = new int[n];
        for (int i = 0; i < n; i++) types[i] = i <= EOS ? 3 : 1;   // llama_token_type: 1 normal, 3 control
        g.putString("tokenizer.ggml.model", "gpt2")
                .putString("tokenizer.ggml.pre", "default")   // absent, llama.cpp warns and uses the same
                .putArray("tokenizer.ggml.tokens", GgufArray.ofStrings(m.tokens()))
                .putArray("tokenizer.ggml.token_type", GgufArray.ofInts(types))
                .putArray("tokenizer.ggml.merges", GgufArray.ofStrings())
                .putU32("tokenizer.ggml.bos_token_id", BOS)
                .putU32("tokenizer.ggml.eos_token_id", EOS)
                .putU32("tokenizer.ggml.padding_token_id", PAD);

        m.extraMetadata().forEach(g::put);
        try (Arena arena = Arena.ofConfined()) {
            for (Weight w : m.weights().values()) {
                DType t = w.shape().length >= 2 && !w.name().contains("ffn_gate_inp") ? type : DType.F32;
                MemorySegment seg = arena.allocate(t.byteSize(w.data().length), 64);
                Quant.quantize(t, w.data(), 0, seg, 0, w.data().length);
                g.addTensor(w.name(), GgmlType.of(t), w.ne(), seg);
            }
            g.write(file);   // tensor bytes are read here, while the arena is still open
        }
    }

    /** A DeepSeek-V2 block after its attn_norm: absorbed MLA; block 0 dense, the others MoE with a shared expert. */
    private static void deepseekBlock(Map<String, Weight> w, Random r, Config c, int l) {
        String b = "blk." + l + ".";
        int d = c.dim(), h = c.heads();
        linear(w, r, b + "attn_q_a.weight", MLA_Q_LORA, d);
        norm(w, r, b + "attn_q_a_norm.weight", MLA_Q_LORA);
        linear(w, r, b + "attn_q_b.weight", h * (MLA_NOPE + MLA_ROPE), MLA_Q_LORA);
        linear(w, r, b + "attn_kv_a_mqa.weight", MLA_KV_LORA + MLA_ROPE, d);
        norm(w, r, b + "attn_kv_a_norm.weight", MLA_KV_LORA);
        gaussian(w, r, b + "attn_k_b.weight", scale(MLA_NOPE), h, MLA_KV_LORA, MLA_NOPE);
        gaussian(w, r, b + "attn_v_b.weight", scale(MLA_KV_LORA), h, MLA_V_HEAD, MLA_KV_LORA);
        linear(w, r, b + "attn_output.weight", d, h * MLA_V_HEAD);
        norm(w, r, b + "ffn_norm.weight", d);
        if (l == 0) {
            linear(w, r, b + "ffn_gate.weight", DEEPSEEK_DENSE_FF, d);
            linear(w, r, b + "ffn_down.weight", d, DEEPSEEK_DENSE_FF);
            linear(w, r, b + "ffn_up.weight", DEEPSEEK_DENSE_FF, d);
            return;
        }
        linear(w, r, b + "ffn_gate_inp.weight", c.experts(), d);
        gaussian(w, r, b + "exp_probs_b.bias", 0.1f, c.experts());
        gaussian(w, r, b + "ffn_gate_exps.weight", scale(d), c.experts(), c.ff(), d);
        gaussian(w, r, b + "ffn_down_exps.weight", scale(c.ff()), c.experts(), d, c.ff());
        gaussian(w, r, b + "ffn_up_exps.weight", scale(d), c.experts(), c.ff(), d);
        linear(w, r, b + "ffn_gate_shexp.weight", c.sharedFf(), d);
        linear(w, r, b + "ffn_down_shexp.weight", d, c.sharedFf());
        linear(w, r, b + "ffn_up_shexp.weight", c.sharedFf(), d);
    }

    private static float scale(int fanIn) { return (float) (1 / Math.sqrt(fanIn)); }

    private static void linear(Map<String, Weight> w, Random r, String name, int out, int in) {
        gaussian(w, r, name, scale(in), out, in);
    }

    /** RMSNorm gains near 1, not exactly 1, so a forward pass that skips or misplaces a gain is caught. */
    private static void norm(Map<String, Weight> w, Random r, String name, int dim) {
        float[] v = new float[dim];
        for (int i = 0; i < dim; i++) v[i] = 1f + 0.1f * (float) r.nextGaussian();
        w.put(name, new Weight(name, new long[]{dim}, v));
    }

    private static void gaussian(Map<String, Weight> w, Random r, String name, float std, long... shape) {
        long numel = 1;
        for (long d : shape) numel *= d;
        float[] v = new float[Math.toIntExact(numel)];
        for (int i = 0; i < v.length; i++) v[i] = std * (float) r.nextGaussian();
        w.put(name, new Weight(name, shape.clone(), v));
    }
}
