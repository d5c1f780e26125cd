package io.moe4j.cli;

import io.moe4j.train.RunInputs;
import io.moe4j.train.TrainConfig;
import io.moe4j.train.TrainRun;
import io.moe4j.train.Wiring;
import io.moe4j.train.ui.ProgressBar;
import io.moe4j.train.ui.SummaryTable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.List;

/** {@code moe4j train}: one training run; the work is in {@link TrainRun}. */
@Command(name = "train", mixinStandardHelpOptions = true,
        description = {"Train an MoE language model (or its dense baseline) and write checkpoints, a run log and a report.",
                "Configuration: defaults <- --preset <- --config FILE <- --set KEY=VALUE."})
final class TrainCommand implements Runnable {

    @Mixin
    RunOptions run;

    @Option(names = "--resume", arity = "0..1", paramLabel = "CHECKPOINT", fallbackValue = "",
            description = "Continue from a checkpoint file, or from the newest valid checkpoint of the output directory.")
    String resume;

    @Option(names = "--dense", description = "Train the dense baseline with the same active parameters per token.")
    boolean dense;

    @Override
    public void run() {
        RunOptions.userErrors(() -> {
            TrainConfig cfg;
            Path out;
            Path from = null;
            if (resume != null) {
                if (run.preset != null || run.config != null || dense) {
                    throw new IllegalArgumentException("--resume continues the configuration stored in the checkpoint; "
                            + "it cannot be combined with --preset, --config or --dense (use --set to change a setting)");
                }
                from = resume.isEmpty() ? run.out : Path.of(resume);
                if (from == null) throw new IllegalArgumentException("--resume without a file needs --out DIR (the run to continue)");
                cfg = TrainRun.resumedConfig(from, run.overrides(), System.err::println);
                out = run.out != null ? run.out : (java.nio.file.Files.isDirectory(from) ? from : from.toAbsolutePath().getParent());
            } else {
                cfg = run.load("tiny");
                if (dense) cfg = cfg.dense();
                out = run.outDir(cfg.name());
            }
            RunInputs in = Wiring.inputs(cfg, out);
            TrainRun.Outcome o = TrainRun.train(cfg, in, out, from, ProgressBar.stderr(cfg.train().logEvery()),
                    w -> System.err.println("moe4j: " + w));
            System.out.print(SummaryTable.plain(List.of(o.result())));
            System.out.println("report: " + o.report());
            System.out.println("checkpoint: " + o.result().checkpoint());
            return null;
        });
    }
}
