package io.moe4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moe4j.gguf.GgufArray;
import io.moe4j.gguf.GgufWriter;
import io.moe4j.gguf.GgmlType;
import io.moe4j.tensor.DType;
import io.moe4j.tensor.Tensor;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

class InspectCommandTest {


    @TempDir Path dir;
    Path model;

    private static Cli.Run run(String... args) { return Cli.run(args); }

    /** A tiny 2-layer qwen2moe-shaped file: 4 experts (top-2), d 64, f 32, one Q4_K tensor moe4j cannot compute. */
    @BeforeEach
    void writeModel() throws IOException {
        model = dir.resolve("tiny-moe.gguf");
        try (Arena arena = Arena.ofConfined()) {
            GgufWriter w = new GgufWriter()
                    .putString("general.architecture", "qwen2moe").putString("general.name", "tiny moe")
                    .putU32("general.file_type", 7)
                    .putU32("qwen2moe.context_length", 256).putU32("qwen2moe.embedding_length", 64)
                    .putU32("qwen2moe.block_count", 2).putU32("qwen2moe.attention.head_count", 4)
                    .putU32("qwen2moe.attention.head_count_kv", 4).putU32("qwen2moe.expert_count", 4)
                    .putU32("qwen2moe.expert_used_count", 2).putU32("qwen2moe.expert_feed_forward_length", 32)
                    .putF32("qwen2moe.rope.freq_base", 1_000_000f)
                    .putString("tokenizer.ggml.model", "gpt2").putString("tokenizer.ggml.pre", "qwen2")
                    .putArray("tokenizer.ggml.tokens", GgufArray.ofStrings("a", "b", "c", "<s>", "</s>"))
                    .putArray("tokenizer.ggml.merges", GgufArray.ofStrings("a b"))
                    .putU32("tokenizer.ggml.bos_token_id", 3).putU32("tokenizer.ggml.eos_token_id", 4);
            w.addTensor("token_embd.weight", Tensor.allocate(arena, DType.F32, 5, 64));
            for (int l = 0; l < 2; l++) {
                w.addTensor("blk." + l + ".ffn_gate_inp.weight", Tensor.allocate(arena, DType.F32, 4, 64));
                w.addTensor("blk." + l + ".ffn_gate_exps.weight", Tensor.allocate(arena, DType.Q8_0, 4, 32, 64));
                w.addTensor("blk." + l + ".ffn_up_exps.weight", Tensor.allocate(arena, DType.Q8_0, 4, 32, 64));
                w.addTensor("blk." + l + ".ffn_down_exps.weight", Tensor.allocate(arena, DType.Q8_0, 4, 64, 32));
            }
            w.addTensor("output.weight", GgmlType.Q4_K, new long[]{256, 5}, MemorySegment.ofArray(new byte[144 * 5]));
            w.write(model);
        }
    }

    @Test
    void textSummary() {
        Cli.Run r = run("inspect", model.toString());
        assertThat(r.err()).isEmpty();
        assertThat(r.exit()).isZero();
        assertThat(r.out())
                .contains("architecture     qwen2moe")
                .contains("name             tiny moe")
                .containsPattern("expert_used_count +2")
                .containsPattern("rope.freq_base +1000000.0")
                .contains("gpt2 (pre qwen2), 5 tokens, 1 merges, bos 3, eos 4")
                .contains("10 tensors")
                .contains("Q8_0 × 6").contains("Q4_K × 1")
                .contains("4 experts, 2 used per token; 6 stacked expert tensors")
                .contains("mapped")
                .doesNotContain("blk.0.ffn_down_exps.weight");
        // per expert: 3 matrices of 32×64 Q8_0 (2176 bytes each) per layer, 2 layers
        assertThat(r.out()).contains("12.8 KiB per expert".replace("12.8 KiB", InfoCommand.bytes(3 * 2176 * 2)));
    }

    @Test
    void tensorTable() {
        Cli.Run r = run("inspect", "--tensors", model.toString());
        assertThat(r.exit()).isZero();
        assertThat(r.out()).contains("blk.0.ffn_down_exps.weight").contains("[32, 64, 4]").contains("Q4_K");
    }

    @Test
    void jsonSummary() throws IOException {
        Cli.Run r = run("inspect", "--json", "--tensors", model.toString());
        assertThat(r.exit()).isZero();
        JsonNode j = new ObjectMapper().readTree(r.out());
        assertThat(j.get("architecture").asText()).isEqualTo("qwen2moe");
        assertThat(j.get("ggufVersion").asInt()).isEqualTo(3);
        assertThat(j.at("/hyperParameters/expert_count").asLong()).isEqualTo(4);
        assertThat(j.at("/hyperParameters/attention.head_count").asLong()).isEqualTo(4);
        assertThat(j.at("/tokenizer/vocabSize").asLong()).isEqualTo(5);
        assertThat(j.at("/tokenizer/eosTokenId").asLong()).isEqualTo(4);
        assertThat(j.at("/tensors/count").asInt()).isEqualTo(10);
        assertThat(j.at("/tensors/byType/Q8_0/count").asInt()).isEqualTo(6);
        assertThat(j.at("/experts/bytesPerExpert").asLong()).isEqualTo(3 * 2176 * 2);
        assertThat(j.at("/experts/expertUsedCount").asLong()).isEqualTo(2);
        assertThat(j.at("/memory/mappedBytes").asLong()).isEqualTo(Files.size(model));
        long total = j.at("/tensors/bytes").asLong(), experts = j.at("/experts/expertBytes").asLong();
        assertThat(j.at("/memory/weightBytesPerToken").asLong()).isEqualTo(total - experts + 2L * 3 * 2176 * 2);
        assertThat(j.get("tensorList")).hasSize(10);
        assertThat(j.at("/tensorList/0/ne/1").asLong()).isEqualTo(5);
    }

    @Test
    void missingFileDirectoryAndBadFileAreOneLineExit1() throws IOException {
        Path bad = dir.resolve("bad.gguf");
        Files.write(bad, "GGUF\u0001\0\0\0 not really".getBytes(StandardCharsets.ISO_8859_1));
        Path truncated = dir.resolve("truncated.gguf");
        byte[] full = Files.readAllBytes(model);
        Files.write(truncated, java.util.Arrays.copyOf(full, full.length / 2));
        for (String[] args : new String[][]{{"inspect", dir.resolve("nope.gguf").toString()}, {"inspect", dir.toString()},
                {"inspect", bad.toString()}, {"inspect", "--json", truncated.toString()}}) {
            Cli.Run r = run(args);
            assertThat(r.exit()).as(String.join(" ", args)).isEqualTo(1);
            assertThat(r.out()).isEmpty();
            assertThat(r.err().lines().count()).as(r.err()).isEqualTo(1);
            assertThat(r.err()).startsWith("moe4j: ").doesNotContain("\tat ").doesNotContain("Exception");
        }
        assertThat(run("inspect", dir.resolve("nope.gguf").toString()).err()).contains("no such file");
        assertThat(run("inspect", dir.toString()).err()).contains("is a directory");
        assertThat(run("inspect", bad.toString()).err()).contains("version 1 is not supported").contains("at byte 4");
        assertThat(run("inspect", truncated.toString()).err()).contains("not a valid GGUF file").contains("truncated.gguf");
    }

    @Test
    void helpListsInspect() {
        assertThat(run("--help").out()).contains("inspect");
    }
}
