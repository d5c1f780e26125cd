package io.moe4j.infer.tokenizer;

import io.moe4j.gguf.GgufFile;
import io.moe4j.tokenizer.Tokenizer;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * llama.cpp's own tokenizer test data ({@code models/ggml-vocab-*.gguf} with {@code .inp}/{@code .out}: real
 * vocabularies — Llama 3, GPT-2, Qwen2, Llama 2, Phi-3 — and the ids Hugging Face tokenizers gives for tricky
 * inputs), run through our loader and encoder exactly as {@code tests/test-tokenizer-0.cpp} runs them (no BOS, no
 * special parsing). The files are not in this repository: {@code -Dmoe4j.llama.vocabs} names a llama.cpp
 * checkout's {@code models/} directory; without it the test checks the needed files out of the llama.cpp source
 * bundle that {@code dev/setup-peers} installed with node-llama-cpp ({@code llama/gitRelease.bundle}, the exact
 * llama.cpp the peer runs) into {@code target/llama-cpp-vocabs} (once, ~3 s), and is skipped if neither exists.
 */
class LlamaCppVocabTest {
    static final String SEP = "\n__ggml_vocab_test__\n";

    static final List<String> NAMES = List.of("llama-bpe", "gpt-2", "qwen2", "mpt", "llama-spm", "phi-3");

    @ParameterizedTest
    @ValueSource(strings = {"llama-bpe", "gpt-2", "qwen2", "mpt", "llama-spm", "phi-3"})
    void matchesHuggingFaceIds(String name) throws Exception {
        String dir = vocabDir();
        assumeTrue(dir != null, "no llama.cpp vocabularies: set -Dmoe4j.llama.vocabs to llama.cpp's models/ directory or run dev/setup-peers");
        Path gguf = Path.of(dir, "ggml-vocab-" + name + ".gguf");
        assumeTrue(Files.exists(gguf), "no " + gguf);
        String raw = Files.readString(Path.of(gguf + ".inp"), StandardCharsets.UTF_8);
        List<String> inputs = new ArrayList<>();
        int pos = 0;
        while (pos < raw.length()) {
            int next = raw.indexOf(SEP, pos);
            if (next < 0) { inputs.add(raw.substring(pos)); break; }
            inputs.add(raw.substring(pos, next));
            pos = next + SEP.length();
        }
        List<String> outputs = Files.readAllLines(Path.of(gguf + ".out"), StandardCharsets.UTF_8);
        assertThat(inputs).hasSameSizeAs(outputs);
        Tokenizer t;
        try (GgufFile g = GgufFile.open(gguf)) {
            t = GgufTokenizers.load(g);
        }
        assertThat(inputs).hasSizeGreaterThan(20);
        for (int i = 0; i < inputs.size(); i++) {
            String o = outputs.get(i).strip();
            int[] expected = o.isEmpty() ? new int[0] : Arrays.stream(o.split(" ")).mapToInt(Integer::parseInt).toArray();
            assertThat(t.encode(inputs.get(i), false)).as("%s: '%s'", name, inputs.get(i)).containsExactly(expected);
            assertThat(t.decode(expected)).as("%s: decode '%s'", name, inputs.get(i)).isEqualTo(inputs.get(i));
        }
    }

    /** The property, else a checkout from the peer's source bundle into target/ (null if there is none). */
    static synchronized String vocabDir() throws IOException, InterruptedException {
        String explicit = System.getProperty("moe4j.llama.vocabs");
        if (explicit != null) return explicit;
        Path out = Path.of("target", "llama-cpp-vocabs").toAbsolutePath();
        Path models = out.resolve("models");
        if (Files.exists(out.resolve("done"))) return models.toString();
        Path bundle = null;
        for (Path d = Path.of("").toAbsolutePath(); d != null && bundle == null; d = d.getParent()) {
            Path b = d.resolve("peers/node/node_modules/node-llama-cpp/llama/gitRelease.bundle");
            if (Files.exists(b)) bundle = b;
        }
        if (bundle == null) return null;
        deleteRecursively(out);
        if (!run(null, "git", "clone", "-q", "--no-checkout", bundle.toString(), out.toString())) return null;
        List<String> checkout = new ArrayList<>(List.of("git", "checkout", "-q", "HEAD", "--"));
        for (String n : NAMES) for (String ext : List.of("", ".inp", ".out")) checkout.add("models/ggml-vocab-" + n + ".gguf" + ext);
        if (!run(out, checkout.toArray(new String[0]))) return null;
        Files.writeString(out.resolve("done"), "");
        return models.toString();
    }

    private static boolean run(Path dir, String... cmd) throws IOException, InterruptedException {
        try {
            Process p = new ProcessBuilder(cmd).directory(dir == null ? null : dir.toFile()).redirectErrorStream(true).start();
            p.getInputStream().transferTo(java.io.OutputStream.nullOutputStream());
            return p.waitFor(120, java.util.concurrent.TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException e) {
            return false;   // no git
        }
    }

    private static void deleteRecursively(Path p) throws IOException {
        if (!Files.exists(p)) return;
        try (var s = Files.walk(p)) {
            for (Path x : s.sorted(java.util.Comparator.reverseOrder()).toList()) Files.delete(x);
        }
    }
}
