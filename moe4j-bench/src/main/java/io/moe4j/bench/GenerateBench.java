package io.moe4j.bench;

import io.moe4j.infer.Batch;
import io.moe4j.infer.Engine;
import io.moe4j.infer.KvCache;
import io.moe4j.infer.Model;
import io.moe4j.parallel.WorkerPool;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * End-to-end inference speed of a GGUF model, moe4j next to llama.cpp (node-llama-cpp, script
 * {@code /llama/generate_bench.mjs}) in the same run, measured the same way on both sides:
 * <ol>
 *   <li>prompt: {@code promptTokens} ids evaluated as one batch up to the next-token logits;</li>
 *   <li>generation: {@code genTokens} greedy decode steps of one sequence (one forward of one token each);</li>
 *   <li>batched decode: {@code seqs} sequences each given the first 16 prompt ids, then {@code genTokens} steps
 *       decoding all of them together (aggregate tokens/s = seqs · genTokens / time).</li>
 * </ol>
 * One warm-up pass (pages the mapped model in, lets the JIT compile), then {@code repeat} timed passes: min and
 * median. llama.cpp runs at each of its thread counts and is compared at its best (PEERS.md: two threads barely help
 * its decode here). Ids are random but fixed (seed 1), the same for both. Peak RSS of each process
 * (VmHWM / maxRSS, mapped weight pages included). KV cache F16 on both sides by default (llama.cpp's default).
 */
public final class GenerateBench {

    /** What to run. {@code llamaThreads} empty: skip llama.cpp. */
    public record Config(Path model, int promptTokens, int genTokens, int threads, List<Integer> llamaThreads, int repeat,
                         int seqs, KvCache.Type kv) {
        public Config {
            if (promptTokens < 16) throw new IllegalArgumentException("--prompt-tokens must be >= 16, got " + promptTokens);
            if (genTokens < 1) throw new IllegalArgumentException("--gen-tokens must be >= 1, got " + genTokens);
            if (threads < 1) throw new IllegalArgumentException("--threads must be >= 1, got " + threads);
            if (repeat < 1) throw new IllegalArgumentException("--repeat must be >= 1, got " + repeat);
            if (seqs < 1) throw new IllegalArgumentException("--batch-seqs must be >= 1, got " + seqs);
        }
    }

    /** Wall times (ns) of the timed passes of one implementation at one thread count. */
    public record Times(String who, int threads, long[] prompt, long[] gen, long[] batch, long peakRssKb) {
        double promptMedianTps(int n) { return n / (median(prompt) * 1e-9); }
        double promptBestTps(int n) { return n / (min(prompt) * 1e-9); }
        double genMedianTps(int n) { return n / (median(gen) * 1e-9); }
        double genBestTps(int n) { return n / (min(gen) * 1e-9); }
        double batchMedianTps(int n) { return n / (median(batch) * 1e-9); }
        double batchBestTps(int n) { return n / (min(batch) * 1e-9); }
    }

    public record Report(Config config, Times moe4j, List<Times> llama, String note) {
        /** The llama.cpp run with the best median of {@code metric}, or null. */
        Times bestLlama(java.util.function.ToDoubleFunction<Times> metric) {
            Times best = null;
            for (Times t : llama) if (best == null || metric.applyAsDouble(t) > metric.applyAsDouble(best)) best = t;
            return best;
        }

        public String toJson() {
            Map<String, Object> o = new LinkedHashMap<>();
            Config c = config;
            o.put("model", c.model().toString());
            o.put("promptTokens", c.promptTokens());
            o.put("genTokens", c.genTokens());
            o.put("batchSeqs", c.seqs());
            o.put("repeat", c.repeat());
            o.put("kv", c.kv().name());
            List<Object> runs = new ArrayList<>();
            runs.add(json(moe4j));
            for (Times t : llama) runs.add(json(t));
            o.put("runs", runs);
            if (note != null) o.put("note", note);
            return Json.write(o);
        }

        private Map<String, Object> json(Times t) {
            Config c = config;
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("impl", t.who());
            m.put("threads", t.threads());
            m.put("promptTpsMedian", t.promptMedianTps(c.promptTokens()));
            m.put("promptTpsBest", t.promptBestTps(c.promptTokens()));
            m.put("genTpsMedian", t.genMedianTps(c.genTokens()));
            m.put("genTpsBest", t.genBestTps(c.genTokens()));
            m.put("batchTpsMedian", t.batchMedianTps(c.genTokens() * c.seqs()));
            m.put("batchTpsBest", t.batchBestTps(c.genTokens() * c.seqs()));
            m.put("peakRssMb", t.peakRssKb() / 1024.0);
            return m;
        }
    }

    private GenerateBench() {}

    public static Report run(Config c, PrintStream out, PrintStream err) throws IOException {
        int vocab;
        int[] prompt;
        Times mine;
        try (Model m = Model.open(c.model()); WorkerPool pool = new WorkerPool(c.threads())) {
            vocab = m.hyperParams().vocab();
            prompt = new SplittableRandom(1).ints(c.promptTokens(), 0, vocab).toArray();
            err.printf(Locale.ROOT, "moe4j: %s, %d threads, %d timed passes...%n", c.model().getFileName(), c.threads(), c.repeat());
            mine = moe4j(m, pool, c, prompt);
        }
        List<Times> llama = new ArrayList<>();
        String note = null;
        if (!c.llamaThreads().isEmpty()) {
            try {
                err.printf(Locale.ROOT, "llama.cpp: threads %s...%n", c.llamaThreads());
                llama = llama(c, prompt);
            } catch (IOException e) {
                note = "llama.cpp not measured: " + e.getMessage();
                err.println(note);
            }
        }
        Report r = new Report(c, mine, llama, note);
        print(r, out);
        return r;
    }

    static Times moe4j(Model m, WorkerPool pool, Config c, int[] prompt) {
        int shortLen = 16, seqs = c.seqs();
        int ctx = Math.max(prompt.length, shortLen) + c.genTokens() + 8;
        Engine.Options o = Engine.Options.defaults().withMaxBatch(Math.max(prompt.length, shortLen * seqs))
                .withSlots(seqs).withContextLength(ctx).withKvType(c.kv()).withMaxOutputs(seqs);
        long[] tp = new long[c.repeat()], tg = new long[c.repeat()], tb = new long[c.repeat()];
        try (Engine e = new Engine(m, pool, o)) {
            float[] logits = new float[e.vocab()];
            Batch b = e.newBatch();
            int[] toks = new int[seqs];
            for (int pass = 0; pass <= c.repeat(); pass++) {
                for (int s = 0; s < seqs; s++) e.cache().clear(s);
                long t0 = System.nanoTime();
                int tok = argmax(e.evaluate(0, prompt));   // chunks of maxBatch ≥ prompt: one forward
                long t1 = System.nanoTime();
                for (int i = 0; i < c.genTokens(); i++) {
                    b.clear().add(tok, 0, true);
                    e.forward(b);
                    tok = argmax(e.logits(0, logits));
                }
                long t2 = System.nanoTime();

                e.cache().clear(0);
                b.clear();
                for (int s = 0; s < seqs; s++) for (int i = 0; i < shortLen; i++) b.add(prompt[i], s, i == shortLen - 1);
                e.forward(b);
                for (int s = 0; s < seqs; s++) toks[s] = argmax(e.logits(s, logits));
                long t3 = System.nanoTime();
                for (int i = 0; i < c.genTokens(); i++) {
                    b.clear();
                    for (int s = 0; s < seqs; s++) b.add(toks[s], s, true);
                    e.forward(b);
                    for (int s = 0; s < seqs; s++) toks[s] = argmax(e.logits(s, logits));
                }
                long t4 = System.nanoTime();
                if (pass > 0) {
                    tp[pass - 1] = t1 - t0;
                    tg[pass - 1] = t2 - t1;
                    tb[pass - 1] = t4 - t3;
                }
            }
        }
        return new Times("moe4j", c.threads(), tp, tg, tb, peakRssKb());
    }

    static List<Times> llama(Config c, int[] prompt) throws IOException {
        Path modules = nodeModules();
        if (modules == null) throw new IOException("no peers/node/node_modules/node-llama-cpp found (run dev/setup-peers)");
        Path dir = Files.createTempDirectory("moe4j-genbench");
        try {
            Path script = dir.resolve("generate_bench.mjs");
            try (InputStream in = GenerateBench.class.getResourceAsStream("/llama/generate_bench.mjs")) {
                if (in == null) throw new IOException("missing resource llama/generate_bench.mjs");
                Files.copy(in, script);
            }
            Path outJson = dir.resolve("out.json");
            String ids = Arrays.stream(prompt).mapToObj(Integer::toString).collect(Collectors.joining(","));
            String threads = c.llamaThreads().stream().map(String::valueOf).collect(Collectors.joining(","));
            Process p = new ProcessBuilder("node", script.toString(), modules.toString(), c.model().toAbsolutePath().toString(),
                    outJson.toString(), threads, ids, "" + c.genTokens(), "" + c.repeat(), "" + c.seqs())
                    .redirectErrorStream(true).start();
            String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(60, TimeUnit.MINUTES)) {
                p.destroyForcibly();
                throw new IOException("llama.cpp timed out");
            }
            if (p.exitValue() != 0) throw new IOException("llama.cpp failed (exit " + p.exitValue() + "): " + log.strip());
            String json = Files.readString(outJson);
            long rss = Long.parseLong(group(json, "\"maxRssKb\":(\\d+)"));
            List<Times> out = new ArrayList<>();
            for (int t : c.llamaThreads()) {
                String block = group(json, "\"" + t + "\":\\{(.*?)}");
                out.add(new Times("llama.cpp", t, longs(block, "prompt"), longs(block, "gen"), longs(block, "batch"), rss));
            }
            return out;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted");
        } finally {
            try (var files = Files.list(dir)) {
                for (Path f : files.toList()) Files.deleteIfExists(f);
            }
            Files.deleteIfExists(dir);
        }
    }

    private static String group(String s, String regex) throws IOException {
        Matcher m = Pattern.compile(regex).matcher(s);
        if (!m.find()) throw new IOException("unexpected llama.cpp output: " + s);
        return m.group(1);
    }

    private static long[] longs(String block, String key) throws IOException {
        String list = group(block, "\"" + key + "\":\\[([0-9,]*)]");
        return Arrays.stream(list.split(",")).mapToLong(Long::parseLong).toArray();
    }

    /** peers/node/node_modules above the working directory, or -Dmoe4j.llama.nodeModules. */
    static Path nodeModules() {
        String explicit = System.getProperty("moe4j.llama.nodeModules");
        if (explicit != null) {
            Path p = Path.of(explicit).toAbsolutePath();
            return Files.isDirectory(p.resolve("node-llama-cpp")) ? p : null;
        }
        for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
            Path p = dir.resolve("peers").resolve("node").resolve("node_modules");
            if (Files.isDirectory(p.resolve("node-llama-cpp"))) return p;
        }
        return null;
    }

    /** Peak resident set of this process (kB), from /proc/self/status; -1 where there is none. */
    static long peakRssKb() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmHWM:")) return Long.parseLong(line.replaceAll("\\D", ""));
            }
        } catch (IOException | NumberFormatException ignored) {
            // not Linux
        }
        return -1;
    }

    private static int argmax(float[] x) {
        int best = 0;
        for (int i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
        return best;
    }

    static long min(long[] a) { return Arrays.stream(a).min().orElse(0); }

    static double median(long[] a) {
        long[] s = a.clone();
        Arrays.sort(s);
        int n = s.length;
        return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2.0;
    }

    static void print(Report r, PrintStream out) {
        Config c = r.config();
        int np = c.promptTokens(), ng = c.genTokens(), nb = c.genTokens() * c.seqs();
        out.printf(Locale.ROOT, "%n%s: prompt %d, generate %d, batched decode %d x %d, %d timed passes, KV %s%n",
                c.model().getFileName(), np, ng, c.seqs(), ng, c.repeat(), c.kv());
        Table t = new Table("impl", "threads", "prompt tok/s (median / best)", "generate tok/s", "batched x" + c.seqs() + " tok/s", "peak RSS MB");
        List<Times> all = new ArrayList<>();
        all.add(r.moe4j());
        all.addAll(r.llama());
        for (Times x : all) {
            t.add(x.who(), "" + x.threads(),
                    String.format(Locale.ROOT, "%.1f / %.1f", x.promptMedianTps(np), x.promptBestTps(np)),
                    String.format(Locale.ROOT, "%.2f / %.2f", x.genMedianTps(ng), x.genBestTps(ng)),
                    String.format(Locale.ROOT, "%.2f / %.2f", x.batchMedianTps(nb), x.batchBestTps(nb)),
                    String.format(Locale.ROOT, "%.0f", x.peakRssKb() / 1024.0));
        }
        t.print(out);
        if (!r.llama().isEmpty()) {
            Times m = r.moe4j();
            Times bp = r.bestLlama(x -> x.promptMedianTps(np)), bg = r.bestLlama(x -> x.genMedianTps(ng)), bb = r.bestLlama(x -> x.batchMedianTps(nb));
            out.printf(Locale.ROOT, "moe4j / llama.cpp at its best thread count (medians): prompt %.2fx (llama %d thr), generate %.2fx (%d thr), batched %.2fx (%d thr)%n",
                    m.promptMedianTps(np) / bp.promptMedianTps(np), bp.threads(), m.genMedianTps(ng) / bg.genMedianTps(ng), bg.threads(),
                    m.batchMedianTps(nb) / bb.batchMedianTps(nb), bb.threads());
        }
        if (r.note() != null) out.println(r.note());
    }
}
