package io.moe4j.cli;

import io.moe4j.moe.MoeLayer;
import io.moe4j.nn.F32;
import io.moe4j.nn.Param;
import io.moe4j.tokenizer.Tokenizer;
import io.moe4j.train.RunInputs;
import io.moe4j.train.Wiring;
import io.moe4j.train.data.BatchSource;
import io.moe4j.train.model.CausalLm;
import io.moe4j.train.model.LossBreakdown;
import io.moe4j.train.model.ModelConfig;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/** The train/demo/experiment/generate commands: option handling and one-line errors, end to end over a bigram fake. */
class TrainCommandsTest {


    private static Cli.Run run(String... args) { return Cli.run(args); }

    @AfterEach
    void unwire() { Wiring.override(null); }

    @Test
    void helpListsTheTrainingCommands() {
        assertThat(run("--help").out()).contains("train").contains("demo").contains("experiment").contains("generate");
        assertThat(run("experiment", "--help").out()).contains("routers");
    }

    @Test
    void configMistakesAreOneLineWithExit2() {
        Cli.Run r = run("train", "--preset", "huge");
        assertThat(r.exit()).isEqualTo(2);
        assertThat(r.err()).contains("unknown preset 'huge'").doesNotContain("\tat ");
        r = run("train", "--set", "model.layer=3");
        assertThat(r.exit()).isEqualTo(2);
        assertThat(r.err()).contains("unknown setting 'model.layer'");
        r = run("demo", "--steps", "0");
        assertThat(r.err()).contains("train.steps must be > 0");
        r = run("train", "--resume", "x", "--preset", "tiny");
        assertThat(r.exit()).isEqualTo(2);
        assertThat(r.err()).contains("cannot be combined with --preset");
        r = run("experiment", "routers", "--only", "nope");
        assertThat(r.err()).contains("unknown router variant 'nope'");
    }

    @Test
    void badCheckpointsAreOneLine(@TempDir Path dir) throws Exception {
        Cli.Run r = run("generate", dir.resolve("none.moe4j").toString(), "-p", "x");
        assertThat(r.exit()).isNotZero();
        assertThat(r.err()).contains("none.moe4j").contains("no such file").doesNotContain("\tat ");
        Path bad = dir.resolve("bad.moe4j");
        Files.write(bad, new byte[]{'M', 'O', 'E', '4', 'J'});
        r = run("generate", bad.toString(), "-p", "x");
        assertThat(r.err()).contains("bad.moe4j").contains("truncated");
    }

    @Test
    void trainResumeAndGenerateEndToEnd(@TempDir Path dir) throws Exception {
        Wiring.override((cfg, runDir) -> new RunInputs(Bigram::new, Stream::new, new Letters(), 8));
        Path out = dir.resolve("run");
        String[] common = {"--set", "model.dModel=8", "--set", "model.heads=2", "--set", "model.kvHeads=2",
                "--set", "train.batch=2", "--set", "train.seqLen=8", "--set", "train.evalEvery=0",
                "--set", "train.checkpointEvery=5", "--set", "train.lr=0.1", "--set", "train.warmupSteps=0"};
        Cli.Run r = run(concat(new String[]{"train", "--preset", "tiny", "--steps", "10", "-o", out.toString()}, common));
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.out()).contains("val loss").contains("report:").contains("ckpt-00000010.moe4j");
        assertThat(out.resolve("report/index.html")).exists();
        // a second train into the same directory is refused; --resume with more steps continues it
        r = run(concat(new String[]{"train", "--preset", "tiny", "--steps", "10", "-o", out.toString()}, common));
        assertThat(r.exit()).isEqualTo(2);
        assertThat(r.err()).contains("already holds checkpoints");
        r = run("train", "--resume", "-o", out.toString(), "--steps", "15");
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.err()).contains("resumed from").contains("at step 10");
        assertThat(out.resolve("ckpt-00000015.moe4j")).exists();
        // the bigram learnt "a→b→c→…": greedy generation from the checkpoint follows the cycle
        r = run("generate", out.toString(), "-p", "ab", "-n", "6");
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.out().trim()).isEqualTo("abcdefgh");
    }

    private static String[] concat(String[] a, String[] b) {
        String[] c = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }

    /** Bigram LM: logits(next | t) = W[t], W (V, V); exact gradients of the mean cross-entropy. */
    static final class Bigram implements CausalLm {
        final ModelConfig c;
        final Param w;

        Bigram(ModelConfig c) {
            this.c = c;
            this.w = new Param(Arena.ofAuto(), "bigram.weight", c.vocabSize(), c.vocabSize());
        }

        @Override public ModelConfig config() { return c; }
        @Override public List<Param> params() { return List.of(w); }
        @Override public List<MoeLayer> moeLayers() { return List.of(); }
        @Override public void afterStep(int step) {}

        private double run(int[] tokens, int batch, int seqLen, float scale, boolean grad) {
            int v = c.vocabSize();
            double loss = 0;
            float[] p = new float[v];
            int n = batch * seqLen;
            for (int b = 0; b < batch; b++) {
                for (int i = 0; i < seqLen; i++) {
                    int t = tokens[b * (seqLen + 1) + i], y = tokens[b * (seqLen + 1) + i + 1];
                    nextLogits(new int[]{t}, 1, p);
                    double max = Double.NEGATIVE_INFINITY, sum = 0;
                    for (float z : p) max = Math.max(max, z);
                    for (float z : p) sum += Math.exp(z - max);
                    loss -= p[y] - max - Math.log(sum);
                    if (!grad) continue;
                    for (int k = 0; k < v; k++) {
                        double g = (Math.exp(p[k] - max) / sum - (k == y ? 1 : 0)) * scale / n;
                        F32.set(w.gradData(), (long) t * v + k, F32.get(w.gradData(), (long) t * v + k) + (float) g);
                    }
                }
            }
            return loss / n;
        }

        @Override public LossBreakdown forwardBackward(int[] tokens, int batch, int seqLen, float gradScale) {
            return new LossBreakdown(run(tokens, batch, seqLen, gradScale, true), 0, batch * seqLen);
        }

        @Override public LossBreakdown evaluate(int[] tokens, int batch, int seqLen) {
            return new LossBreakdown(run(tokens, batch, seqLen, 1, false), 0, batch * seqLen);
        }

        @Override public void nextLogits(int[] tokens, int len, float[] out) {
            int t = tokens[len - 1];
            for (int k = 0; k < c.vocabSize(); k++) out[k] = F32.get(w.data(), (long) t * c.vocabSize() + k);
        }
    }

    /** Rows are the cycle 0,1,…,7,0,… starting at row mod 8. */
    static final class Stream implements BatchSource {
        long row;

        @Override public void nextTrain(int[] tokens, int batch, int seqLen) {
            for (int b = 0; b < batch; b++, row++) for (int i = 0; i <= seqLen; i++) tokens[b * (seqLen + 1) + i] = (int) ((row + i) % 8);
        }

        @Override public ValidationSet validation(int batch, int seqLen, int maxBatches) {
            int[] t = new int[batch * (seqLen + 1)];
            for (int b = 0; b < batch; b++) for (int i = 0; i <= seqLen; i++) t[b * (seqLen + 1) + i] = (b + i) % 8;
            List<String[]> domains = List.<String[]>of(new String[batch]);
            return new ValidationSet(List.of(t), (long) batch * seqLen, (long) batch * seqLen, domains);
        }

        @Override public long position() { return row; }
        @Override public void seek(long position) { row = position; }
    }

    /** Token i = letter 'a' + i. */
    static final class Letters implements Tokenizer {
        @Override public int vocabSize() { return 8; }
        @Override public int[] encode(String text, boolean parseSpecial) { return text.chars().map(ch -> ch - 'a').toArray(); }
        @Override public String decode(int[] ids) {
            StringBuilder b = new StringBuilder();
            for (int id : ids) b.append((char) ('a' + id));
            return b.toString();
        }
        @Override public byte[] tokenBytes(int id) { return decode(new int[]{id}).getBytes(StandardCharsets.UTF_8); }
        @Override public String tokenText(int id) { return decode(new int[]{id}); }
        @Override public int bos() { return -1; }
        @Override public int eos() { return -1; }
        @Override public List<Integer> stopTokens() { return List.of(); }
    }
}
