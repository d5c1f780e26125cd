package io.moe4j.train;

import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;
import io.moe4j.train.checkpoint.CheckpointException;
import io.moe4j.train.checkpoint.Checkpoints;
import io.moe4j.train.report.RunLog;
import io.moe4j.train.report.StepRecord;
import io.moe4j.train.report.ValRecord;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

class TrainerTest {
    static WorkerPool pool;

    @BeforeAll static void pool() { pool = new WorkerPool(2); }
    @AfterAll static void close() { pool.close(); }

    static TrainConfig config(String... extra) {
        List<String> o = new ArrayList<>(List.of("model.vocabSize=24", "model.dModel=8", "model.heads=2", "model.kvHeads=2",
                "model.moe.numExperts=4", "model.moe.topK=2", "model.moe.expertHidden=8", "model.initStd=0.3",
                "train.batch=4", "train.seqLen=8", "train.steps=12", "train.warmupSteps=2", "train.lr=0.02",
                "train.minLr=0.002", "train.evalEvery=4", "train.checkpointEvery=4", "train.keepCheckpoints=3",
                "train.evalBatches=2"));
        o.addAll(List.of(extra));
        return TrainConfig.load(null, null, o);
    }

    record Run(List<StepRecord> steps, List<ValRecord> vals, List<String> events, List<float[]> weights, TrainResult result,
               Trainer trainer) {}

    static Run train(TrainConfig c, Path dir, Set<Long> poison, java.util.function.Consumer<FakeLm> setup, Path resume,
                     int stopAt) {
        FakeLm model = new FakeLm(c.modelConfig(0), pool);
        setup.accept(model);
        SyntheticBatches data = new SyntheticBatches(24, 5, poison);
        try (Trainer t = new Trainer(c, model, data, dir, pool, null)) {
            if (resume != null) t.resume(resume);
            TrainResult r = t.run(stopAt);
            List<float[]> w = new ArrayList<>();
            for (Param p : model.params()) w.add(p.toArray());
            RunLog.Contents log = RunLog.read(dir);
            return new Run(log.steps(), log.validations(), log.events(), w, r, t);
        }
    }

    static Run train(TrainConfig c, Path dir) { return train(c, dir, Set.of(), m -> {}, null, Integer.MAX_VALUE); }

    @Test
    void trainsLogsValidatesAndKeepsLastCheckpoints(@TempDir Path dir) {
        Run r = train(config("train.steps=40", "train.evalEvery=10", "train.checkpointEvery=10"), dir);
        assertThat(r.steps()).hasSize(40);
        assertThat(r.steps().getLast().loss()).isLessThan(r.steps().getFirst().loss() - 0.3);
        assertThat(r.vals()).extracting(ValRecord::step).containsExactly(9, 19, 29, 39);
        assertThat(r.vals().getLast().loss()).isLessThan(r.vals().getFirst().loss());
        ValRecord v = r.vals().getLast();
        assertThat(v.bpb()).isCloseTo(v.loss() / (1.5 * Math.log(2)), within(1e-12));
        StepRecord s = r.steps().get(5);
        assertThat(s.layers()).hasSize(1);
        assertThat(Arrays.stream(s.layers().get(0).tokensPerExpert()).sum()).isEqualTo(4 * 8 * 2); // T·k, dropless
        assertThat(s.layers().get(0).active()).isCloseTo(2.0, within(1e-12));
        assertThat(s.lr()).isCloseTo(c().schedule().lr(5), within(1e-15));
        assertThat(s.tokens()).isEqualTo(6L * 32);
        assertThat(new Checkpoints(dir, 3).list()).extracting(Checkpoints::stepOf).containsExactly(20, 30, 40);
        assertThat(r.result().steps()).isEqualTo(40);
        assertThat(r.result().valLoss()).isEqualTo(v.loss());
    }

    private static TrainConfig c() { return config("train.steps=40", "train.evalEvery=10", "train.checkpointEvery=10"); }

    /** DeepSeek-V3 router with jitter: exercises the router's random stream and bias in the checkpoint. */
    static TrainConfig resumable() {
        return config("model.moe.router=deepseek-v3", "model.moe.jitter=0.1", "model.moe.biasUpdateSpeed=0.01",
                "train.accum=2");
    }

    @Test
    void resumedRunIsBitIdenticalToUninterruptedOne(@TempDir Path a, @TempDir Path b) {
        Run whole = train(resumable(), a);
        Run first = train(resumable(), b, Set.of(), m -> {}, null, 6);
        assertThat(first.result().steps()).isEqualTo(6);
        Path ck = new Checkpoints(b, 3).latestValid(w -> {});
        assertThat(Checkpoints.stepOf(ck)).isEqualTo(6);
        Run rest = train(resumable(), b, Set.of(), m -> {}, ck, Integer.MAX_VALUE);
        assertBitEqual(whole, rest);
        assertThat(whole.steps().get(7).layers().get(0).bias()).isNotEqualTo(new float[4]); // the bias did move
    }

    @Test
    void killedMidWriteLeavesTmpAndTruncatedFileThatAreSkipped(@TempDir Path a, @TempDir Path b) throws Exception {
        Run whole = train(resumable(), a);
        train(resumable(), b, Set.of(), m -> {}, null, 6);
        Checkpoints cks = new Checkpoints(b, 3);
        Path good = cks.pathFor(6);
        // a crash during the write of step 8 (temp file) and a later file cut short (e.g. a full disk)
        Files.write(b.resolve("ckpt-00000008.moe4j.tmp"), new byte[1000]);
        byte[] bytes = Files.readAllBytes(good);
        Files.write(cks.pathFor(10), Arrays.copyOf(bytes, bytes.length / 2));
        List<String> warnings = new ArrayList<>();
        Path ck = cks.latestValid(warnings::add);
        assertThat(ck).isEqualTo(good);
        assertThat(warnings).singleElement().asString().contains("ckpt-00000010.moe4j").contains("truncated");
        assertThatThrownBy(() -> train(resumable(), b, Set.of(), m -> {}, cks.pathFor(10), Integer.MAX_VALUE))
                .isInstanceOf(CheckpointException.class).hasMessageContaining("ckpt-00000010.moe4j").hasMessageContaining("truncated");
        Files.delete(cks.pathFor(10));
        Run rest = train(resumable(), b, Set.of(), m -> {}, ck, Integer.MAX_VALUE);
        assertBitEqual(whole, rest);
    }

    @Test
    void checkpointOfAnotherShapeOrRouterIsRejectedBeforeAnythingIsLoaded(@TempDir Path dir) {
        train(config("train.steps=4"), dir);
        Path ck = new Checkpoints(dir, 3).pathFor(4);
        FakeLm wider = new FakeLm(config("model.dModel=16").modelConfig(0), pool);
        float[] before = wider.params().get(0).toArray();
        assertThatThrownBy(() -> Checkpoints.restore(ck, wider, null)).isInstanceOf(CheckpointException.class)
                .hasMessageContaining("ckpt-00000004.moe4j").hasMessageContaining("tok_emb [24, 8]")
                .hasMessageContaining("tok_emb [24, 16]");
        assertThat(wider.params().get(0).toArray()).isEqualTo(before);
        FakeLm v3 = new FakeLm(config("model.moe.router=deepseek-v3").modelConfig(0), pool);
        assertThatThrownBy(() -> Checkpoints.restore(ck, v3, null)).isInstanceOf(CheckpointException.class)
                .hasMessageContaining("trained with router softmax-topk, the model uses deepseek-v3");
    }

    private static void assertBitEqual(Run x, Run y) {
        assertThat(y.steps()).hasSameSizeAs(x.steps());
        for (int i = 0; i < x.steps().size(); i++) {
            StepRecord p = x.steps().get(i), q = y.steps().get(i);
            assertThat(q.loss()).as("loss of step %d", i).isEqualTo(p.loss());
            assertThat(q.aux()).as("aux of step %d", i).isEqualTo(p.aux());
            assertThat(q.gradNorm()).as("grad norm of step %d", i).isEqualTo(p.gradNorm());
            assertThat(q.layers().get(0).bias()).isEqualTo(p.layers().get(0).bias());
        }
        assertThat(y.vals()).isEqualTo(x.vals());
        for (int i = 0; i < x.weights().size(); i++) assertThat(y.weights().get(i)).isEqualTo(x.weights().get(i));
    }

    @Test
    void nanGradientSkipsTheBatchAfterRollingBack(@TempDir Path dir) {
        // rows 20..23 are step 5's batch; its gradient is NaN every time it is seen
        Run r = train(config(), dir, Set.of(20L), m -> m.poisonLeft = -1, null, Integer.MAX_VALUE);
        assertThat(r.result().steps()).isEqualTo(12);
        assertThat(r.events()).singleElement().asString().contains("step 5 not applied")
                .contains("non-finite gradient in head.weight").contains("rolled back to ckpt-00000004.moe4j")
                .contains("skipping the batch");
        assertThat(r.steps()).extracting(StepRecord::step).containsExactly(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11);
        for (float[] w : r.weights()) for (float f : w) assertThat(Float.isFinite(f)).isTrue();
    }

    @Test
    void nanLossWithLowerLrReplaysTheSameBatchAtHalfTheLr(@TempDir Path dir) {
        // the batch fails twice: two rollbacks to the same checkpoint, the backoff compounds to 0.25
        Run r = train(config("train.onNonFinite=lower-lr"), dir, Set.of(20L),
                m -> { m.poisonLeft = 2; m.poison = FakeLm.Poison.LOSS; }, null, Integer.MAX_VALUE);
        assertThat(r.result().steps()).isEqualTo(12);
        assertThat(r.trainer().lrScale()).isEqualTo(0.25);
        assertThat(r.events()).hasSize(2);
        assertThat(r.events().get(0)).contains("loss is NaN").contains("LR × 0.5");
        assertThat(r.events().get(1)).contains("LR × 0.25");
        assertThat(r.steps().get(6).lr()).isCloseTo(0.25 * config().schedule().lr(6), within(1e-15));
    }

    @Test
    void persistentNanStopsAfterMaxFailuresNamingTheParameter(@TempDir Path dir) {
        assertThatThrownBy(() -> train(config("train.onNonFinite=lower-lr", "train.maxFailures=3"), dir, Set.of(20L),
                m -> m.poisonLeft = -1, null, Integer.MAX_VALUE))
                .isInstanceOf(TrainingDivergedException.class)
                .hasMessageContaining("3 consecutive non-finite steps").hasMessageContaining("head.weight")
                .hasMessageContaining("train.maxFailures");
        // nothing after the last good checkpoint was written as a checkpoint
        assertThat(new Checkpoints(dir, 3).list()).extracting(Checkpoints::stepOf).containsExactly(0, 4);
    }

    @Test
    void gradientAccumulationMatchesOneBigBatch(@TempDir Path a, @TempDir Path b) {
        Run big = train(config("model.dense=true", "train.steps=3"), a);
        Run acc = train(config("model.dense=true", "train.steps=3", "train.batch=2", "train.accum=2"), b);
        for (int i = 0; i < 3; i++) {
            assertThat(acc.steps().get(i).loss()).isCloseTo(big.steps().get(i).loss(), within(1e-6));
            assertThat(acc.steps().get(i).gradNorm()).isCloseTo(big.steps().get(i).gradNorm(), within(1e-6));
        }
        for (int i = 0; i < big.weights().size(); i++) {
            float[] x = big.weights().get(i), y = acc.weights().get(i);
            for (int j = 0; j < x.length; j++) assertThat(y[j]).isCloseTo(x[j], within(1e-5f));
        }
    }
}
