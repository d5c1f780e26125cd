package io.moe4j.train.export;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moe4j.moe.MoeConfig;
import io.moe4j.safetensors.SafetensorsWriter;
import io.moe4j.train.model.CausalLm;
import io.moe4j.train.model.ModelConfig;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * Writes a trained model as a Hugging Face checkpoint directory: {@code model.safetensors} (F32) and
 * {@code config.json} in the schema of its {@link ExportFamily} (Llama, Mixtral, Qwen3, Qwen3-MoE, Qwen2-MoE), so
 * that {@code AutoModelForCausalLM.from_pretrained(dir)} loads it.
 *
 * <p>HF's attention rotates NEOX pairs (rotate_half), moe4j adjacent pairs: q/k projection rows (and the q/k norm
 * gains) are permuted per head as in {@link ParamIndex#neoxRows}; everything else is copied as is. Stacked experts
 * (E, f, d) are split into per-expert matrices (views, no copy). Qwen2-MoE gets zero q/k/v biases (its attention
 * always has them). Each file is written atomically; the directory is created if needed.
 */
public final class HfExport {
    private HfExport() {}

    public static void write(CausalLm model, Path dir, int bosId, int eosId) throws IOException {
        ModelConfig c = model.config();
        ExportFamily.Match match = ExportFamily.of(c);
        if (!match.ok()) {
            throw new IllegalArgumentException("this model has no Hugging Face schema: " + String.join("; ", match.reasons())
                    + ". Save it in moe4j's own format instead.");
        }
        ExportFamily f = match.family();
        MoeConfig m = c.moe() == null || c.denseLayers() >= c.layers() ? null : c.moe();
        int d = c.dModel(), hd = c.headDim(), q = c.heads() * hd, kv = c.kvHeads() * hd;
        Files.createDirectories(dir);
        SafetensorsWriter w = new SafetensorsWriter().metadata("format", "pt");
        try (ParamIndex p = new ParamIndex(model)) {
            add(w, "model.embed_tokens.weight", p.data("tok_embd"), c.vocabSize(), d);
            for (int i = 0; i < c.layers(); i++) {
                String h = "model.layers." + i + ".", s = "layers." + i + ".";
                add(w, h + "input_layernorm.weight", p.data(s + "attn_norm"), d);
                add(w, h + "self_attn.q_proj.weight", p.neoxRows(s + "attn.wq", c.heads(), hd, d), q, d);
                add(w, h + "self_attn.k_proj.weight", p.neoxRows(s + "attn.wk", c.kvHeads(), hd, d), kv, d);
                add(w, h + "self_attn.v_proj.weight", p.data(s + "attn.wv"), kv, d);
                add(w, h + "self_attn.o_proj.weight", p.data(s + "attn.wo"), d, q);
                if (f == ExportFamily.QWEN2_MOE) {
                    add(w, h + "self_attn.q_proj.bias", p.zeros(q), q);
                    add(w, h + "self_attn.k_proj.bias", p.zeros(kv), kv);
                    add(w, h + "self_attn.v_proj.bias", p.zeros(kv), kv);
                }
                if (c.qkNorm()) {
                    add(w, h + "self_attn.q_norm.weight", p.neoxRows(s + "attn.q_norm", 1, hd, 1), hd);
                    add(w, h + "self_attn.k_norm.weight", p.neoxRows(s + "attn.k_norm", 1, hd, 1), hd);
                }
                add(w, h + "post_attention_layernorm.weight", p.data(s + "ffn_norm"), d);
                if (m == null) {
                    int hid = c.denseHidden();
                    add(w, h + "mlp.gate_proj.weight", p.data(s + "ffn.gate"), hid, d);
                    add(w, h + "mlp.up_proj.weight", p.data(s + "ffn.up"), hid, d);
                    add(w, h + "mlp.down_proj.weight", p.data(s + "ffn.down"), d, hid);
                    continue;
                }
                int e = m.numExperts(), ff = m.expertHidden();
                String x = s + "moe.";
                boolean mixtral = f == ExportFamily.MIXTRAL;
                String moe = h + (mixtral ? "block_sparse_moe." : "mlp.");
                add(w, moe + "gate.weight", p.data(x + "router.weight"), e, d);
                MemorySegment gate = p.data(x + "experts.gate"), up = p.data(x + "experts.up"), down = p.data(x + "experts.down");
                long mat = (long) ff * d * 4;
                for (int j = 0; j < e; j++) {
                    String ex = moe + "experts." + j + ".";
                    add(w, ex + (mixtral ? "w1" : "gate_proj") + ".weight", gate.asSlice(j * mat, mat), ff, d);
                    add(w, ex + (mixtral ? "w3" : "up_proj") + ".weight", up.asSlice(j * mat, mat), ff, d);
                    add(w, ex + (mixtral ? "w2" : "down_proj") + ".weight", down.asSlice(j * mat, mat), d, ff);
                }
                if (m.sharedExperts() > 0) {
                    int sw = m.sharedWidth();
                    add(w, moe + "shared_expert.gate_proj.weight", p.data(x + "shared.gate"), sw, d);
                    add(w, moe + "shared_expert.up_proj.weight", p.data(x + "shared.up"), sw, d);
                    add(w, moe + "shared_expert.down_proj.weight", p.data(x + "shared.down"), d, sw);
                    add(w, moe + "shared_expert_gate.weight", p.data(x + "shared_gate"), 1, d);
                }
            }
            add(w, "model.norm.weight", p.data("output_norm"), d);
            if (!c.tiedEmbeddings()) add(w, "lm_head.weight", p.data("output"), c.vocabSize(), d);
            w.write(dir.resolve("model.safetensors"));
        }
        writeAtomically(dir.resolve("config.json"), config(c, f, m, bosId, eosId));
    }

    static String config(ModelConfig c, ExportFamily f, MoeConfig m, int bos, int eos) throws IOException {
        ObjectMapper om = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        ObjectNode j = om.createObjectNode();
        String arch = switch (f) {
            case LLAMA -> "LlamaForCausalLM";
            case MIXTRAL -> "MixtralForCausalLM";
            case QWEN3 -> "Qwen3ForCausalLM";
            case QWEN3_MOE -> "Qwen3MoeForCausalLM";
            case QWEN2_MOE -> "Qwen2MoeForCausalLM";
        };
        j.putArray("architectures").add(arch);
        j.put("model_type", f.hfModelType);
        j.put("vocab_size", c.vocabSize());
        j.put("hidden_size", c.dModel());
        j.put("num_hidden_layers", c.layers());
        j.put("num_attention_heads", c.heads());
        j.put("num_key_value_heads", c.kvHeads());
        j.put("head_dim", c.headDim());
        j.put("max_position_embeddings", c.maxSeqLen());
        j.put("rope_theta", c.ropeTheta());
        j.put("rms_norm_eps", c.normEps());
        j.put("hidden_act", "silu");
        j.put("tie_word_embeddings", c.tiedEmbeddings());
        j.put("attention_bias", f == ExportFamily.QWEN2_MOE);
        j.put("attention_dropout", 0.0);
        j.put("torch_dtype", "float32");
        if (bos >= 0) j.put("bos_token_id", bos);
        if (eos >= 0) j.put("eos_token_id", eos);
        if (m == null) {
            j.put("intermediate_size", c.denseHidden());
        } else if (f == ExportFamily.MIXTRAL) {
            j.put("intermediate_size", m.expertHidden());
            j.put("num_local_experts", m.numExperts());
            j.put("num_experts_per_tok", m.topK());
            j.put("router_aux_loss_coef", m.balanceCoef());
            j.put("output_router_logits", false);
        } else {
            j.put("intermediate_size", m.expertHidden());
            j.put("moe_intermediate_size", m.expertHidden());
            j.put("num_experts", m.numExperts());
            j.put("num_experts_per_tok", m.topK());
            j.put("norm_topk_prob", m.normalizeTopK());
            j.put("decoder_sparse_step", 1);
            j.putArray("mlp_only_layers");
            j.put("router_aux_loss_coef", m.balanceCoef());
            j.put("output_router_logits", false);
            j.put("use_sliding_window", false);
            if (m.sharedExperts() > 0) j.put("shared_expert_intermediate_size", m.sharedWidth());
        }
        return om.writeValueAsString(j);
    }

    private static void add(SafetensorsWriter w, String name, MemorySegment data, long... shape) {
        long n = 1;
        for (long s : shape) n *= s;
        w.add(name, "F32", shape, data.asSlice(0, n * 4));
    }

    static void writeAtomically(Path file, String text) throws IOException {
        Path abs = file.toAbsolutePath();
        Path tmp = Files.createTempFile(abs.getParent(), "." + abs.getFileName() + ".", ".tmp");
        try {
            Files.writeString(tmp, text, StandardCharsets.UTF_8);
            Files.move(tmp, abs, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException | RuntimeException e) {
            Files.deleteIfExists(tmp);
            throw e;
        }
    }
}
