package io.moe4j.cli;

import io.moe4j.train.RouterExperiment;
import io.moe4j.train.RunInputs;
import io.moe4j.train.TrainConfig;
import io.moe4j.train.Wiring;
import io.moe4j.train.ui.ProgressBar;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** {@code moe4j experiment ...}: controlled comparisons; the work is in moe4j-train ({@link RouterExperiment}). */
@Command(name = "experiment", mixinStandardHelpOptions = true,
        description = "Controlled comparisons: the same model trained with one thing changed.",
        subcommands = {ExperimentCommand.Routers.class}, commandListHeading = "%nCommands:%n")
final class ExperimentCommand {

    /** {@code moe4j experiment routers}. */
    @Command(name = "routers", mixinStandardHelpOptions = true,
            description = {"Train the same small MoE once per routing method (softmax top-2 + aux, switch top-1 +",
                    "capacity, expert choice, DeepSeek-V3 aux-free, ReMoE, top-p) and write a Markdown table",
                    "(val loss, imbalance, dropped, active experts, tokens/s) and plots."})
    static final class Routers implements Runnable {

        @Mixin
        RunOptions run;

        @Option(names = "--only", paramLabel = "NAMES", split = ",",
                description = "Run only these variants (softmax-top2-aux, switch-top1-cap, expert-choice, "
                        + "deepseek-v3-auxfree, remoe, top-p).")
        List<String> only = new ArrayList<>();

        @Override
        public void run() {
            RunOptions.userErrors(() -> {
                List<RouterExperiment.Variant> vs = RouterExperiment.select(only);
                TrainConfig cfg = run.load("tiny");
                Path out = run.out != null ? run.out : Path.of("runs", "routers-" + cfg.name());
                RunInputs in = Wiring.inputs(cfg, out);
                RouterExperiment.Result r = RouterExperiment.run(cfg, vs, in, out,
                        c -> ProgressBar.stderr(c.train().logEvery()), w -> System.err.println("moe4j: " + w));
                System.out.println();
                System.out.print(r.markdown());
                System.out.println();
                System.out.println("report: " + r.report());
                return null;
            });
        }
    }
}
