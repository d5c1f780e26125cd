package io.moe4j.infer;

import io.moe4j.gguf.GgmlType;
import io.moe4j.gguf.GgufFile;
import io.moe4j.gguf.GgufTensorInfo;
import io.moe4j.gguf.GgufValue;
import io.moe4j.gguf.GgufWriter;
import io.moe4j.tensor.DType;
import io.moe4j.tensor.quant.Quant;
import io.moe4j.testutil.TinyGgufModels;
import io.moe4j.testutil.TinyGgufModels.Config;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Loading: hyper-parameters per architecture as llama.cpp reads them, zero-copy weights, and one clear
 * {@link ModelFormatException} naming the file and the key or tensor for each way a file can be unusable.
 */
class ModelLoadingTest {
    @TempDir Path dir;

    private Path write(Config c, DType t) throws Exception {
        Path f = dir.resolve(c.arch() + "-" + t + ".gguf");
        TinyGgufModels.llama(c).write(f, t);
        return f;
    }

    @Test
    void hyperParametersPerArchitecture() throws Exception {
        try (Model m = Model.open(write(Config.mixtral(1), DType.F32))) {
            HyperParams hp = m.hyperParams();
            assertThat(hp.arch()).isEqualTo(Architecture.LLAMA);
            assertThat(hp).extracting(HyperParams::vocab, HyperParams::dim, HyperParams::layers, HyperParams::heads,
                    HyperParams::kvHeads, HyperParams::headDim, HyperParams::experts, HyperParams::expertsUsed,
                    HyperParams::expertFf, HyperParams::sharedFf, HyperParams::contextLength)
                    .containsExactly(64, 64, 2, 4, 2, 16, 4, 2, 32, 0, 128);
            assertThat(hp.renormTopK()).isTrue();
            assertThat(hp.attentionScale()).isEqualTo(0.25f);
            assertThat(hp.rmsEps()).isEqualTo(1e-5f);
        }
        try (Model m = Model.open(write(Config.qwen2moe(1), DType.F32))) {
            HyperParams hp = m.hyperParams();
            assertThat(hp.arch().neoxRope()).isTrue();
            assertThat(hp.renormTopK()).isFalse();
            assertThat(hp.sharedFf()).isEqualTo(64);
            assertThat(m.layer(0).shRouter()).isNotNull();
            assertThat(m.layer(1).bq()).isNotNull();
        }
        try (Model m = Model.open(write(Config.granitemoe(1), DType.F32))) {
            HyperParams hp = m.hyperParams();
            assertThat(hp).extracting(HyperParams::embeddingScale, HyperParams::residualScale,
                    HyperParams::attentionScale, HyperParams::logitScale).containsExactly(12f, 0.22f, 0.0625f, 6f);
            assertThat(hp.rope()).isTrue();
        }
        try (Model m = Model.open(write(Config.deepseek2(1), DType.F32))) {
            HyperParams hp = m.hyperParams();
            assertThat(hp.mla()).isEqualTo(new HyperParams.Mla(64, 64, 32, 16, 32));
            assertThat(hp).extracting(HyperParams::gating, HyperParams::expertGroups, HyperParams::groupsUsed,
                    HyperParams::denseLead, HyperParams::expertWeightsScale, HyperParams::renormTopK, HyperParams::sharedFf)
                    .containsExactly(HyperParams.Gating.SIGMOID, 4, 2, 1, 2.5f, true, 32);
            assertThat(m.layer(0).moe()).isFalse();
            assertThat(m.layer(1).probsBias()).isNotNull();
        }
        try (Model m = Model.open(write(Config.olmoe(1), DType.F32))) {
            assertThat(m.hyperParams().arch().qkNorm()).isEqualTo(Architecture.QkNorm.FULL_WIDTH);
            assertThat(m.layer(0).qNorm().byteSize()).isEqualTo(64L * 4);
        }
    }

    @Test
    void weightsStayInTheMappedFileWithoutRepacking() throws Exception {
        Path f = write(Config.mixtral(2), DType.Q8_0);
        try (Model m = Model.open(f, false)) {
            Matrix up = m.layer(1).expUp();
            assertThat(up.type()).isEqualTo(DType.Q8_0);
            assertThat(up.count()).isEqualTo(4);
            // the same memory as the file's tensor: a slice of the mapping, not a copy
            GgufFile g = m.gguf();
            assertThat(up.data().address()).isEqualTo(g.tensorData("blk.1.ffn_up_exps.weight").address());
            assertThat(up.offset(3)).isEqualTo(3L * 32 * DType.Q8_0.byteSize(64));
            assertThat(m.layer(0).router().type()).isEqualTo(DType.F32);
        }
    }

    /**
     * With repacking, Q8_0 / Q4_0 matrices of 16k rows go into the kernels' preferred layout (row groups on
     * AVX-512), copied; the embedding, looked up row by row, stays in the mapping; odd-row matrices stay as they are.
     */
    @Test
    void repackingCopiesMatricesIntoTheKernelsPreferredLayout() throws Exception {
        for (DType t : new DType[]{DType.Q8_0, DType.Q4_0}) {
            Path f = write(Config.mixtral(2), t);
            try (Model m = Model.open(f, true)) {
                Matrix up = m.layer(1).expUp();
                DType want = io.moe4j.kernel.Kernels.get().quant().preferredLayout(t, up.rows(), up.cols());
                assertThat(up.type()).isEqualTo(want);
                assertThat(up.count()).isEqualTo(4);
                assertThat(up.offset(3)).isEqualTo(3L * up.rows() * want.byteSize(up.cols()));
                if (want != t) {
                    assertThat(up.data().address()).isNotEqualTo(m.gguf().tensorData("blk.1.ffn_up_exps.weight").address());
                    // every row decodes to the file's values
                    float[] a = new float[up.cols()], b = new float[up.cols()];
                    MemorySegment src = m.gguf().tensorData("blk.1.ffn_up_exps.weight");
                    for (int r = 0; r < up.rows(); r++) {
                        Quant.dequantize(t, src, up.offset(2) / want.byteSize(up.cols()) * t.byteSize(up.cols()) + r * t.byteSize(up.cols()), a, 0, a.length);
                        io.moe4j.tensor.quant.RowGroups.dequantizeRow(want, up.data(), up.offset(2), r, up.cols(), b, 0);
                        assertThat(b).containsExactly(a);
                    }
                }
                assertThat(m.tokenEmbedding().type()).isEqualTo(t);
                assertThat(m.tokenEmbedding().data().address()).isEqualTo(m.gguf().tensorData("token_embd.weight").address());
            }
        }
    }

    @Test
    void tiedOutputFallsBackToTheEmbedding() throws Exception {
        Path f = rewrite(write(Config.dense(3), DType.F32), "tied", meta -> { }, "output.weight", null);
        try (Model m = Model.open(f)) {
            assertThat(m.output()).isSameAs(m.tokenEmbedding());
        }
    }

    @Test
    void clearErrors() throws Exception {
        Path ok = write(Config.qwen2moe(4), DType.F32);
        expectError(rewrite(ok, "no-blocks", meta -> meta.remove("qwen2moe.block_count"), null, null),
                "missing metadata key 'qwen2moe.block_count'");
        expectError(rewrite(ok, "arch", meta -> meta.put("general.architecture", GgufValue.string("mamba")), null, null),
                "unsupported architecture 'mamba'");
        expectError(rewrite(ok, "kv", meta -> meta.put("qwen2moe.attention.head_count_kv", GgufValue.u32(3)), null, null),
                "'qwen2moe.attention.head_count_kv' 3 must divide");
        expectError(rewrite(ok, "used", meta -> meta.put("qwen2moe.expert_used_count", GgufValue.u32(9)), null, null),
                "'qwen2moe.expert_used_count'");
        expectError(rewrite(ok, "no-tensor", meta -> { }, "blk.1.ffn_down_exps.weight", null),
                "missing tensor 'blk.1.ffn_down_exps.weight'");
        expectError(rewrite(ok, "shape", meta -> meta.put("qwen2moe.expert_feed_forward_length", GgufValue.u32(64)), null, null),
                "tensor 'blk.0.ffn_gate_exps.weight' has GGUF dims [64, 32, 4], expected [64, 64, 4]");
        expectError(rewrite(ok, "type", meta -> { }, null, "blk.0.attn_q.weight"),
                "tensor 'blk.0.attn_q.weight' is Q5_0, a type moe4j has no kernels for");
        Path ds = write(Config.deepseek2(4), DType.F32);
        expectError(rewrite(ds, "mla-old", meta -> meta.remove("deepseek2.attention.key_length_mla"), null, null),
                "old un-absorbed MLA layout");
        expectError(rewrite(ds, "gating", meta -> meta.put("deepseek2.expert_gating_func", GgufValue.u32(7)), null, null),
                "'deepseek2.expert_gating_func' 7 is not supported");
        expectError(rewrite(ds, "yarn?", meta -> meta.put("deepseek2.rope.scaling.type", GgufValue.string("longrope")), null, null),
                "'deepseek2.rope.scaling.type' 'longrope' is not supported");
        Path extra = dir.resolve("extra.gguf");
        TinyGgufModels.llama(Config.qwen2moe(4)).with(new TinyGgufModels.Weight("blk.0.attn_qkv.weight", new long[]{2, 64}, new float[128]))
                .write(extra);
        expectError(extra, "tensor 'blk.0.attn_qkv.weight' is not used by moe4j's qwen2moe");
        for (Path bad : new Path[]{rewrite(ok, "x", meta -> meta.remove("qwen2moe.block_count"), null, null)}) {
            assertThatThrownBy(() -> Model.open(bad)).hasMessageStartingWith(bad.toString());
        }
    }

    private static void expectError(Path file, String message) {
        assertThatThrownBy(() -> Model.open(file)).isInstanceOf(ModelFormatException.class).hasMessageContaining(message);
    }

    /**
     * Copies {@code src} with its metadata edited, tensor {@code drop} left out and tensor {@code asQ5_0} replaced by
     * zero bytes of type Q5_0 (a type moe4j lists but cannot compute with).
     */
    private Path rewrite(Path src, String name, Consumer<Map<String, GgufValue>> edit, String drop, String asQ5_0) throws Exception {
        Path out = dir.resolve(name + ".gguf");
        try (GgufFile g = GgufFile.open(src); Arena arena = Arena.ofConfined()) {
            Map<String, GgufValue> meta = new LinkedHashMap<>(g.metadata());
            edit.accept(meta);
            GgufWriter w = new GgufWriter();
            meta.forEach(w::put);
            for (GgufTensorInfo t : g.tensors()) {
                if (t.name().equals(drop)) continue;
                if (t.name().equals(asQ5_0)) {
                    w.addTensor(t.name(), GgmlType.Q5_0, t.ne(), arena.allocate(GgmlType.Q5_0.byteSize(t.numel())));
                    continue;
                }
                w.addTensor(t.name(), t.type(), t.ne(), g.tensorData(t.name()));
            }
            w.write(out);
        }
        return out;
    }
}
