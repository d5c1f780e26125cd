package io.moe4j.cli;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.assertj.core.api.Assertions.assertThat;

class MainTest {


    private static Cli.Run run(String... args) { return Cli.run(args); }

    @Test
    void helpListsCommands() {
        Cli.Run r = run("--help");
        assertThat(r.exit()).isZero();
        assertThat(r.out()).contains("info").contains("bench");
    }

    @Test
    void infoShowsKernelPath() {
        Cli.Run r = run("info");
        assertThat(r.exit()).isZero();
        assertThat(r.out()).contains("kernels").contains("cores").containsAnyOf("simd", "scalar");
    }

    @Test
    void badOptionIsOneLineAndExit2() {
        Cli.Run r = run("info", "--no-such-flag");
        assertThat(r.exit()).isEqualTo(2);
        assertThat(r.err()).contains("Unknown option").doesNotContain("Exception").doesNotContain("\tat ");
    }
}
