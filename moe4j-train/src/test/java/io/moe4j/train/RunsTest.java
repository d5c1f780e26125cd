package io.moe4j.train;

import io.moe4j.parallel.WorkerPool;
import io.moe4j.train.report.RunLog;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The orchestration (run directory, report, demo, router experiment, generation) over the test fakes. */
class RunsTest {
    static WorkerPool pool;

    @BeforeAll static void pool() { pool = new WorkerPool(2); }
    @AfterAll static void close() { pool.close(); }

    static RunInputs fakes() {
        return new RunInputs(mc -> new FakeLm(mc, pool), () -> new SyntheticBatches(24, 5, Set.of()), new FakeTokenizer(24), 24);
    }

    static Trainer.Listener quiet(TrainConfig c) { return new Trainer.Listener() {}; }

    @Test
    void trainRunWritesConfigLogSummaryAndReportWithReadablePngs(@TempDir Path dir) throws Exception {
        TrainConfig c = TrainerTest.config("train.steps=60", "train.evalEvery=15", "train.checkpointEvery=30",
                "model.moe.router=deepseek-v3", "model.moe.balanceLoss=NONE", "model.moe.balanceCoef=0", "name=fake");
        TrainRun.Outcome o = TrainRun.train(c, fakes(), dir, null, quiet(c), w -> {});
        assertThat(dir.resolve("config.json")).exists();
        assertThat(dir.resolve("summary.json")).exists();
        assertThat(TrainConfig.fromJson(Files.readString(dir.resolve("config.json")))).usingRecursiveComparison().isEqualTo(c);
        Path rep = dir.resolve("report");
        for (String png : List.of("loss.png", "load_layer0.png", "entropy.png", "imbalance.png", "dropped.png", "active.png",
                "bias_layer0.png")) {
            BufferedImage img = ImageIO.read(rep.resolve(png).toFile());
            assertThat(img).as(png).isNotNull();
            assertThat(img.getWidth()).isGreaterThan(400);
            assertThat(distinctColors(img)).as(png + " is not blank").isGreaterThan(10);
        }
        String html = Files.readString(o.report());
        assertThat(html).contains("<img src=\"loss.png\"").contains("load_layer0.png").contains("val loss").contains("deepseek-v3");
        // a second run into the same directory must not silently overwrite it
        assertThatThrownBy(() -> TrainRun.train(c, fakes(), dir, null, quiet(c), w -> {}))
                .hasMessageContaining("already holds checkpoints").hasMessageContaining("--resume");
        // resuming the finished run with more steps continues from step 60
        TrainConfig more = TrainRun.resumedConfig(dir, List.of("train.steps=70"), w -> {});
        TrainRun.Outcome o2 = TrainRun.train(more, fakes(), dir, dir, quiet(more), w -> {});
        assertThat(o2.result().steps()).isEqualTo(70);
        assertThat(RunLog.read(dir).steps()).hasSize(70);
    }

    private static int distinctColors(BufferedImage img) {
        Set<Integer> s = new java.util.HashSet<>();
        for (int y = 0; y < img.getHeight(); y += 3) for (int x = 0; x < img.getWidth(); x += 3) s.add(img.getRGB(x, y));
        return s.size();
    }

    @Test
    void demoComparesMoeWithTheMatchedDenseBaseline(@TempDir Path dir) throws Exception {
        TrainConfig c = TrainerTest.config("train.steps=20", "name=demo");
        Demo.Result r = Demo.run(c, fakes(), dir, RunsTest::quiet, w -> {}, "abc", 10);
        assertThat(r.runs()).extracting(TrainResult::name).containsExactly("demo", "demo-dense");
        assertThat(r.runs().get(1).activeExperts()).isZero();
        assertThat(r.table()).contains("demo-dense").contains("val loss").contains("bits/byte").contains("tokens/s")
                .contains("Verdict: ").contains("Expert usage per validation domain").contains("I(domain; expert)");
        assertThat(r.usage().layers()).hasSize(1);
        assertThat(r.usage().layers().getFirst().total()).isPositive();
        assertThat(r.moeSample()).hasSize(10);
        assertThat(Files.readString(r.report())).contains("Samples").contains("val_loss.png").contains("Verdict: ")
                .contains("domain_experts_0.png");
        assertThat(dir.resolve("domain_experts_0.png")).isRegularFile();
        assertThat(dir.resolve("results.md")).exists();
        assertThat(dir.resolve("moe/report/index.html")).exists();
        assertThat(dir.resolve("dense/report/index.html")).exists();
    }

    @Test
    void everyRouterVariantTrainsOnTheRealMoeLayer(@TempDir Path dir) throws Exception {
        TrainConfig base = TrainerTest.config("train.steps=4", "train.evalEvery=0", "train.checkpointEvery=0");
        RouterExperiment.Result r = RouterExperiment.run(base, RouterExperiment.select(null), fakes(), dir,
                RunsTest::quiet, w -> {});
        assertThat(r.runs()).hasSize(RouterExperiment.VARIANTS.size());
        for (TrainResult t : r.runs()) assertThat(Double.isFinite(t.valLoss())).as(t.name()).isTrue();
        TrainResult sw = r.runs().stream().filter(t -> t.name().equals("switch-top1-cap")).findFirst().orElseThrow();
        assertThat(sw.activeExperts()).isLessThanOrEqualTo(1.0);
        assertThat(r.markdown()).contains("| expert-choice |").contains("| remoe |").contains("---:|");
        assertThat(dir.resolve("results.md")).exists();
        assertThat(dir.resolve("imbalance.png")).exists();
        assertThatThrownBy(() -> RouterExperiment.select(List.of("nope"))).hasMessageContaining("unknown router variant 'nope'");
    }

    @Test
    void generationIsGreedyOrSeededSampling() {
        TrainConfig c = TrainerTest.config();
        FakeLm m = new FakeLm(c.modelConfig(24), pool);
        int[] prompt = {1, 2, 3};
        int[] g1 = Generator.continueIds(m, prompt, 12, 0, 0, 1, List.of());
        int[] g2 = Generator.continueIds(m, prompt, 12, 0, 0, 99, List.of());
        assertThat(g1).hasSize(12).isEqualTo(g2);
        // greedy = argmax of the model's own next-token logits at every position
        List<Integer> seq = new ArrayList<>(List.of(1, 2, 3));
        float[] logits = new float[24];
        for (int i = 0; i < 12; i++) {
            int[] s = seq.stream().mapToInt(Integer::intValue).toArray();
            int from = Math.max(0, s.length - c.maxSeqLen());
            m.nextLogits(java.util.Arrays.copyOfRange(s, from, s.length), s.length - from, logits);
            assertThat(g1[i]).isEqualTo(Generator.argmax(logits));
            seq.add(g1[i]);
        }
        int[] s1 = Generator.continueIds(m, prompt, 12, 1.0, 5, 7, List.of());
        assertThat(Generator.continueIds(m, prompt, 12, 1.0, 5, 7, List.of())).isEqualTo(s1);
        int firstStop = 0;
        while (g1[firstStop] != g1[3]) firstStop++;
        assertThat(Generator.continueIds(m, prompt, 12, 0, 0, 1, List.of(g1[3]))).hasSize(firstStop); // stops before a stop token
        assertThatThrownBy(() -> Generator.continueIds(m, new int[0], 3, 0, 0, 1, List.of())).hasMessageContaining("prompt is empty");
    }
}
