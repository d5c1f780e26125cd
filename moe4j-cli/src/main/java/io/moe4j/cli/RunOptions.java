package io.moe4j.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moe4j.train.TrainConfig;
import io.moe4j.train.TrainingDivergedException;
import io.moe4j.train.checkpoint.CheckpointException;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;

/** Options shared by {@code train}, {@code demo} and {@code experiment}: where the run configuration comes from. */
final class RunOptions {

    @Option(names = {"-c", "--config"}, paramLabel = "FILE", description = "Run configuration (YAML or JSON).")
    Path config;

    @Option(names = "--preset", paramLabel = "NAME", description = "Start from a preset: tiny (about a minute on 2 cores), demo (moe4j demo's default) or small.")
    String preset;

    @Option(names = "--set", paramLabel = "KEY=VALUE", description = "Override one setting, e.g. --set model.layers=4 (repeatable).")
    List<String> set = new ArrayList<>();

    @Option(names = "--data", paramLabel = "PATH", split = ",", description = "Training text files or directories (default: the bundled corpus).")
    List<Path> data = new ArrayList<>();

    @Option(names = "--steps", paramLabel = "N", description = "Training steps (same as --set train.steps=N).")
    Integer steps;

    @Option(names = {"-o", "--out"}, paramLabel = "DIR", description = "Output directory (default: runs/NAME).")
    Path out;

    /** The overrides these options stand for, in order (explicit options after --set). */
    List<String> overrides() {
        List<String> o = new ArrayList<>(set);
        if (steps != null) o.add("train.steps=" + steps);
        if (!data.isEmpty()) {
            List<String> ps = new ArrayList<>();
            for (Path p : data) ps.add(p.toString());
            try {
                o.add("data.paths=" + new ObjectMapper().writeValueAsString(ps));
            } catch (JsonProcessingException e) {
                throw new IllegalStateException(e);
            }
        }
        return o;
    }

    TrainConfig load(String defaultPreset) {
        String p = preset != null ? preset : config == null ? defaultPreset : null;
        return userErrors(() -> TrainConfig.load(p, config, overrides()));
    }

    Path outDir(String name) { return out != null ? out : Path.of("runs", name); }

    /**
     * Runs {@code body}, turning the training stack's domain errors (bad config, bad checkpoint, divergence,
     * missing wiring) into one-line user errors.
     */
    static <T> T userErrors(Supplier<T> body) {
        try {
            return body.get();
        } catch (CheckpointException | TrainingDivergedException | UnsupportedOperationException e) {
            throw new UserException(e.getMessage());
        } catch (IllegalArgumentException e) { // ConfigException, InvalidConfigException, bad --resume, ...
            throw new UserException(e.getMessage(), 2);
        }
    }
}
