package io.moe4j.cli;

import io.moe4j.gguf.GgufFormatException;
import io.moe4j.infer.Engine;
import io.moe4j.infer.ExpertObserver;
import io.moe4j.infer.ExpertStats;
import io.moe4j.infer.ExpertTrace;
import io.moe4j.infer.KvCache;
import io.moe4j.infer.Model;
import io.moe4j.infer.ModelFormatException;
import io.moe4j.infer.MoeOptions;
import io.moe4j.infer.Sampler;
import io.moe4j.infer.tokenizer.GgufTokenizers;
import io.moe4j.parallel.WorkerPool;
import io.moe4j.tokenizer.Tokenizer;
import picocli.CommandLine.Option;

import java.io.BufferedWriter;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The options {@code run} and {@code chat} share (a picocli mixin): sampling, limits, engine and MoE controls;
 * {@link #open} validates them and loads everything a generation needs into a {@link Session}.
 */
final class InferenceOptions {

    @Option(names = {"-n", "--max-tokens"}, paramLabel = "N", defaultValue = "256", description = "Tokens to generate (per reply in chat; default ${DEFAULT-VALUE}).")
    int maxTokens;

    @Option(names = "--temperature", paramLabel = "T", defaultValue = "0.8", description = "Sampling temperature; 0 = greedy (default ${DEFAULT-VALUE}).")
    float temperature;

    @Option(names = "--top-k", paramLabel = "K", defaultValue = "40", description = "Keep the K most likely tokens; 0 = all (default ${DEFAULT-VALUE}).")
    int topK;

    @Option(names = "--top-p", paramLabel = "P", defaultValue = "0.95", description = "Nucleus: smallest set reaching probability P; 1 = off (default ${DEFAULT-VALUE}).")
    float topP;

    @Option(names = "--min-p", paramLabel = "P", defaultValue = "0.05", description = "Drop tokens below P x the top probability; 0 = off (default ${DEFAULT-VALUE}).")
    float minP;

    @Option(names = "--repeat-penalty", paramLabel = "X", defaultValue = "1.0", description = "Repetition penalty; 1 = off (default ${DEFAULT-VALUE}).")
    float repeatPenalty;

    @Option(names = "--repeat-last-n", paramLabel = "N", defaultValue = "64", description = "Tokens the repetition penalty looks back over (default ${DEFAULT-VALUE}).")
    int repeatLastN;

    @Option(names = "--seed", paramLabel = "N", description = "Sampling seed (default: random).")
    Long seed;

    @Option(names = "--stop", paramLabel = "TEXT", description = "Stop when the output contains TEXT (repeatable).")
    List<String> stops = new ArrayList<>();

    @Option(names = "--ignore-eos", description = "Do not stop at end-of-sequence / end-of-turn tokens.")
    boolean ignoreEos;

    @Option(names = {"-t", "--threads"}, paramLabel = "N", description = "Worker threads (default: available processors).")
    Integer threads;

    @Option(names = "--kv", paramLabel = "TYPE", defaultValue = "f32", description = "KV cache type: f32 or f16 (default ${DEFAULT-VALUE}).")
    String kv;

    @Option(names = {"-c", "--ctx-size"}, paramLabel = "N", defaultValue = "0", description = {"Context length; 0 = the model's, at most 4096.",
            "The KV cache starts at 256 positions and doubles as the text grows, so a large value costs memory only when used."})
    int ctxSize;

    @Option(names = "--no-repack", description = {"Compute with Q8_0/Q4_0 weights where they are in the file (memory-mapped, no copy)",
            "instead of repacking them at load into 16-row groups (AVX-512): less memory and a faster start, slower matmuls."})
    boolean noRepack;

    @Option(names = "--batch", paramLabel = "N", defaultValue = "256", description = "Prompt tokens evaluated together (default ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--experts-per-token", paramLabel = "N", description = "MoE: route each token to N experts instead of the model's top-k.")
    Integer expertsPerToken;

    @Option(names = "--skip-experts", paramLabel = "BETA", defaultValue = "0", description = {"MoE: drop a chosen expert whose gate is below BETA x the top gate,",
            "renormalising as the model family does (0 = off, 1 = top-1)."})
    float skipBeta;

    @Option(names = "--trace-experts", paramLabel = "FILE.jsonl", description = "MoE: write each token's chosen experts and weights per layer as JSON lines.")
    Path traceFile;

    @Option(names = "--expert-stats", description = "MoE: print per-layer expert usage at the end (stderr).")
    boolean expertStats;

    /** Everything a generation needs, opened from the options; close it to release the model and threads. */
    static final class Session implements AutoCloseable {
        final Model model;
        final WorkerPool pool;
        final Engine engine;
        final Tokenizer tokenizer;
        final Sampler sampler;
        final int[] stopIds;
        final ExpertStats stats;       // null unless --expert-stats
        private final ExpertTrace trace;
        private final BufferedWriter traceOut;
        private final Path traceTmp, traceFile;

        private Session(Model model, WorkerPool pool, Engine engine, Tokenizer tokenizer, Sampler sampler, int[] stopIds,
                        ExpertStats stats, ExpertTrace trace, BufferedWriter traceOut, Path traceTmp, Path traceFile) {
            this.model = model;
            this.pool = pool;
            this.engine = engine;
            this.tokenizer = tokenizer;
            this.sampler = sampler;
            this.stopIds = stopIds;
            this.stats = stats;
            this.trace = trace;
            this.traceOut = traceOut;
            this.traceTmp = traceTmp;
            this.traceFile = traceFile;
        }

        /** Finishes the trace file (renamed into place only now, so it is never left half-written). */
        void finishTrace() throws IOException {
            if (trace == null) return;
            traceOut.close();
            Files.move(traceTmp, traceFile, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        }

        @Override
        public void close() {
            engine.close();
            pool.close();
            model.close();
            if (traceOut != null) {
                try {
                    traceOut.close();
                    Files.deleteIfExists(traceTmp);   // still there: the run failed before finishTrace
                } catch (IOException ignored) {
                    // best effort
                }
            }
        }
    }

    Session open(Path file) {
        if (maxTokens < 0) throw new UserException("--max-tokens must be >= 0, got " + maxTokens);
        if (threads != null && threads < 1) throw new UserException("--threads must be >= 1, got " + threads);
        if (batch < 1) throw new UserException("--batch must be >= 1, got " + batch);
        if (ctxSize < 0) throw new UserException("--ctx-size must be >= 0, got " + ctxSize);
        if (expertsPerToken != null && expertsPerToken < 1) throw new UserException("--experts-per-token must be >= 1, got " + expertsPerToken);
        if (!(skipBeta >= 0 && skipBeta <= 1)) throw new UserException("--skip-experts must be in [0, 1], got " + skipBeta);
        KvCache.Type kvType = switch (kv.toLowerCase(Locale.ROOT)) {
            case "f32" -> KvCache.Type.F32;
            case "f16" -> KvCache.Type.F16;
            default -> throw new UserException("--kv must be f32 or f16, got '" + kv + "'");
        };
        Sampler.Params params;
        try {
            params = new Sampler.Params(temperature, topK, topP, minP, repeatPenalty, repeatLastN,
                    seed != null ? seed : System.nanoTime());
        } catch (IllegalArgumentException e) {
            throw new UserException("sampling options: " + e.getMessage());
        }
        if (!Files.exists(file)) throw new UserException("no such file: " + file);
        if (Files.isDirectory(file)) throw new UserException(file + " is a directory, not a GGUF file");

        Model model;
        try {
            boolean repack = !noRepack && Model.repackByDefault();
            LoadReporter reporter = new LoadReporter(System.err, file.getFileName().toString(), repack);
            model = Model.open(file, repack, reporter);
            reporter.done(model.repackedBytes());
        } catch (GgufFormatException e) {
            throw new UserException("not a valid GGUF file: " + e.getMessage());
        } catch (ModelFormatException e) {
            throw new UserException(e.getMessage());
        } catch (IOException e) {
            throw new UserException("cannot read " + file + ": " + e.getMessage());
        }
        WorkerPool pool = null;
        Engine engine = null;
        BufferedWriter traceOut = null;
        Path traceTmp = null;
        try {
            Tokenizer tok;
            try {
                tok = GgufTokenizers.load(model.gguf());
            } catch (IllegalArgumentException e) {
                throw new UserException("cannot load the tokenizer: " + e.getMessage());
            }
            boolean moe = model.hyperParams().moe();
            if (!moe && (expertsPerToken != null || skipBeta > 0 || traceFile != null || expertStats)) {
                throw new UserException(file + " is a dense model: --experts-per-token, --skip-experts, --trace-experts and --expert-stats need an MoE model");
            }
            ExpertStats stats = expertStats ? new ExpertStats(model.hyperParams().layers(), model.hyperParams().experts()) : null;
            ExpertTrace trace = null;
            if (traceFile != null) {
                Path abs = traceFile.toAbsolutePath();
                if (abs.getParent() != null && !Files.isDirectory(abs.getParent())) throw new UserException("--trace-experts: no such directory: " + abs.getParent());
                traceTmp = abs.resolveSibling(abs.getFileName() + ".tmp");
                traceOut = Files.newBufferedWriter(traceTmp, StandardCharsets.UTF_8);
                trace = new ExpertTrace(traceOut);
            }
            MoeOptions mo = new MoeOptions(expertsPerToken == null ? 0 : expertsPerToken, skipBeta, ExpertObserver.both(trace, stats));
            pool = new WorkerPool(threads != null ? threads : WorkerPool.defaultThreads());
            try {
                engine = new Engine(model, pool, Engine.Options.defaults().withMaxBatch(batch).withContextLength(ctxSize)
                        .withKvType(kvType).withMaxOutputs(1).withMoe(mo));
            } catch (IllegalArgumentException e) {
                throw new UserException(e.getMessage());
            }
            if (tok.vocabSize() > engine.vocab()) {
                throw new UserException(file + ": the tokenizer has " + tok.vocabSize() + " tokens but the model's output only " + engine.vocab());
            }
            List<Integer> stopList = new ArrayList<>();
            if (!ignoreEos) {
                stopList.addAll(tok.stopTokens());
                if (tok.eos() >= 0 && !stopList.contains(tok.eos())) stopList.add(tok.eos());
            }
            int[] stopIds = stopList.stream().mapToInt(Integer::intValue).toArray();
            return new Session(model, pool, engine, tok, new Sampler(params, engine.vocab()), stopIds, stats, trace, traceOut, traceTmp, traceFile);
        } catch (RuntimeException | IOException e) {
            if (engine != null) engine.close();
            if (pool != null) pool.close();
            model.close();
            try {
                if (traceOut != null) traceOut.close();
                if (traceTmp != null) Files.deleteIfExists(traceTmp);
            } catch (IOException ignored) {
                // best effort
            }
            if (e instanceof IOException io) throw new UserException("--trace-experts: cannot write " + traceFile + ": " + io.getMessage());
            throw (RuntimeException) e;
        }
    }

    /** "N tokens in X ms (Y tokens/s)". */
    static String rate(int tokens, long nanos) {
        double ms = nanos / 1e6;
        return String.format(Locale.ROOT, "%d tokens in %.1f ms (%.2f tokens/s)", tokens, ms, tokens == 0 || nanos == 0 ? 0 : tokens / (nanos / 1e9));
    }

    static void printStats(PrintStream err, Session s) {
        if (s.stats != null) err.print(s.stats.summary());
    }
}
