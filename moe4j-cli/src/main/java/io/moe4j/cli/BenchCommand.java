package io.moe4j.cli;

import io.moe4j.bench.KernelBench;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * {@code moe4j bench ...}: benchmarks that run moe4j and the machine's references side by side. This class only
 * parses options; the measuring lives in {@code moe4j-bench} ({@link KernelBench}).
 *
 * <p>Subcommands: {@code kernels} (GEMM, quantized matvec, memory bandwidth). Later ones ({@code moe-layer},
 * {@code generate}) are added as further nested commands here.
 */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Benchmarks that run moe4j and the machine's references side by side.",
        subcommands = {BenchCommand.Kernels.class, BenchCommand.MoeLayerCmd.class, BenchCommand.TrainCmd.class, GenerateBenchCommand.class, MakeModelCommand.class},
        commandListHeading = "%nCommands:%n")
final class BenchCommand {

    /** {@code moe4j bench kernels}. */
    @Command(name = "kernels", mixinStandardHelpOptions = true,
            description = {"Kernel speed next to the machine's own references, measured in one run:",
                    "sgemm GFLOP/s against OpenBLAS, quantized matvec GB/s against memory read bandwidth.",
                    "The full run takes several minutes; run it on a quiet machine."})
    static final class Kernels implements Runnable {

        @Option(names = "--quick", description = "Small shapes, few repeats: a smoke test of a few seconds.")
        boolean quick;

        @Option(names = "--repeat", paramLabel = "N",
                description = "Timed calls per measurement (default 5; 3 with --quick).")
        Integer repeat;

        @Option(names = "--threads", paramLabel = "LIST", defaultValue = "1,2",
                description = "Thread counts, comma-separated (default ${DEFAULT-VALUE}).")
        String threads;

        @Option(names = "--only", paramLabel = "PART",
                description = "Run only these parts, comma-separated: sgemm, quant, bandwidth "
                        + "(quant also measures bandwidth, its reference).")
        String only;

        @Option(names = "--budget", paramLabel = "SECONDS",
                description = "Stop timing a measurement once its timed calls took this long (default 30; 2 with --quick).")
        Double budget;

        @Option(names = "--json", paramLabel = "FILE", description = "Also write the results as JSON to FILE.")
        Path json;

        @Override
        public void run() {
            KernelBench.Config cfg = KernelBench.Config.defaults(quick).withThreads(parseThreads(threads));
            if (repeat != null) {
                if (repeat < 1) throw new UserException("--repeat must be at least 1, got " + repeat, 2);
                cfg = cfg.withRepeat(repeat);
            }
            if (budget != null) {
                if (!(budget > 0)) throw new UserException("--budget must be a positive number of seconds, got " + budget, 2);
                cfg = cfg.withBudget(budget);
            }
            if (only != null) cfg = cfg.withParts(parseParts(only));
            if (json != null && json.getParent() != null && !Files.isDirectory(json.getParent())) {
                throw new UserException("--json: directory does not exist: " + json.getParent(), 2);
            }
            PrintStream out = System.out;
            KernelBench.Report report = KernelBench.run(cfg, out, System.err);
            if (json != null) {
                try {
                    Files.writeString(json, report.toJson(), StandardCharsets.UTF_8);
                } catch (IOException e) {
                    throw new UserException("cannot write " + json + ": " + UserErrors.describe(e));
                }
                out.println();
                out.println("JSON written to " + json);
            }
        }

        static List<Integer> parseThreads(String s) {
            List<Integer> ts = new ArrayList<>();
            for (String part : s.split(",", -1)) {
                String p = part.trim();
                int t;
                try {
                    t = Integer.parseInt(p);
                } catch (NumberFormatException e) {
                    throw new UserException("--threads wants positive integers separated by commas (e.g. 1,2), got '" + s + "'", 2);
                }
                if (t < 1 || t > 1024) throw new UserException("--threads: thread counts must be between 1 and 1024, got " + t, 2);
                if (!ts.contains(t)) ts.add(t);
            }
            return ts;
        }

        static Set<KernelBench.Part> parseParts(String s) {
            EnumSet<KernelBench.Part> parts = EnumSet.noneOf(KernelBench.Part.class);
            for (String part : s.split(",", -1)) {
                String p = part.trim().toUpperCase(Locale.ROOT);
                try {
                    parts.add(KernelBench.Part.valueOf(p));
                } catch (IllegalArgumentException e) {
                    throw new UserException("--only wants sgemm, quant or bandwidth (comma-separated), got '" + part.trim() + "'", 2);
                }
            }
            return parts;
        }
    }

    /** {@code moe4j bench moe-layer}. */
    @Command(name = "moe-layer", mixinStandardHelpOptions = true,
            description = {"The MoE FFN layer, forward and forward+backward, moe4j next to PyTorch's",
                    "loop-over-experts implementation (Debian python3-torch) in the same run:",
                    "T=2048, d=512, E=8 k=2 f=1024 SwiGLU, and E=64 k=8 f=256 with one shared expert."})
    static final class MoeLayerCmd implements Runnable {
        @picocli.CommandLine.Mixin
        TorchPeerOptions o;

        @Override
        public void run() {
            o.validate();
            io.moe4j.bench.MoeLayerBench.run(io.moe4j.bench.MoeLayerBench.defaultShapes(o.quick), o.threads, o.repeat,
                    !o.noTorch, System.out, System.err);
        }
    }

    @Command(name = "train", mixinStandardHelpOptions = true,
            description = {"Training throughput of the whole MoE transformer (forward, backward, clip, AdamW),",
                    "moe4j next to the same model and batch in PyTorch (Debian python3-torch) in the same run."})
    static final class TrainCmd implements Runnable {
        @picocli.CommandLine.Mixin
        TorchPeerOptions o;

        @Override
        public void run() {
            o.validate();
            io.moe4j.bench.TrainBench.run(io.moe4j.bench.TrainBench.defaultShapes(o.quick), o.threads, o.repeat,
                    !o.noTorch, System.out, System.err);
        }
    }

    /** Options shared by the benches that run a PyTorch peer in the same run. */
    static final class TorchPeerOptions {
        @Option(names = "--quick", description = "Small shapes: a smoke test of a few seconds.")
        boolean quick;

        @Option(names = "--threads", paramLabel = "N", defaultValue = "2", description = "Threads for both (default ${DEFAULT-VALUE}).")
        int threads;

        @Option(names = "--repeat", paramLabel = "N", defaultValue = "5", description = "Timed repetitions (default ${DEFAULT-VALUE}).")
        int repeat;

        @Option(names = "--no-torch", description = "Skip the PyTorch peer.")
        boolean noTorch;

        void validate() {
            if (threads < 1) throw new UserException("--threads must be at least 1, got " + threads, 2);
            if (repeat < 1) throw new UserException("--repeat must be at least 1, got " + repeat, 2);
        }
    }
}
