package io.moe4j.train;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.moe4j.parallel.WorkerPool;
import io.moe4j.train.checkpoint.CheckpointFile;
import io.moe4j.train.checkpoint.Checkpoints;
import io.moe4j.train.data.BatchSource;
import io.moe4j.train.model.CausalLm;
import io.moe4j.train.report.RunReport;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.function.Consumer;

/**
 * One training run in a directory: {@code config.json}, the run log, checkpoints, {@code summary.json} and
 * {@code report/}. The CLI's {@code train} command is this class plus option parsing.
 */
public final class TrainRun {
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private TrainRun() {}

    /** A finished run: its summary, the trained model (for samples) and the report index. */
    public record Outcome(TrainResult result, CausalLm model, Path report) {}

    /**
     * Trains {@code cfg} in {@code runDir}. A directory that already holds checkpoints is refused unless
     * {@code resume} is set: {@code resume} = a checkpoint file, or the run directory itself for its newest valid
     * checkpoint ({@code warn} hears about newer files that were skipped).
     */
    public static Outcome train(TrainConfig cfg, RunInputs in, Path runDir, Path resume, Trainer.Listener listener,
                                Consumer<String> warn) {
        mkdirs(runDir);
        Checkpoints cks = new Checkpoints(runDir, cfg.train().keepCheckpoints());
        Path from = null;
        if (resume != null) {
            from = Files.isDirectory(resume) ? new Checkpoints(resume, 1).latestValid(warn) : resume;
            if (from == null) throw new IllegalArgumentException("--resume: no usable checkpoint in " + resume);
        } else if (!cks.list().isEmpty()) {
            throw new IllegalArgumentException("run directory " + runDir + " already holds checkpoints; pass --resume to "
                    + "continue it or choose another output directory");
        }
        for (String w : cfg.warnings()) warn.accept(w);
        writeAtomically(runDir.resolve("config.json"), cfg.toJson());
        CausalLm model = in.models().apply(cfg.modelConfig(in.vocabSize()));
        BatchSource data = in.data().get();
        TrainResult result;
        try (Trainer t = new Trainer(cfg, model, data, runDir, WorkerPool.common(), listener)) {
            if (from != null) t.resume(from);
            result = t.run();
        }
        try {
            writeAtomically(runDir.resolve("summary.json"), JSON.writeValueAsString(result));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        Path report = RunReport.write(runDir, cfg, result);
        return new Outcome(result, model, report);
    }

    /**
     * The configuration to resume with: the one stored in the checkpoint ({@code resume} = file or run directory),
     * with {@code overrides} applied (e.g. "train.steps=2000" to train longer).
     */
    public static TrainConfig resumedConfig(Path resume, List<String> overrides, Consumer<String> warn) {
        Path file = Files.isDirectory(resume) ? new Checkpoints(resume, 1).latestValid(warn) : resume;
        if (file == null) throw new IllegalArgumentException("--resume: no usable checkpoint in " + resume);
        TrainConfig c;
        try (CheckpointFile.Loaded l = CheckpointFile.read(file)) {
            c = TrainConfig.fromJson(l.header().config());
        }
        for (String o : overrides) c = c.with(o);
        return c;
    }

    static void mkdirs(Path dir) {
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create directory " + dir, e);
        }
    }

    /** Writes text through a temp file and a rename, so a reader never sees half a file. */
    public static void writeAtomically(Path file, String text) {
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        try {
            Files.writeString(tmp, text, StandardCharsets.UTF_8);
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file, e);
        }
    }
}
