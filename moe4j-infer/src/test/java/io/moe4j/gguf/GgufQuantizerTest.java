package io.moe4j.gguf;

import io.moe4j.parallel.WorkerPool;
import io.moe4j.tensor.quant.Quant;
import io.moe4j.testutil.LlamaPeer;
import io.moe4j.testutil.TinyGgufModels;
import io.moe4j.testutil.TinyGgufModels.Config;
import io.moe4j.testutil.TinyGgufModels.Model;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.CleanupMode;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * {@link GgufQuantizer}: which tensors convert to what, that converted bytes are exactly ggml's reference
 * quantization of the source, that metadata survives, and that llama.cpp runs the result with nearly the logits of
 * the F32 original.
 */
class GgufQuantizerTest {
    private static final WorkerPool POOL = new WorkerPool(2);
    private static final int[] PROMPT = {TinyGgufModels.BOS, 17, 5, 42, 9, 63, 30};

    @TempDir(cleanup = CleanupMode.ON_SUCCESS) Path dir;

    @AfterAll
    static void close() { POOL.close(); }

    /** Rows of 256 so that K-quants apply without fallback; experts top-2 of 4. */
    private static Config kSized(long seed) {
        return new Config(64, 256, 2, 4, 2, 256, 4, 2, 128, 10000f, 1e-5f, seed);
    }

    private Path writeF32(Config c, String name) throws Exception {
        Path f = dir.resolve(name);
        TinyGgufModels.llama(c).write(f);
        return f;
    }

    private Path quantize(Path in, String out, GgufQuantizer q) throws Exception {
        Path o = dir.resolve(out);
        try (GgufFile g = GgufFile.open(in)) {
            q.write(g, q.plan(g), o, POOL, done -> { });
        }
        return o;
    }

    @Test
    void convertsWeightMatricesOnlyAndBytesAreTheReferenceQuantization() throws Exception {
        Path in = writeF32(kSized(1), "f32.gguf");
        Path out = quantize(in, "q4k.gguf", new GgufQuantizer(GgufQuantizer.Target.Q4_K, List.of(), false));
        try (GgufFile a = GgufFile.open(in); GgufFile b = GgufFile.open(out); Arena arena = Arena.ofConfined()) {
            assertThat(b.tensors()).hasSize(a.tensors().size());
            for (GgufTensorInfo t : a.tensors()) {
                GgufTensorInfo u = b.tensorInfo(t.name());
                assertThat(u.ne()).as(t.name()).containsExactly(t.ne());
                boolean matrix = t.nDims() >= 2 && !t.name().contains("ffn_gate_inp");
                assertThat(u.type()).as(t.name()).isEqualTo(matrix ? GgmlType.Q4_K : GgmlType.F32);
                if (!matrix) {
                    assertThat(b.tensor(t.name()).toFloatArray()).containsExactly(a.tensor(t.name()).toFloatArray());
                    continue;
                }
                float[] src = a.tensor(t.name()).toFloatArray();
                MemorySegment expect = arena.allocate(GgmlType.Q4_K.byteSize(src.length));
                int row = (int) t.ne()[0];
                for (int r = 0; r < src.length / row; r++) {
                    Quant.quantize(GgmlType.Q4_K.dtype(), src, r * row, expect, GgmlType.Q4_K.byteSize(row) * r, row);
                }
                assertThat(b.tensorData(t.name()).mismatch(expect)).as(t.name()).isEqualTo(-1);
            }
            for (var kv : a.metadata().entrySet()) {
                if (kv.getKey().equals("general.file_type")) continue;
                assertThat(b.get(kv.getKey())).as(kv.getKey()).isEqualTo(kv.getValue());
            }
            assertThat(b.getLong("general.file_type", -1)).isEqualTo(15);
            assertThat(b.getLong("general.quantization_version", -1)).isEqualTo(2);
        }
        try (Stream<Path> s = Files.list(dir)) {
            assertThat(s.map(p -> p.getFileName().toString())).noneMatch(n -> n.endsWith(".tmp"));
        }
    }

    @Test
    void overridesFallbackAndRequantizeRules() throws Exception {
        Path in = writeF32(Config.mixtral(2), "small.gguf");   // d = 64: K-quant blocks of 256 do not fit a row
        GgufQuantizer q = new GgufQuantizer(GgufQuantizer.Target.Q4_K,
                List.of(GgufQuantizer.Override.parse("attn_(q|k)\\.weight=F16"), GgufQuantizer.Override.parse("ffn_gate_inp=BF16")), false);
        try (GgufFile g = GgufFile.open(in)) {
            for (GgufQuantizer.Step s : q.plan(g)) {
                String n = s.source().name();
                if (n.contains("attn_q.weight") || n.contains("attn_k.weight")) assertThat(s.target()).as(n).isEqualTo(GgmlType.F16);
                else if (n.contains("ffn_gate_inp")) assertThat(s.target()).as(n).isEqualTo(GgmlType.BF16);
                else if (s.source().nDims() >= 2) {
                    assertThat(s.target()).as(n).isEqualTo(GgmlType.Q8_0);
                    assertThat(s.why()).contains("not a multiple");
                } else assertThat(s.target()).as(n).isEqualTo(GgmlType.F32);
            }
        }
        Path q8 = quantize(in, "q8.gguf", new GgufQuantizer(GgufQuantizer.Target.Q8_0, List.of(), false));
        try (GgufFile g = GgufFile.open(q8)) {
            assertThatThrownBy(() -> new GgufQuantizer(GgufQuantizer.Target.Q4_0, List.of(), false).plan(g))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("already Q8_0")
                    .hasMessageContaining("--allow-requantize");
            // Same type is a copy, not a requantization: allowed.
            assertThat(new GgufQuantizer(GgufQuantizer.Target.Q8_0, List.of(), false).plan(g)).noneMatch(GgufQuantizer.Step::converts);
            assertThat(new GgufQuantizer(GgufQuantizer.Target.Q4_0, List.of(), true).plan(g)).anyMatch(GgufQuantizer.Step::converts);
        }
        assertThatThrownBy(() -> GgufQuantizer.Override.parse("attn")).hasMessageContaining("PATTERN=TYPE");
        assertThatThrownBy(() -> GgufQuantizer.Override.parse("attn(=Q8_0")).hasMessageContaining("regular expression");
        assertThatThrownBy(() -> GgufQuantizer.Target.parse("Q3_K")).hasMessageContaining("unknown quantization type");
    }

    @Test
    void q4kmMixFollowsLlamaCpp() throws Exception {
        assertThat(GgufQuantizer.useMoreBits(0, 16)).isTrue();     // first eighth
        assertThat(GgufQuantizer.useMoreBits(15, 16)).isTrue();    // last eighth
        assertThat(GgufQuantizer.useMoreBits(4, 16)).isTrue();     // (4 - 2) % 3 == 2
        assertThat(GgufQuantizer.useMoreBits(5, 16)).isFalse();
        Path in = writeF32(kSized(3), "mix.gguf");
        try (GgufFile g = GgufFile.open(in)) {
            for (GgufQuantizer.Step s : new GgufQuantizer(GgufQuantizer.Target.Q4_K_M, List.of(), false).plan(g)) {
                String n = s.source().name();
                // 2 layers: layers/8 = 0, 7·2/8 = 1, so layer 1 is "last eighth" and layer 0 is (0 - 0) % 3 = 0 → not.
                if (n.equals("output.weight") || n.equals("blk.1.attn_v.weight") || n.equals("blk.1.ffn_down_exps.weight")) {
                    assertThat(s.target()).as(n).isEqualTo(GgmlType.Q6_K);
                } else if (n.equals("blk.0.attn_v.weight") || n.equals("blk.0.ffn_down_exps.weight")) {
                    assertThat(s.target()).as(n).isEqualTo(GgmlType.Q4_K);
                }
            }
        }
    }

    @Test
    void llamaCppRunsTheQuantizedModelCloseToF32() throws Exception {
        LlamaPeer.assumeAvailable();
        Path in = writeF32(kSized(4), "ref.gguf");
        LlamaPeer.Result ref = LlamaPeer.logits(in, PROMPT, 1, 0, dir);
        // Q8_0 is within ~1 % of the logit range on these unit-scale random models; Q4_K about 10 % (4.5 bits).
        for (var c : List.of(new Object[]{GgufQuantizer.Target.Q8_0, 0.03}, new Object[]{GgufQuantizer.Target.Q4_K_M, 0.15})) {
            GgufQuantizer.Target t = (GgufQuantizer.Target) c[0];
            Path out = quantize(in, t + ".gguf", new GgufQuantizer(t, List.of(), false));
            LlamaPeer.Result r = LlamaPeer.logits(out, PROMPT, 1, 0, dir);
            float range = 0, maxDiff = 0;
            float lo = Float.POSITIVE_INFINITY, hi = Float.NEGATIVE_INFINITY;
            for (int i = 0; i < ref.logits().length; i++) {
                lo = Math.min(lo, ref.logits()[i]);
                hi = Math.max(hi, ref.logits()[i]);
                maxDiff = Math.max(maxDiff, Math.abs(ref.logits()[i] - r.logits()[i]));
            }
            range = hi - lo;
            assertThat(maxDiff / range).as("%s max |Δlogit| / range", t).isLessThan((float) (double) c[1]).isGreaterThan(0f);
        }
    }
}
