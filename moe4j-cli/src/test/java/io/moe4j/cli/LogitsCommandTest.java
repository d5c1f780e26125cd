package io.moe4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moe4j.gguf.GgufWriter;
import io.moe4j.gguf.GgmlType;
import io.moe4j.infer.Engine;
import io.moe4j.infer.Model;
import io.moe4j.parallel.WorkerPool;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code moe4j logits}: the printed vector is the engine's (every entry, in order) for exactly the given ids; the
 * text form ranks the top 10; each kind of bad input is one line on stderr with exit 1. (The engine itself is
 * checked against llama.cpp in moe4j-infer's LlamaDifferentialTest.)
 */
class LogitsCommandTest {

    @TempDir Path dir;
    Path model;

    private static Cli.Run run(String... args) { return Cli.run(args); }

    /** A 1-layer Mixtral-style llama file (vocab 40, d 32, 2 heads, 4 experts of 32, top-2) with random F32 weights. */
    @BeforeEach
    void writeModel() throws Exception {
        model = dir.resolve("tiny.gguf");
        int v = 40, d = 32, e = 4, f = 32;
        Random r = new Random(7);
        try (Arena arena = Arena.ofConfined()) {
            GgufWriter w = new GgufWriter().putString("general.architecture", "llama")
                    .putU32("llama.context_length", 64).putU32("llama.embedding_length", d).putU32("llama.block_count", 1)
                    .putU32("llama.feed_forward_length", f).putU32("llama.attention.head_count", 2)
                    .putU32("llama.attention.head_count_kv", 1).putF32("llama.attention.layer_norm_rms_epsilon", 1e-5f)
                    .putU32("llama.expert_count", e).putU32("llama.expert_used_count", 2);
            add(w, arena, r, "token_embd.weight", 1f, d, v);
            add(w, arena, r, "blk.0.attn_norm.weight", 0f, d);
            add(w, arena, r, "blk.0.attn_q.weight", 0.2f, d, d);
            add(w, arena, r, "blk.0.attn_k.weight", 0.2f, d, d / 2);
            add(w, arena, r, "blk.0.attn_v.weight", 0.2f, d, d / 2);
            add(w, arena, r, "blk.0.attn_output.weight", 0.2f, d, d);
            add(w, arena, r, "blk.0.ffn_norm.weight", 0f, d);
            add(w, arena, r, "blk.0.ffn_gate_inp.weight", 0.2f, d, e);
            add(w, arena, r, "blk.0.ffn_gate_exps.weight", 0.2f, d, f, e);
            add(w, arena, r, "blk.0.ffn_up_exps.weight", 0.2f, d, f, e);
            add(w, arena, r, "blk.0.ffn_down_exps.weight", 0.2f, f, d, e);
            add(w, arena, r, "output_norm.weight", 0f, d);
            add(w, arena, r, "output.weight", 0.2f, d, v);
            w.write(model);
        }
    }

    /** std 0 means RMS gains of 1. */
    private static void add(GgufWriter w, Arena arena, Random r, String name, float std, long... ne) {
        long n = 1;
        for (long x : ne) n *= x;
        MemorySegment s = arena.allocate(n * 4);
        for (long i = 0; i < n; i++) s.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, std == 0 ? 1f : std * (float) r.nextGaussian());
        w.addTensor(name, GgmlType.F32, ne, s);
    }

    @Test
    void jsonIsTheEnginesFullVector() throws Exception {
        Cli.Run run = run("logits", model.toString(), "--tokens", "1, 5,39,2", "--json", "--threads", "1");
        assertThat(run.exit()).as(run.err()).isZero();
        JsonNode json = new ObjectMapper().readTree(run.out());
        assertThat(json.get("tokens").toString()).isEqualTo("[1,5,39,2]");
        float[] want;
        try (Model m = Model.open(model); WorkerPool pool = new WorkerPool(1);
             Engine e = new Engine(m, pool, Engine.Options.defaults().withContextLength(8))) {
            want = e.evaluate(0, new int[]{1, 5, 39, 2});
        }
        JsonNode l = json.get("logits");
        assertThat(l.size()).isEqualTo(40);
        for (int i = 0; i < want.length; i++) assertThat(l.get(i).floatValue()).as("logit %d", i).isEqualTo(want[i]);
    }

    @Test
    void textShowsTopTen() {
        Cli.Run run = run("logits", model.toString(), "--tokens", "3,4");
        assertThat(run.exit()).as(run.err()).isZero();
        assertThat(run.out()).contains("llama: 2 tokens evaluated").contains("vocabulary 40").contains("top 10:");
        assertThat(run.out().lines().filter(s -> s.matches("\\s+\\d+\\s+\\d+\\s+-?\\d+\\.\\d+\\s+\\d\\.\\d+")).count()).isEqualTo(10);
    }

    @Test
    void badInputIsOneLine() throws Exception {
        Path notGguf = Files.writeString(dir.resolve("x.gguf"), "hello");
        String[][] cases = {
                {"logits", dir.resolve("missing.gguf").toString(), "--tokens", "1"},
                {"logits", model.toString(), "--tokens", "1,40"},
                {"logits", model.toString(), "--tokens", "1,x"},
                {"logits", model.toString(), "--tokens", "1", "--kv", "q8"},
                {"logits", notGguf.toString(), "--tokens", "1"},
        };
        String[] expect = {"no such file", "token id 40 (position 1) is outside the vocabulary [0, 40)",
                "'x' is not a token id", "--kv must be f32 or f16", "not a valid GGUF file"};
        for (int i = 0; i < cases.length; i++) {
            Cli.Run r = run(cases[i]);
            assertThat(r.exit()).as(String.join(" ", cases[i])).isEqualTo(1);
            assertThat(r.err().lines().count()).as(r.err()).isEqualTo(1);
            assertThat(r.err()).contains(expect[i]);
            assertThat(r.out()).isEmpty();
        }
    }
}
