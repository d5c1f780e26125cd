package io.moe4j.infer;

import io.moe4j.gguf.GgufFile;
import io.moe4j.gguf.GgufValue;
import io.moe4j.gguf.GgufValueType;

/**
 * A model's hyper-parameters, read once from GGUF metadata ({@code {arch}.block_count}, ...) with llama.cpp's
 * defaults and checked for consistency; every error names the file and the key.
 *
 * @param arch           the architecture (decides defaults and which keys are read)
 * @param vocab          vocabulary size (rows of {@code token_embd})
 * @param dim            embedding width, {@code embedding_length}
 * @param layers         {@code block_count}
 * @param heads          query heads, {@code attention.head_count}
 * @param kvHeads        key/value heads, {@code attention.head_count_kv} (default: heads)
 * @param headDim        {@code attention.key_length} (default dim / heads); value heads have the same width
 * @param ropeBase       {@code rope.freq_base} (default 10000)
 * @param rope           whether RoPE is applied at all (Granite's {@code rope.scaling.finetuned} switch)
 * @param rmsEps         {@code attention.layer_norm_rms_epsilon}
 * @param contextLength  {@code context_length}: the training context, the default cache size
 * @param ff             dense FFN width, {@code feed_forward_length} (0 if absent in an all-MoE model)
 * @param experts        routed experts per MoE block, {@code expert_count} (0: dense blocks)
 * @param expertsUsed    experts per token, {@code expert_used_count}
 * @param expertFf       width of one routed expert
 * @param sharedFf       width of the shared expert (0: none)
 * @param renormTopK     top-k router weights renormalised to sum 1
 * @param embeddingScale embeddings multiplied by this (1 unless Granite)
 * @param residualScale  each branch output multiplied by this before its residual add (1 unless Granite)
 * @param attentionScale scale of q·k (1/√headDim unless Granite's {@code attention.scale})
 * @param logitScale     logits divided by this (1 unless Granite)
 * @param gating         router probabilities: softmax over all experts, or an independent sigmoid per expert
 * @param expertWeightsScale top-k weights multiplied by this after renormalisation (1: none)
 * @param expertGroups   experts are split into this many groups, only the best {@code groupsUsed} eligible (0: off)
 * @param groupsUsed     groups tokens choose from when grouped
 * @param denseLead      the first blocks use a dense FFN of width {@code ff} (DeepSeek)
 * @param mla            multi-head latent attention sizes, or null for ordinary attention; then {@code headDim}
 *                       is the cache row (latent + rotary part) and {@code kvHeads} 1
 * @param ropeScaling    context-extension of the RoPE angles ({@code rope.scaling.*}: none, linear or YaRN)
 */
public record HyperParams(Architecture arch, int vocab, int dim, int layers, int heads, int kvHeads, int headDim,
                          float ropeBase, boolean rope, float rmsEps, int contextLength, int ff, int experts,
                          int expertsUsed, int expertFf, int sharedFf, boolean renormTopK, float embeddingScale,
                          float residualScale, float attentionScale, float logitScale, Gating gating,
                          float expertWeightsScale, int expertGroups, int groupsUsed, int denseLead, Mla mla,
                          RopeScaling ropeScaling) {

    /** How router logits become probabilities (llama.cpp's {@code expert_gating_func}: 1 softmax, 2 sigmoid). */
    public enum Gating { SOFTMAX, SIGMOID }

    /**
     * Multi-head latent attention (DeepSeek-V2): Q through a low-rank bottleneck ({@code qLoraRank}, 0: a plain
     * projection), K and V from one compressed latent of {@code kvLoraRank} per position plus a shared rotary key
     * of {@code qkRope}; query heads of {@code qkNope + qkRope}, value heads of {@code vHeadDim}.
     */
    public record Mla(int qLoraRank, int kvLoraRank, int qkNope, int qkRope, int vHeadDim) {
        /** Width of one query head before absorption. */
        public int qHead() { return qkNope + qkRope; }
        /** Width of one cache row, and of one absorbed query head: latent + rotary part. */
        public int latentRow() { return kvLoraRank + qkRope; }
    }

    public boolean moe() { return experts > 0; }
    public boolean mlaAttention() { return mla != null; }
    public int qDim() { return heads * headDim; }
    public int kvDim() { return kvHeads * headDim; }

    /** Reads and validates the hyper-parameters of {@code g}. */
    public static HyperParams read(GgufFile g) {
        String file = g.name();
        Architecture arch = Architecture.of(g.architecture(), file);
        Keys k = new Keys(g, arch.ggufName() + ".");

        int dim = k.positive("embedding_length");
        int layers = k.positive("block_count");
        int heads = k.positive("attention.head_count");
        int kvHeads = k.optInt("attention.head_count_kv", heads);
        if (kvHeads < 1 || heads % kvHeads != 0) {
            throw k.bad("attention.head_count_kv", kvHeads + " must divide attention.head_count = " + heads);
        }
        if (dim % heads != 0 && !k.has("attention.key_length")) {
            throw k.bad("attention.head_count", heads + " does not divide embedding_length = " + dim + " and there is no attention.key_length");
        }
        int headDim = k.optInt("attention.key_length", dim / heads);
        int valueDim = k.optInt("attention.value_length", headDim);
        if (headDim < 2 || (headDim & 1) != 0) throw k.bad("attention.key_length", headDim + " must be even and >= 2");
        int rot = k.optInt("rope.dimension_count", headDim);
        Mla mla = null;
        if (arch.mla()) {
            mla = readMla(k, heads, kvHeads, headDim, valueDim, rot);
        } else {
            if (valueDim != headDim) {
                throw k.bad("attention.value_length", valueDim + " differs from attention.key_length " + headDim + " (not supported)");
            }
            // every architecture here asserts n_rot == head_dim in llama.cpp's graph (partial rotation is not used)
            if (rot != headDim) throw k.bad("rope.dimension_count", rot + ", expected the head width " + headDim);
        }
        float ropeBase = (float) k.optDouble("rope.freq_base", 10000.0);
        if (!(ropeBase > 0)) throw k.bad("rope.freq_base", ropeBase + " must be > 0");
        // llama.cpp's default scaling type is "linear" with factor 0, i.e. none
        String scaling = g.getString(k.prefix + "rope.scaling.type", "linear");
        RopeScaling.Type scalingType = switch (scaling) {
            case "none" -> RopeScaling.Type.NONE;
            case "linear" -> RopeScaling.Type.LINEAR;
            case "yarn" -> RopeScaling.Type.YARN;
            default -> throw k.bad("rope.scaling.type", "'" + scaling + "' is not supported (none, linear, yarn)");
        };
        double ropeFactor = k.has("rope.scaling.factor") ? k.optDouble("rope.scaling.factor", 0) : k.optDouble("rope.scale_linear", 0);
        if (ropeFactor < 0) throw k.bad("rope.scaling.factor", ropeFactor + " must be >= 0");
        float eps = (float) k.requiredDouble("attention.layer_norm_rms_epsilon");
        if (!(eps > 0)) throw k.bad("attention.layer_norm_rms_epsilon", eps + " must be > 0");
        int context = k.positive("context_length");

        int experts = k.optInt("expert_count", 0);
        int used = k.optInt("expert_used_count", 0);
        switch (arch.experts()) {
            case NONE -> {
                if (experts != 0) throw k.bad("expert_count", experts + ": " + arch + " has no experts");
            }
            case REQUIRED -> {
                if (experts < 1) throw k.missingOrBad("expert_count", "must be > 0 for " + arch);
            }
            case OPTIONAL -> { }
        }
        if (experts < 0) throw k.bad("expert_count", experts + " must be >= 0");
        if (experts > 0 && (used < 1 || used > experts)) {
            throw k.missingOrBad("expert_used_count", "must be in [1, expert_count = " + experts + "], got " + used);
        }
        if (experts == 0) used = 0;

        int ff = k.optInt("feed_forward_length", 0);
        if (experts == 0 && ff < 1) throw k.missingOrBad("feed_forward_length", "must be > 0 for dense blocks");
        int expertFf = 0, sharedFf = 0, denseLead = 0, groups = 0, groupsUsed = 0;
        Gating gating = Gating.SOFTMAX;
        float weightsScale = 1;
        boolean renorm = arch.renormTopK();
        if (arch.mla()) {
            // DeepSeek: routing details are metadata (llama.cpp's deepseek2 loader)
            expertFf = k.positive("expert_feed_forward_length");
            int shared = k.optInt("expert_shared_count", 0);
            if (shared < 0) throw k.bad("expert_shared_count", shared + " must be >= 0");
            sharedFf = expertFf * shared;
            denseLead = k.optInt("leading_dense_block_count", 0);
            if (denseLead < 0 || denseLead > layers) throw k.bad("leading_dense_block_count", denseLead + " must be in [0, block_count]");
            if (denseLead > 0 && ff < 1) throw k.missingOrBad("feed_forward_length", "must be > 0 for the leading dense blocks");
            GgufValue norm = g.get(k.prefix + "expert_weights_norm");
            if (norm != null) {
                if (norm.type() != GgufValueType.BOOL) throw k.bad("expert_weights_norm", "must be a BOOL, is a " + norm.type());
                renorm = norm.asBoolean();
            }
            float sc = (float) k.optDouble("expert_weights_scale", 0);
            if (sc != 0) weightsScale = sc;   // llama.cpp: 0 or 1 means no scaling
            int fn = k.optInt("expert_gating_func", 0);
            gating = switch (fn) {
                case 0, 1 -> Gating.SOFTMAX;   // 0: absent, older DeepSeek-V2 files mean softmax
                case 2 -> Gating.SIGMOID;
                default -> throw k.bad("expert_gating_func", fn + " is not supported (1 softmax, 2 sigmoid)");
            };
            groups = k.optInt("expert_group_count", 0);
            groupsUsed = k.optInt("expert_group_used_count", 0);
            if (groups > 1) {
                if (groups >= experts || experts % groups != 0) throw k.bad("expert_group_count", groups + " must divide expert_count = " + experts + " and be smaller");
                if (groupsUsed < 1 || groupsUsed >= groups) throw k.missingOrBad("expert_group_used_count", "must be in [1, expert_group_count)");
            } else {
                groups = 0;
                groupsUsed = 0;
            }
        } else if (experts > 0) {
            boolean qwen = arch == Architecture.QWEN2MOE || arch == Architecture.QWEN3MOE;
            // llama.cpp: Qwen MoE reads expert_feed_forward_length (default n_ff / n_expert_used); the others size
            // their experts with feed_forward_length
            expertFf = qwen ? k.optInt("expert_feed_forward_length", used > 0 ? ff / used : 0) : ff;
            if (expertFf < 1) throw k.missingOrBad(qwen ? "expert_feed_forward_length" : "feed_forward_length", "must be > 0");
            if (arch.sharedExpertGated()) sharedFf = k.optInt("expert_shared_feed_forward_length", ff);
            else if (arch.graniteScales()) sharedFf = k.optInt("expert_shared_feed_forward_length", 0);
            if (arch.sharedExpertGated() && sharedFf < 1) throw k.missingOrBad("expert_shared_feed_forward_length", "must be > 0");
        }

        float embScale = 1, resScale = 1, logitScale = 1;
        float attScale = (float) (1.0 / Math.sqrt(mla != null ? mla.qHead() : headDim));
        int origContext = k.optInt("rope.scaling.original_context_length", context);
        // DeepSeek-V2 stores 0.1 · mscale_all_dim; llama.cpp's deepseek2 loader divides the 0.1 back out
        float logMul = arch.mla() ? (float) k.optDouble("rope.scaling.yarn_log_multiplier", 0) / 0.1f : 0f;
        RopeScaling ropeScaling = RopeScaling.of(scalingType, (float) ropeFactor, origContext,
                (float) k.optDouble("rope.scaling.attn_factor", 1), logMul, arch.mla(), rot, ropeBase);
        if (mla != null) {
            // llama.cpp pre-scales q·k by YaRN's magnitude squared for DeepSeek (its discussion 7416 / PR 17945)
            float f = 1f / ropeScaling.freqScale();
            float org = ropeScaling.attnFactor() * (1f + 0.1f * (float) Math.log(f));
            float m = org * (1f + 0.1f * logMul * (float) Math.log(f));
            attScale = m * m / (float) Math.sqrt(mla.qHead());
        }
        boolean rope = true;
        if (arch.graniteScales()) {
            float e = (float) k.optDouble("embedding_scale", 0), r = (float) k.optDouble("residual_scale", 0);
            float a = (float) k.optDouble("attention.scale", 0);
            // llama.cpp applies a scale only when it is non-zero
            if (e != 0) embScale = e;
            if (r != 0) resScale = r;
            if (a != 0) attScale = a;
            logitScale = (float) k.requiredDouble("logit_scale");
            if (logitScale == 0) throw k.bad("logit_scale", "must not be 0");
            // Granite switches RoPE off with rope.scaling.finetuned = false. llama.cpp's granite loader defaults the
            // key to true; its granitemoe loader (at the peer's commit) to false, i.e. no RoPE — the model needs
            // RoPE, so moe4j defaults to true for both and test files state the key explicitly.
            GgufValue f = g.get(k.prefix + "rope.scaling.finetuned");
            if (f != null) {
                if (f.type() != GgufValueType.BOOL) throw k.bad("rope.scaling.finetuned", "must be a BOOL, is " + f.type());
                rope = f.asBoolean();
            }
        }

        int vocab = vocabSize(g, file);
        return new HyperParams(arch, vocab, dim, layers, heads, kvHeads, headDim, ropeBase, rope, eps, context, ff,
                experts, used, expertFf, sharedFf, renorm, embScale, resScale, attScale, logitScale, gating,
                weightsScale, groups, groupsUsed, denseLead, mla, ropeScaling);
    }

    /**
     * DeepSeek-V2 attention sizes. Only llama.cpp's absorbed layout is supported: {@code attention.key_length_mla}
     * / {@code value_length_mla} present, {@code key_length} = kv_lora_rank + rope dims, {@code value_length} =
     * kv_lora_rank, one KV head.
     */
    private static Mla readMla(Keys k, int heads, int kvHeads, int keyLength, int valueLength, int rot) {
        int qLora = k.optInt("attention.q_lora_rank", 0);
        int kvLora = k.positive("attention.kv_lora_rank");
        if (!k.has("attention.key_length_mla") || !k.has("attention.value_length_mla")) {
            throw k.missingOrBad("attention.key_length_mla", "this file has the old un-absorbed MLA layout (attn_kv_b); "
                    + "re-convert it with a current llama.cpp");
        }
        int kMla = k.positive("attention.key_length_mla"), vMla = k.positive("attention.value_length_mla");
        if (qLora < 0) throw k.bad("attention.q_lora_rank", qLora + " must be >= 0");
        if (rot < 2 || (rot & 1) != 0 || rot >= kMla) {
            throw k.bad("rope.dimension_count", rot + " must be even and smaller than attention.key_length_mla " + kMla);
        }
        if (kvHeads != 1) throw k.bad("attention.head_count_kv", kvHeads + ", expected 1 (one latent per position)");
        if (keyLength != kvLora + rot) throw k.bad("attention.key_length", keyLength + ", expected kv_lora_rank + rope dims = " + (kvLora + rot));
        if (valueLength != kvLora) throw k.bad("attention.value_length", valueLength + ", expected kv_lora_rank = " + kvLora);
        return new Mla(qLora, kvLora, kMla - rot, rot, vMla);
    }

    private static int vocabSize(GgufFile g, String file) {
        if (!g.hasTensor("token_embd.weight")) throw new ModelFormatException(file + ": missing tensor 'token_embd.weight'");
        long[] ne = g.tensorInfo("token_embd.weight").ne();
        if (ne.length != 2 || ne[1] < 1 || ne[1] > Integer.MAX_VALUE) {
            throw new ModelFormatException(file + ": tensor 'token_embd.weight' must be 2-D {n_embd, n_vocab}, has dims "
                    + java.util.Arrays.toString(ne));
        }
        return (int) ne[1];
    }

    /** Typed metadata access with errors that name the file and the key. */
    private record Keys(GgufFile g, String prefix) {
        boolean has(String key) { return g.get(prefix + key) != null; }

        GgufValue value(String key) {
            GgufValue v = g.get(prefix + key);
            if (v != null && v.type() == GgufValueType.ARRAY) {
                throw bad(key, "is a per-layer array; per-layer values are not supported yet");
            }
            return v;
        }

        int positive(String key) {
            GgufValue v = value(key);
            if (v == null) throw missing(key);
            int i = toInt(key, v);
            if (i < 1) throw bad(key, i + " must be > 0");
            return i;
        }

        int optInt(String key, int fallback) {
            GgufValue v = value(key);
            return v == null ? fallback : toInt(key, v);
        }

        double requiredDouble(String key) {
            GgufValue v = value(key);
            if (v == null) throw missing(key);
            return toDouble(key, v);
        }

        double optDouble(String key, double fallback) {
            GgufValue v = value(key);
            return v == null ? fallback : toDouble(key, v);
        }

        private int toInt(String key, GgufValue v) {
            if (!v.type().isInteger()) throw bad(key, "must be an integer, is a " + v.type());
            long l = v.asLong();
            if (l < Integer.MIN_VALUE || l > Integer.MAX_VALUE) throw bad(key, l + " is out of range");
            return (int) l;
        }

        private double toDouble(String key, GgufValue v) {
            if (!v.type().isInteger() && v.type() != GgufValueType.FLOAT32 && v.type() != GgufValueType.FLOAT64) {
                throw bad(key, "must be a number, is a " + v.type());
            }
            double d = v.asDouble();
            if (!Double.isFinite(d)) throw bad(key, d + " is not finite");
            return d;
        }

        ModelFormatException missing(String key) {
            return new ModelFormatException(g.name() + ": missing metadata key '" + prefix + key + "'");
        }

        ModelFormatException bad(String key, String why) {
            return new ModelFormatException(g.name() + ": metadata '" + prefix + key + "' " + why);
        }

        ModelFormatException missingOrBad(String key, String why) {
            return has(key) ? bad(key, why) : new ModelFormatException(g.name() + ": missing metadata key '" + prefix + key + "' (" + why + ")");
        }
    }
}
