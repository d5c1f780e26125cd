package io.moe4j.cli;

import io.moe4j.train.Demo;
import io.moe4j.train.RunInputs;
import io.moe4j.train.TrainConfig;
import io.moe4j.train.Wiring;
import io.moe4j.train.ui.ProgressBar;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;

/** {@code moe4j demo}: MoE against its matched dense baseline on the same data; the work is in {@link Demo}. */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = {"Train an MoE model and the dense baseline with the same active parameters per token on the",
                "same data, then compare validation loss, bits per byte and speed, and generate a sample from each.",
                "Default: the demo preset on the bundled corpus (about 3 minutes on 2 cores)."})
final class DemoCommand implements Runnable {

    @Mixin
    RunOptions run;

    @Option(names = {"-p", "--prompt"}, paramLabel = "TEXT", defaultValue = "The ",
            description = "Prompt of the generated samples (default '${DEFAULT-VALUE}'; empty = no sample).")
    String prompt;

    @Option(names = "--sample-tokens", paramLabel = "N", defaultValue = "60", description = "Tokens per sample (default ${DEFAULT-VALUE}).")
    int sampleTokens;

    @Override
    public void run() {
        RunOptions.userErrors(() -> {
            if (sampleTokens < 0) throw new IllegalArgumentException("--sample-tokens must be >= 0, got " + sampleTokens);
            TrainConfig cfg = run.load("demo");
            Path out = run.out != null ? run.out : Path.of("runs", "demo-" + cfg.name());
            RunInputs in = Wiring.inputs(cfg, out);
            Demo.Result r = Demo.run(cfg, in, out, c -> ProgressBar.stderr(c.train().logEvery()),
                    w -> System.err.println("moe4j: " + w), prompt, sampleTokens);
            System.out.println();
            System.out.print(r.table());
            if (r.moeSample() != null) {
                System.out.println();
                System.out.println("MoE:   " + prompt + r.moeSample());
                System.out.println("dense: " + prompt + r.denseSample());
            }
            System.out.println();
            System.out.println("report: " + r.report());
            return null;
        });
    }
}
