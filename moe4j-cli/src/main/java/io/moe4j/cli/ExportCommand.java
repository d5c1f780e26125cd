package io.moe4j.cli;

import io.moe4j.tokenizer.ByteLevelBpe;
import io.moe4j.train.RunInputs;
import io.moe4j.train.TrainConfig;
import io.moe4j.train.TrainRun;
import io.moe4j.train.Wiring;
import io.moe4j.train.checkpoint.Checkpoints;
import io.moe4j.train.export.ExportFamily;
import io.moe4j.train.export.GgufExport;
import io.moe4j.train.export.HfExport;
import io.moe4j.train.export.Moe4jModelFile;
import io.moe4j.train.model.CausalLm;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * {@code moe4j export CHECKPOINT --format gguf|hf|moe4j -o OUT}: a trained model in a form other engines run.
 * GGUF (llama / qwen2moe / qwen3moe architectures, F32; shrink it with {@code moe4j quantize}) and Hugging Face
 * (safetensors + config.json) need a router one of those families has; moe4j's own file takes any model and loads
 * back bit-identically. Which family a model maps to, or why none, is printed.
 */
@Command(name = "export", mixinStandardHelpOptions = true,
        description = {"Export a trained model: GGUF for llama.cpp, a Hugging Face checkpoint directory, or moe4j's own",
                "file (any router). CHECKPOINT is a checkpoint file or a run directory (its latest valid checkpoint)."},
        footer = {"", "Examples:",
                "  moe4j export runs/demo-tiny/moe --format gguf -o tiny-moe.gguf",
                "  moe4j export runs/demo-tiny/moe --format hf -o tiny-moe-hf/"})
final class ExportCommand implements Runnable {
    @Parameters(index = "0", paramLabel = "CHECKPOINT", description = "Checkpoint file or run directory.")
    Path checkpoint;

    @Option(names = {"-f", "--format"}, required = true, paramLabel = "FORMAT",
            description = "gguf, hf or moe4j.")
    String format;

    @Option(names = {"-o", "--out"}, required = true, paramLabel = "PATH",
            description = "Output file (gguf, moe4j) or directory (hf).")
    Path out;

    @Override
    public void run() {
        RunOptions.userErrors(() -> {
            String f = format.toLowerCase(java.util.Locale.ROOT);
            if (!List.of("gguf", "hf", "moe4j").contains(f)) {
                throw new IllegalArgumentException("--format must be gguf, hf or moe4j, got '" + format + "'");
            }
            Path file = Files.isDirectory(checkpoint)
                    ? new Checkpoints(checkpoint, 1).latestValid(w -> System.err.println("moe4j: " + w)) : checkpoint;
            if (file == null || !Files.isRegularFile(file)) throw new IllegalArgumentException("no usable checkpoint in " + checkpoint);
            TrainConfig cfg = TrainRun.resumedConfig(file, List.of(), w -> {});
            RunInputs in = Wiring.inputs(cfg, file.toAbsolutePath().getParent());
            CausalLm model = in.models().apply(cfg.modelConfig(in.vocabSize()));
            try {
                Checkpoints.restore(file, model, null);
                ExportFamily.Match match = ExportFamily.of(model.config());
                if (!f.equals("moe4j") && !match.ok()) {
                    throw new IllegalArgumentException("this model has no " + (f.equals("gguf") ? "llama.cpp" : "Hugging Face")
                            + " family (" + String.join("; ", match.reasons()) + "); use --format moe4j");
                }
                Path parent = out.toAbsolutePath().getParent();
                if (parent != null) Files.createDirectories(parent);
                switch (f) {
                    case "gguf" -> {
                        if (!(in.tokenizer() instanceof ByteLevelBpe bpe)) throw new IllegalArgumentException("GGUF export needs the run's BPE tokenizer");
                        GgufExport.write(model, bpe.toGguf(), cfg.name(), out);
                    }
                    case "hf" -> HfExport.write(model, out, in.tokenizer() == null ? -1 : in.tokenizer().bos(),
                            in.tokenizer() == null ? -1 : in.tokenizer().eos());
                    default -> Moe4jModelFile.save(model, Map.of(), out);
                }
                System.out.println("wrote " + out + (f.equals("moe4j") ? "" : " (" + match.family().name().toLowerCase(java.util.Locale.ROOT)
                        + ": " + (f.equals("gguf") ? match.family().ggufArch : match.family().hfModelType) + ")"));
            } catch (java.io.IOException e) {
                throw new UserException("cannot write " + out + ": " + e.getMessage());
            } finally {
                if (model instanceof AutoCloseable c) {
                    try {
                        c.close();
                    } catch (Exception ignored) {
                        // closing only frees memory
                    }
                }
            }
            return null;
        });
    }
}
