package io.moe4j.cli;

import io.moe4j.gguf.GgmlType;
import io.moe4j.infer.RandomModels;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * {@code moe4j bench make-model SHAPE OUT.gguf [--type q8_0]}: writes a random-weight GGUF of a named shape
 * ({@link RandomModels}) for benchmarks without network. Streaming: memory stays at one tensor.
 */
@Command(name = "make-model", mixinStandardHelpOptions = true,
        description = {"Write a random-weight GGUF of a named shape (for benchmarks; no network needed).",
                "Shapes: olmoe-1b-7b (16 layers, d 2048, 64 experts top-8, vocab 50304; ~7.4 GB at q8_0),",
                "mixtral-small (8 layers, d 1024, 8 q / 2 kv heads, 8 experts top-2, f 3584, vocab 32000), tiny, tiny-olmoe."})
final class MakeModelCommand implements Runnable {

    @Parameters(index = "0", paramLabel = "SHAPE", description = "olmoe-1b-7b, mixtral-small, tiny or tiny-olmoe.")
    String shape;

    @Parameters(index = "1", paramLabel = "OUT.gguf", description = "Output file (written atomically).")
    Path out;

    @Option(names = "--type", paramLabel = "TYPE", defaultValue = "q8_0", description = "Matrix type: q8_0, q4_0, f16 or f32 (default ${DEFAULT-VALUE}).")
    String type;

    @Option(names = "--seed", paramLabel = "N", defaultValue = "1", description = "Weight seed (default ${DEFAULT-VALUE}).")
    long seed;

    @Override
    public void run() {
        RandomModels.Shape s;
        try {
            s = RandomModels.shape(shape);
        } catch (IllegalArgumentException e) {
            throw new UserException(e.getMessage());
        }
        GgmlType t = switch (type.toLowerCase(Locale.ROOT)) {
            case "q8_0" -> GgmlType.Q8_0;
            case "q4_0" -> GgmlType.Q4_0;
            case "f16" -> GgmlType.F16;
            case "f32" -> GgmlType.F32;
            default -> throw new UserException("--type must be q8_0, q4_0, f16 or f32, got '" + type + "'");
        };
        Path dir = out.toAbsolutePath().getParent();
        if (dir != null && !Files.isDirectory(dir)) throw new UserException("no such directory: " + dir);
        long t0 = System.nanoTime();
        try {
            RandomModels.write(s, t, seed, out);
        } catch (IOException e) {
            throw new UserException("cannot write " + out + ": " + e.getMessage());
        }
        long bytes;
        try {
            bytes = Files.size(out);
        } catch (IOException e) {
            bytes = -1;
        }
        System.out.printf(Locale.ROOT, "wrote %s: %s, %,d parameters, %s, %.2f GB in %.1f s%n", out, s.name(), s.parameters(),
                t.name(), bytes / 1e9, (System.nanoTime() - t0) / 1e9);
    }
}
