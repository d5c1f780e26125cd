package io.moe4j.cli;

import io.moe4j.gguf.GgufFile;
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
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

class QuantizeCommandTest {

    @TempDir Path dir;
    Path model;

    private static Cli.Run run(String... args) { return Cli.run(args); }

    @BeforeEach
    void writeModel() throws IOException {
        model = dir.resolve("m.gguf");
        try (Arena arena = Arena.ofConfined()) {
            Tensor w = Tensor.allocate(arena, DType.F32, 8, 64), n = Tensor.allocate(arena, DType.F32, 64);
            for (int i = 0; i < 8 * 64; i++) w.segment().setAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED, i, (float) Math.sin(i));
            new GgufWriter().putString("general.architecture", "llama").putU32("llama.block_count", 1)
                    .addTensor("blk.0.attn_q.weight", w).addTensor("blk.0.attn_norm.weight", n).write(model);
        }
    }

    @Test
    void quantizesAndSummarises() throws IOException {
        Path out = dir.resolve("q.gguf");
        Cli.Run r = run("quantize", model.toString(), out.toString(), "--type", "q8_0", "--threads", "1");
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.out()).contains("2 tensors").contains("1 converted").contains("wrote");
        try (GgufFile g = GgufFile.open(out)) {
            assertThat(g.tensorInfo("blk.0.attn_q.weight").type()).isEqualTo(GgmlType.Q8_0);
            assertThat(g.tensorInfo("blk.0.attn_norm.weight").type()).isEqualTo(GgmlType.F32);
        }
    }

    @Test
    void userMistakesAreOneLineAndWriteNothing() {
        Path out = dir.resolve("never.gguf");
        Cli.Run bad = run("quantize", model.toString(), out.toString(), "--type", "Q3_K");
        assertThat(bad.exit()).isEqualTo(2);
        assertThat(bad.err()).contains("unknown quantization type 'Q3_K'").doesNotContain("Exception");
        Cli.Run missing = run("quantize", dir.resolve("nope.gguf").toString(), out.toString(), "--type", "Q8_0");
        assertThat(missing.exit()).isEqualTo(1);
        assertThat(missing.err()).contains("no such file");
        Cli.Run same = run("quantize", model.toString(), model.toString(), "--type", "Q8_0");
        assertThat(same.err()).contains("same file");
        Cli.Run override = run("quantize", model.toString(), out.toString(), "--type", "Q8_0", "--override", "attn(=Q4_0");
        assertThat(override.err()).contains("regular expression");
        Cli.Run dry = run("quantize", model.toString(), out.toString(), "--type", "Q4_0", "--dry-run");
        assertThat(dry.exit()).isZero();
        assertThat(Files.exists(out)).isFalse();
    }
}
