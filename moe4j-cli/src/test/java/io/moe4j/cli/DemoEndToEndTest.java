package io.moe4j.cli;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The README's main job, {@code moe4j demo}, end to end with the real pieces — BPE trained on the bundled corpus,
 * token cache, the MoE transformer and its dense baseline, report, samples — at a reduced size, then
 * {@code generate} from the checkpoint it wrote.
 */
class DemoEndToEndTest {
    @TempDir Path dir;


    private static Cli.Run run(String... args) { return Cli.run(args); }

    @AfterEach
    void clearCache() { System.clearProperty("moe4j.cache"); }

    @Test
    void demoTrainsBothModelsReportsAndGenerates() throws Exception {
        System.setProperty("moe4j.cache", dir.resolve("cache").toString());
        Path out = dir.resolve("demo");
        Cli.Run r = run("demo", "-o", out.toString(), "--steps", "16", "--set", "model.dModel=32", "--set", "train.batch=4",
                "--set", "train.seqLen=32", "--set", "data.bpeVocab=320", "--set", "train.evalEvery=8",
                "--set", "train.evalBatches=2", "--set", "train.warmupSteps=4", "--sample-tokens", "8");
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.out()).contains("val loss").contains("bits/byte").contains("tokens/s").contains("MoE:").contains("dense:")
                .contains("Verdict: ").contains("I(domain; expert)");
        assertThat(out.resolve("index.html")).exists();
        try (var s = Files.walk(out)) {
            assertThat(s.filter(p -> p.toString().endsWith(".png")).count()).as("plots").isGreaterThanOrEqualTo(4);
        }
        // generate from the MoE run's checkpoint
        Path ckpt;
        try (var s = Files.walk(out)) {
            ckpt = s.filter(p -> p.getParent().getFileName().toString().equals("moe") && p.getFileName().toString().endsWith(".moe4j")).sorted().reduce((a, b) -> b).orElseThrow();
        }
        Cli.Run g = run("generate", ckpt.toString(), "-p", "The ", "-n", "6");
        assertThat(g.exit()).as(g.err()).isZero();
        assertThat(g.out()).startsWith("The ");
    }
}
