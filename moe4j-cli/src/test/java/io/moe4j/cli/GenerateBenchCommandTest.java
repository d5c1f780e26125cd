package io.moe4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code bench make-model} then {@code bench generate --no-llama} on the tiny shape: the file is written, the
 * report and its JSON hold positive rates for the three measurements; bad options are one line.
 */
class GenerateBenchCommandTest {
    @TempDir Path dir;

    private static int run(ByteArrayOutputStream out, ByteArrayOutputStream err, String... args) {
        PrintStream oldOut = System.out, oldErr = System.err;
        System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        try {
            return Main.run(args);
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
        }
    }

    @Test
    void makeModelThenBenchGenerate() throws Exception {
        Path model = dir.resolve("tiny.gguf"), json = dir.resolve("g.json");
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        assertThat(run(out, err, "bench", "make-model", "tiny", model.toString(), "--type", "q4_0")).as(err.toString()).isZero();
        assertThat(out.toString()).contains("wrote").contains("Q4_0");
        out.reset();
        assertThat(run(out, err, "bench", "generate", model.toString(), "--prompt-tokens", "16", "--gen-tokens", "3",
                "--repeat", "1", "--batch-seqs", "2", "--threads", "1", "--no-llama", "--json", json.toString())).as(err.toString()).isZero();
        assertThat(out.toString()).contains("moe4j").contains("batched x2");
        JsonNode run = new ObjectMapper().readTree(Files.readString(json)).get("runs").get(0);
        assertThat(run.get("impl").asText()).isEqualTo("moe4j");
        for (String k : new String[]{"promptTpsMedian", "genTpsMedian", "batchTpsMedian", "peakRssMb"}) {
            assertThat(run.get(k).asDouble()).as(k).isPositive();
        }
    }

    @Test
    void badOptionsAreOneLine() {
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        assertThat(run(out, err, "bench", "make-model", "gpt-9", dir.resolve("x.gguf").toString())).isEqualTo(1);
        assertThat(err.toString()).contains("unknown model shape 'gpt-9'");
        err.reset();
        assertThat(run(out, err, "bench", "generate", dir.resolve("none.gguf").toString())).isEqualTo(1);
        assertThat(err.toString()).contains("no such file");
        assertThat(Files.exists(dir.resolve("x.gguf"))).isFalse();
    }
}
