package io.moe4j.cli;

import io.moe4j.train.Generator;
import io.moe4j.train.RunInputs;
import io.moe4j.train.TrainConfig;
import io.moe4j.train.TrainRun;
import io.moe4j.train.Wiring;
import io.moe4j.train.checkpoint.Checkpoints;
import io.moe4j.train.model.CausalLm;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** {@code moe4j generate CHECKPOINT -p PROMPT}: continue a prompt with a trained checkpoint ({@link Generator}). */
@Command(name = "generate", mixinStandardHelpOptions = true,
        description = "Continue a prompt with a trained checkpoint (greedy by default, or sampled with --temperature).")
final class GenerateCommand implements Runnable {

    @Parameters(index = "0", paramLabel = "CHECKPOINT", description = "A checkpoint file, or a run directory (its newest valid checkpoint).")
    Path checkpoint;

    @Option(names = {"-p", "--prompt"}, required = true, paramLabel = "TEXT", description = "The text to continue.")
    String prompt;

    @Option(names = {"-n", "--max-tokens"}, paramLabel = "N", defaultValue = "100", description = "Tokens to generate (default ${DEFAULT-VALUE}).")
    int maxTokens;

    @Option(names = "--temperature", paramLabel = "T", defaultValue = "0", description = "0 = greedy (default); > 0 samples.")
    double temperature;

    @Option(names = "--top-k", paramLabel = "K", defaultValue = "0", description = "Sample among the K most likely tokens (0 = all).")
    int topK;

    @Option(names = "--seed", paramLabel = "N", defaultValue = "1", description = "Sampling seed (default ${DEFAULT-VALUE}).")
    long seed;

    @Override
    public void run() {
        RunOptions.userErrors(() -> {
            if (maxTokens < 0) throw new IllegalArgumentException("--max-tokens must be >= 0, got " + maxTokens);
            if (!(temperature >= 0)) throw new IllegalArgumentException("--temperature must be >= 0, got " + temperature);
            if (topK < 0) throw new IllegalArgumentException("--top-k must be >= 0, got " + topK);
            Path file = Files.isDirectory(checkpoint)
                    ? new Checkpoints(checkpoint, 1).latestValid(w -> System.err.println("moe4j: " + w)) : checkpoint;
            if (file == null) throw new IllegalArgumentException("no usable checkpoint in " + checkpoint);
            TrainConfig cfg = TrainRun.resumedConfig(file, List.of(), w -> {});
            Path runDir = file.toAbsolutePath().getParent();
            RunInputs in = Wiring.inputs(cfg, runDir);
            if (in.tokenizer() == null) throw new IllegalArgumentException("no tokenizer found for " + file);
            CausalLm model = in.models().apply(cfg.modelConfig(in.vocabSize()));
            Checkpoints.restore(file, model, null);
            String text = Generator.continueText(model, in.tokenizer(), prompt, maxTokens, temperature, topK, seed);
            System.out.println(prompt + text);
            return null;
        });
    }
}
