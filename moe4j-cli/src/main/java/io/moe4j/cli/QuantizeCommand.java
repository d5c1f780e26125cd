package io.moe4j.cli;

import io.moe4j.gguf.GgufFile;
import io.moe4j.gguf.GgufFormatException;
import io.moe4j.gguf.GgufQuantizer;
import io.moe4j.gguf.GgmlType;
import io.moe4j.parallel.WorkerPool;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * {@code moe4j quantize IN.gguf OUT.gguf --type Q4_K [--override 'attn_.*=Q8_0']}: re-encodes a model's weight
 * matrices (rules in {@link GgufQuantizer}), showing the plan by type and a progress line, then the size change.
 * The output is written atomically: an interrupted run leaves no partial file.
 */
@Command(name = "quantize", mixinStandardHelpOptions = true,
        description = {"Convert a GGUF model's weight matrices to another type (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K,",
                "or the Q4_K_M mix). Norms, biases and the expert router stay as they are."},
        footer = {"", "Examples:",
                "  moe4j quantize model-f16.gguf model-q8.gguf --type Q8_0",
                "  moe4j quantize model-f16.gguf model-q4.gguf --type Q4_K --override 'attn_.*=Q8_0' --override 'output\\.weight=Q6_K'"})
final class QuantizeCommand implements Runnable {

    @Parameters(index = "0", paramLabel = "IN.gguf", description = "Source model.")
    Path in;

    @Parameters(index = "1", paramLabel = "OUT.gguf", description = "Where to write the converted model (replaced atomically).")
    Path out;

    @Option(names = {"-t", "--type"}, required = true, paramLabel = "TYPE",
            description = "Target type of the weight matrices: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K or Q4_K_M.")
    String type;

    @Option(names = "--override", paramLabel = "REGEX=TYPE",
            description = "Per-tensor type: tensors whose name matches REGEX get TYPE (first match wins; repeatable), e.g. 'ffn_.*_exps=Q4_K'.")
    List<String> overrides = new ArrayList<>();

    @Option(names = "--allow-requantize", description = "Allow converting tensors that are already quantized (precision is lost twice).")
    boolean allowRequantize;

    @Option(names = "--threads", paramLabel = "N", description = "Worker threads (default: all cores).")
    Integer threads;

    @Option(names = "--dry-run", description = "Print the plan only; write nothing.")
    boolean dryRun;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        PrintWriter o = spec.commandLine().getOut();
        GgufQuantizer q;
        try {
            List<GgufQuantizer.Override> rules = new ArrayList<>();
            for (String s : overrides) rules.add(GgufQuantizer.Override.parse(s));
            q = new GgufQuantizer(GgufQuantizer.Target.parse(type), rules, allowRequantize);
        } catch (IllegalArgumentException e) {
            throw new UserException(e.getMessage(), 2);
        }
        if (!Files.isRegularFile(in)) throw new UserException("no such file: " + in);
        Path outAbs = out.toAbsolutePath();
        if (outAbs.getParent() != null && !Files.isDirectory(outAbs.getParent())) {
            throw new UserException("output directory does not exist: " + outAbs.getParent());
        }
        try {
            if (Files.exists(out) && Files.isSameFile(in, out)) throw new UserException("input and output are the same file: " + in);
        } catch (IOException e) {
            throw new UserException("cannot read " + out + ": " + e.getMessage());
        }
        try (GgufFile g = GgufFile.open(in)) {
            List<GgufQuantizer.Step> plan;
            try {
                plan = q.plan(g);
            } catch (IllegalArgumentException e) {
                throw new UserException(e.getMessage());
            }
            printPlan(o, plan);
            if (dryRun) return;
            long total = GgufQuantizer.sizes(plan).get("in");
            long t0 = System.nanoTime();
            boolean tty = System.console() != null;
            long[] lastDraw = {0};
            try (WorkerPool pool = new WorkerPool(threads != null ? threads : WorkerPool.defaultThreads())) {
                q.write(g, plan, out, pool, done -> {
                    long now = System.nanoTime();
                    if (done < total && now - lastDraw[0] < (tty ? 200_000_000L : 5_000_000_000L)) return;
                    lastDraw[0] = now;
                    double s = (now - t0) / 1e9;
                    String line = String.format(Locale.ROOT, "%s %5.1f%%  %s / %s  %.0f MB/s", bar(done, total),
                            100.0 * done / Math.max(1, total), mb(done), mb(total), done / 1e6 / Math.max(1e-9, s));
                    System.err.print(tty ? "\r" + line : line + "\n");
                    System.err.flush();
                });
            }
            if (tty) System.err.println();
            Map<String, Long> sz = GgufQuantizer.sizes(plan);
            o.printf(Locale.ROOT, "wrote %s: %s -> %s (%.2fx smaller) in %.1f s%n", out, mb(sz.get("in")), mb(sz.get("out")),
                    (double) sz.get("in") / Math.max(1, sz.get("out")), (System.nanoTime() - t0) / 1e9);
        } catch (GgufFormatException e) {
            throw new UserException("not a valid GGUF file: " + e.getMessage());
        } catch (IOException e) {
            throw new UserException("cannot convert " + in + ": " + e.getMessage());
        }
    }

    private static void printPlan(PrintWriter o, List<GgufQuantizer.Step> plan) {
        Map<GgmlType, Integer> before = new EnumMap<>(GgmlType.class), after = new EnumMap<>(GgmlType.class);
        int converted = 0;
        for (GgufQuantizer.Step s : plan) {
            before.merge(s.source().type(), 1, Integer::sum);
            after.merge(s.target(), 1, Integer::sum);
            if (s.converts()) converted++;
        }
        o.printf("%d tensors: %s -> %s; %d converted%n", plan.size(), before, after, converted);
        for (GgufQuantizer.Step s : plan) {
            if (s.why().startsWith("override") || s.why().startsWith("rows of")) {
                o.printf("  %-40s %s -> %s (%s)%n", s.source().name(), s.source().type(), s.target(), s.why());
            }
        }
        o.flush();
    }

    private static String bar(long done, long total) {
        int w = 24, f = (int) (w * done / Math.max(1, total));
        return "[" + "#".repeat(f) + " ".repeat(w - f) + "]";
    }

    private static String mb(long bytes) {
        return String.format(Locale.ROOT, "%.1f MB", bytes / 1e6);
    }
}
