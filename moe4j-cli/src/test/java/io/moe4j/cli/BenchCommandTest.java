package io.moe4j.cli;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

/** {@code moe4j bench kernels}: the smoke run prints its tables; bad options give exit code 2 and one line. */
class BenchCommandTest {
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private final ByteArrayOutputStream err = new ByteArrayOutputStream();
    private PrintStream oldOut, oldErr;

    @BeforeEach
    void capture() {
        oldOut = System.out;
        oldErr = System.err;
        System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
    }

    @AfterEach
    void restore() {
        System.setOut(oldOut);
        System.setErr(oldErr);
    }

    private String out() { return out.toString(StandardCharsets.UTF_8); }
    private String err() { return err.toString(StandardCharsets.UTF_8); }

    @Test
    void quickRunPrintsAllTablesAndWritesJson(@TempDir Path dir) throws Exception {
        Path json = dir.resolve("kernels.json");
        int code = Main.run("bench", "kernels", "--quick", "--repeat", "2", "--json", json.toString());
        assertThat(code).as(err()).isZero();
        assertThat(out()).contains("moe4j bench kernels", "CPU", "kernels", "Memory read bandwidth",
                "sgemm GFLOP/s", "64x512x256", "Quantized matvec", "JSON written to");
        String j = Files.readString(json);
        assertThat(j).startsWith("{").contains("\"machine\"", "\"bandwidth\"", "\"sgemm\"", "\"quant\"");
        assertThat(err()).contains("bench [1/");
    }

    @Test
    void onlyRunsTheSelectedPart() {
        assertThat(Main.run("bench", "kernels", "--quick", "--only", "bandwidth", "--threads", "1")).isZero();
        assertThat(out()).contains("Memory read bandwidth").doesNotContain("sgemm GFLOP/s", "Quantized matvec");
    }

    @Test
    void badThreadsGivesExitCode2AndOneLine() {
        assertThat(Main.run("bench", "kernels", "--threads", "0")).isEqualTo(2);
        assertThat(err().lines().toList()).hasSize(1).first().asString().startsWith("moe4j: --threads");
        assertThat(out()).isEmpty();
    }

    @Test
    void badPartGivesExitCode2AndOneLine() {
        assertThat(Main.run("bench", "kernels", "--only", "gemm")).isEqualTo(2);
        assertThat(err().lines().toList()).hasSize(1).first().asString().contains("--only wants sgemm, quant or bandwidth");
    }

    @Test
    void badRepeatGivesExitCode2AndOneLine() {
        assertThat(Main.run("bench", "kernels", "--repeat", "0")).isEqualTo(2);
        assertThat(err().lines().toList()).hasSize(1);
    }

    @Test
    void benchWithoutSubcommandIsAUsageError() {
        assertThat(Main.run("bench")).isEqualTo(2);
        assertThat(err()).contains("Missing required subcommand");
    }
}
