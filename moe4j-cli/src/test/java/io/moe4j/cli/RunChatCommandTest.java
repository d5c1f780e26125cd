package io.moe4j.cli;

import io.moe4j.gguf.GgmlType;
import io.moe4j.infer.Engine;
import io.moe4j.infer.Generator;
import io.moe4j.infer.Model;
import io.moe4j.infer.RandomModels;
import io.moe4j.infer.Sampler;
import io.moe4j.infer.tokenizer.ChatTemplate;
import io.moe4j.infer.tokenizer.GgufTokenizers;
import io.moe4j.parallel.WorkerPool;
import io.moe4j.tokenizer.Tokenizer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * {@code moe4j run} and {@code chat} on a tiny random model with a real BPE tokenizer: greedy output equals the
 * engine's own greedy decode of the same tokens (so streaming, UTF-8 joining and stop handling lose nothing); the
 * chat's second reply, computed with the cache kept from the first turn, equals a fresh evaluation of the whole
 * conversation; MoE options behave (β = 0 and k = model's change nothing, trace lines = evaluated tokens × layers);
 * bad input is one line on stderr.
 */
class RunChatCommandTest {
    private record Run(int exit, String out, String err) {}

    @TempDir static Path dir;
    static Path model;

    @BeforeAll
    static void writeModel() throws Exception {
        model = dir.resolve("tiny.gguf");
        RandomModels.write(RandomModels.TINY, GgmlType.Q8_0, 9, model);
    }

    private static Run run(String stdin, String... args) {
        PrintStream oldOut = System.out, oldErr = System.err;
        InputStream oldIn = System.in;
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        System.setIn(new ByteArrayInputStream(stdin.getBytes(StandardCharsets.UTF_8)));
        try {
            int exit = Main.run(args);
            return new Run(exit, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
            System.setIn(oldIn);
        }
    }

    /** Greedy continuation of {@code ids} by the engine directly, decoded without the stop tokens. */
    private static String greedy(int[] ids, int n) throws Exception {
        try (Model m = Model.open(model); WorkerPool pool = new WorkerPool(1);
             Engine e = new Engine(m, pool, Engine.Options.defaults().withContextLength(512))) {
            Tokenizer t = GgufTokenizers.load(m.gguf());
            int[] stops = t.stopTokens().stream().mapToInt(Integer::intValue).toArray();
            int[] gen = new Generator(e, new Sampler(Sampler.Params.greedy(), e.vocab())).generate(0, ids, n, stops, null).tokens();
            List<Integer> kept = new ArrayList<>();
            for (int id : gen) if (!t.stopTokens().contains(id)) kept.add(id);
            return t.decode(kept.stream().mapToInt(Integer::intValue).toArray());
        }
    }

    private static Tokenizer tokenizer() throws Exception {
        try (Model m = Model.open(model)) {
            return GgufTokenizers.load(m.gguf());
        }
    }

    @Test
    void runGreedyEqualsTheEnginesGreedyDecode() throws Exception {
        Run r = run("", "run", model.toString(), "-p", "Hello there", "-n", "24", "--temperature", "0", "--threads", "1");
        assertThat(r.exit()).as(r.err()).isZero();
        String want = greedy(tokenizer().encodePrompt("Hello there", true), 24);
        assertThat(r.out()).isEqualTo(want + "\n");
        assertThat(r.err()).containsPattern("prompt: \\d+ tokens in [0-9.]+ ms \\([0-9.]+ tokens/s\\)")
                .containsPattern("generation: \\d+ tokens in");
    }

    @Test
    void samplingIsReproducibleBySeedAndStopStringsCut() {
        String[] a = {"run", model.toString(), "-p", "Once upon", "-n", "30", "--seed", "7", "--temperature", "1.2", "--top-k", "0", "--min-p", "0", "--threads", "1"};
        Run r1 = run("", a), r2 = run("", a);
        assertThat(r1.exit()).as(r1.err()).isZero();
        assertThat(r1.out()).isEqualTo(r2.out());
        String text = r1.out().substring(0, r1.out().length() - 1);
        assertThat(text.length()).isGreaterThan(6);
        String stop = text.substring(3, 6);
        List<String> args = new ArrayList<>(List.of(a));
        args.addAll(List.of("--stop", stop));
        Run r3 = run("", args.toArray(String[]::new));
        assertThat(r3.out()).isEqualTo(text.substring(0, text.indexOf(stop)) + "\n");
        assertThat(r3.err()).contains("stopped by stop string");
    }

    @Test
    void moeOptionsNeutralValuesChangeNothingAndTraceCountsTokensTimesLayers() throws Exception {
        String[] base = {"run", model.toString(), "-p", "The cat", "-n", "10", "--temperature", "0", "--ignore-eos", "--threads", "1"};
        Run plain = run("", base);
        List<String> neutral = new ArrayList<>(List.of(base));
        neutral.addAll(List.of("--skip-experts", "0", "--experts-per-token", "2"));
        assertThat(run("", neutral.toArray(String[]::new)).out()).isEqualTo(plain.out());

        Path trace = dir.resolve("trace.jsonl");
        List<String> traced = new ArrayList<>(List.of(base));
        traced.addAll(List.of("--trace-experts", trace.toString(), "--expert-stats", "--experts-per-token", "4"));
        Run r = run("", traced.toArray(String[]::new));
        assertThat(r.exit()).as(r.err()).isZero();
        int prompt = tokenizer().encodePrompt("The cat", true).length;
        List<String> lines = Files.readAllLines(trace);
        // evaluated tokens = prompt + generated − 1 (the last sampled token is not fed back)
        assertThat(lines).hasSize((prompt + 10 - 1) * RandomModels.TINY.layers());
        assertThat(lines).allMatch(l -> l.matches(".*\"experts\":\\[\\d,\\d,\\d,\\d].*"));
        assertThat(r.err()).contains("layer   0:").contains("4.00/token");
        assertThat(Files.exists(dir.resolve("trace.jsonl.tmp"))).isFalse();
    }

    @Test
    void chatKeepsTheCacheAndItsSecondReplyEqualsAFreshEvaluation() throws Exception {
        Run r = run("hello\nhow are you\n/exit\nignored\n", "chat", model.toString(), "-n", "12", "--temperature", "0",
                "--threads", "1", "--show-tokens");
        assertThat(r.exit()).as(r.err()).isZero();
        String[] replies = r.out().split("\n", -1);
        assertThat(replies.length).isGreaterThanOrEqualTo(3);
        // The replies of a random model may contain newlines; rebuild them from a fresh evaluation instead.
        Tokenizer t = tokenizer();
        ChatTemplate tpl = new ChatTemplate(RandomModels.CHATML, "", "");
        List<ChatTemplate.Message> msgs = new ArrayList<>(List.of(ChatTemplate.Message.user("hello")));
        String first = greedy(t.encode(tpl.render(msgs, true), true), 12);
        msgs.add(ChatTemplate.Message.assistant(first));
        msgs.add(ChatTemplate.Message.user("how are you"));
        String second = greedy(t.encode(tpl.render(msgs, true), true), 12);
        assertThat(r.out()).isEqualTo(first + "\n" + second + "\n");
        assertThat(r.err()).containsPattern("reused [1-9]\\d* from the cache");
    }

    @Test
    void badInputIsOneLine() {
        Run r = run("", "run", dir.resolve("missing.gguf").toString(), "-p", "x");
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.err()).startsWith("moe4j: no such file").doesNotContain("Exception");
        r = run("", "run", model.toString(), "-p", "x", "--skip-experts", "1.5");
        assertThat(r.err()).contains("--skip-experts must be in [0, 1]");
        r = run("", "run", model.toString(), "-p", "x", "--experts-per-token", "9");
        assertThat(r.err()).contains("experts per token 9 exceeds the 4 experts").doesNotContain("Exception");
        r = run("", "chat", model.toString(), "--kv", "q4");
        assertThat(r.err()).contains("--kv must be f32 or f16");
        r = run("", "run", model.toString(), "-p", "x", "--trace-experts", dir.resolve("no/such/dir/t.jsonl").toString());
        assertThat(r.err()).contains("no such directory");
    }
}
