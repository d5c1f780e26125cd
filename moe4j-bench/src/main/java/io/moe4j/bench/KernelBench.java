package io.moe4j.bench;

import io.moe4j.kernel.Kernels;
import io.moe4j.kernel.gemm.Gemm;
import io.moe4j.kernel.quant.QuantMatmul;
import io.moe4j.parallel.WorkerPool;
import io.moe4j.tensor.DType;
import io.moe4j.tensor.quant.RowGroups;

import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;

/**
 * {@code moe4j bench kernels}: moe4j's compute kernels next to the machine's own limits, measured in one run.
 *
 * <ul>
 *   <li>Memory read bandwidth ({@link MemoryBandwidth}) with 1..T threads — the ceiling of memory-bound kernels.</li>
 *   <li>SGEMM GFLOP/s at 1024³, 2048³ and the MoE expert shape 64×2048×1024 (NT = linear forward; NN and TN too
 *       for the expert shape), moe4j ({@link Kernels#get()}) against OpenBLAS {@code cblas_sgemm} at the same
 *       thread count, with the ratio and the largest relative difference between their results.</li>
 *   <li>Quantized matvec GB/s (weight bytes per second) for Q8_0 and Q4_0 at 4096×4096 and at the stacked-expert
 *       shape 65536×2048, F16 and BF16 at 4096×4096, as a fraction of the read bandwidth at the same thread count.
 *       The weights are cycled over enough copies (≥ 512 MiB) that every call streams them from DRAM, as in
 *       real decoding, rather than from a warm last-level cache.</li>
 * </ul>
 * Each measurement warms up, then times {@code repeat} calls and reports the best and the median (see
 * {@link Stats}). A kernel that throws {@link UnsupportedOperationException} is reported as "not available".
 *
 * <p>Non-goals: no end-to-end model speed (later {@code bench moe-layer} / {@code bench generate}), no
 * statistical tests; run it on a quiet machine, the numbers of a shared one move by ±20 %.
 */
public final class KernelBench {

    /** The parts of the benchmark that can be selected with {@code --only}. */
    public enum Part { SGEMM, QUANT, BANDWIDTH }

    /**
     * What to run.
     *
     * @param quick         small shapes and few repeats: a smoke test of a few seconds
     * @param repeat        timed calls per measurement
     * @param warmupSeconds untimed calls before timing (at least one)
     * @param budgetSeconds stop timing a measurement early once its timed calls took this long
     * @param threads       thread counts to measure, each for moe4j, OpenBLAS and the bandwidth test
     * @param parts         what to measure ({@code QUANT} also measures {@code BANDWIDTH}, its reference)
     */
    public record Config(boolean quick, int repeat, double warmupSeconds, double budgetSeconds,
                         List<Integer> threads, Set<Part> parts) {
        public Config {
            if (repeat < 1) throw new IllegalArgumentException("repeat must be >= 1, got " + repeat);
            if (threads.isEmpty()) throw new IllegalArgumentException("no thread counts given");
            for (int t : threads) if (t < 1) throw new IllegalArgumentException("thread counts must be >= 1, got " + t);
            if (parts.isEmpty()) throw new IllegalArgumentException("nothing to run");
            threads = List.copyOf(threads);
            parts = parts.contains(Part.QUANT) ? union(parts, Part.BANDWIDTH) : Set.copyOf(parts);
        }

        /** The full run ({@code quick = false}) or the smoke test, on 1 and 2 threads, all parts. */
        public static Config defaults(boolean quick) {
            return new Config(quick, quick ? 3 : 5, quick ? 0.05 : 0.5, quick ? 2 : 30,
                    List.of(1, 2), EnumSet.allOf(Part.class));
        }

        public Config withRepeat(int r) { return new Config(quick, r, warmupSeconds, budgetSeconds, threads, parts); }
        public Config withThreads(List<Integer> t) { return new Config(quick, repeat, warmupSeconds, budgetSeconds, t, parts); }
        public Config withParts(Set<Part> p) { return new Config(quick, repeat, warmupSeconds, budgetSeconds, threads, p); }
        public Config withBudget(double s) { return new Config(quick, repeat, warmupSeconds, s, threads, parts); }

        Stats.Plan plan() { return new Stats.Plan(warmupSeconds, repeat, budgetSeconds); }

        private static Set<Part> union(Set<Part> s, Part p) {
            EnumSet<Part> u = EnumSet.copyOf(s);
            u.add(p);
            return Set.copyOf(u);
        }
    }

    /** A GEMM shape and form: NT is {@code C = A·Bᵀ}, NN {@code C = A·B}, TN {@code C = Aᵀ·B}. */
    public record GemmCase(String kind, String form, int m, int k, int n) {
        boolean transA() { return form.charAt(0) == 'T'; }
        boolean transB() { return form.charAt(1) == 'T'; }
        int lda() { return transA() ? m : k; }
        int ldb() { return transB() ? k : n; }
        double flops() { return 2.0 * m * n * k; }
        String shape() { return m + "x" + k + "x" + n; }
    }

    /**
     * A weight matrix of {@code rows × k} elements in {@code type}, multiplied by {@code n} F32 vectors (n = 1: a
     * matvec, one decode step; n = 2..8: a batched decode step whose tokens chose the same expert).
     */
    public record QuantCase(DType type, String kind, int rows, int k, int n) {
        public QuantCase(DType type, String kind, int rows, int k) {
            this(type, kind, rows, k, 1);
        }

        long weightBytes() { return type.byteSize((long) rows * k); }
        String shape() { return rows + "x" + k + (n > 1 ? " N=" + n : ""); }
    }

    public record BandwidthResult(int threads, long bufferBytes, Stats stats) {
        public double bestBytesPerSecond() { return stats.best(bufferBytes); }
    }

    /** {@code moe4j} null with {@code moe4jNote} saying why; {@code blas} null when OpenBLAS is absent. */
    public record GemmResult(GemmCase c, int threads, Stats moe4j, String moe4jNote, Stats blas, double maxRelDiff) {}

    /** One timed call is one pass over {@code copies} copies of the weights. */
    public record QuantResult(QuantCase c, int threads, int copies, Stats moe4j, String note) {}

    /** Everything one run measured. */
    public record Report(Machine machine, String openblas, Config config, List<BandwidthResult> bandwidth,
                         List<GemmResult> gemm, List<QuantResult> quant) {

        /** The report as JSON (times in seconds, throughputs in GFLOP/s and GB/s). */
        public String toJson() {
            Map<String, Object> root = new LinkedHashMap<>();
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("cpu", machine.cpu());
            m.put("simd_flags", machine.simdFlags());
            m.put("cores", machine.cores());
            m.put("jvm", machine.jvm());
            m.put("kernels", machine.kernels());
            m.put("kernels_reason", machine.kernelReason());
            m.put("vector_bits", machine.vectorBits());
            m.put("gemm", machine.gemm());
            m.put("quant", machine.quant());
            root.put("machine", m);
            root.put("openblas", openblas);
            Map<String, Object> s = new LinkedHashMap<>();
            s.put("quick", config.quick());
            s.put("repeat", config.repeat());
            s.put("warmup_seconds", config.warmupSeconds());
            s.put("budget_seconds", config.budgetSeconds());
            s.put("threads", config.threads());
            s.put("parts", config.parts().stream().map(p -> p.name().toLowerCase(Locale.ROOT)).sorted().toList());
            root.put("settings", s);

            List<Object> bw = new ArrayList<>();
            for (BandwidthResult r : bandwidth) {
                Map<String, Object> e = new LinkedHashMap<>();
                e.put("threads", r.threads());
                e.put("buffer_bytes", r.bufferBytes());
                timing(e, "", r.stats(), r.bufferBytes(), 1e9, "gbps");
                bw.add(e);
            }
            root.put("bandwidth", bw);

            List<Object> gm = new ArrayList<>();
            for (GemmResult r : gemm) {
                Map<String, Object> e = new LinkedHashMap<>();
                e.put("kind", r.c().kind());
                e.put("form", r.c().form());
                e.put("m", r.c().m());
                e.put("k", r.c().k());
                e.put("n", r.c().n());
                e.put("n", r.c().n());
                e.put("threads", r.threads());
                if (r.moe4j() != null) timing(e, "moe4j_", r.moe4j(), r.c().flops(), 1e9, "gflops");
                else e.put("moe4j_note", r.moe4jNote());
                if (r.blas() != null) timing(e, "openblas_", r.blas(), r.c().flops(), 1e9, "gflops");
                if (r.moe4j() != null && r.blas() != null) {
                    e.put("ratio_best", r.moe4j().best(1) / r.blas().best(1));
                    e.put("ratio_median", r.moe4j().median(1) / r.blas().median(1));
                    e.put("max_rel_diff", r.maxRelDiff());
                }
                gm.add(e);
            }
            root.put("sgemm", gm);

            List<Object> qm = new ArrayList<>();
            for (QuantResult r : quant) {
                Map<String, Object> e = new LinkedHashMap<>();
                e.put("type", r.c().type().name());
                e.put("kind", r.c().kind());
                e.put("rows", r.c().rows());
                e.put("k", r.c().k());
                e.put("n", r.c().n());
                e.put("threads", r.threads());
                e.put("weight_bytes", r.c().weightBytes());
                e.put("copies", r.copies());
                if (r.moe4j() != null) {
                    timing(e, "moe4j_", r.moe4j(), (double) r.c().weightBytes() * r.copies(), 1e9, "gbps");
                    BandwidthResult b = bandwidthFor(r.threads());
                    if (b != null) {
                        e.put("read_bandwidth_gbps", b.bestBytesPerSecond() / 1e9);
                        e.put("ratio_best", r.moe4j().best((double) r.c().weightBytes() * r.copies()) / b.bestBytesPerSecond());
                    }
                } else {
                    e.put("moe4j_note", r.note());
                }
                qm.add(e);
            }
            root.put("quant", qm);
            return Json.write(root);
        }

        BandwidthResult bandwidthFor(int threads) {
            for (BandwidthResult b : bandwidth) if (b.threads() == threads) return b;
            return null;
        }

        private static void timing(Map<String, Object> e, String prefix, Stats st, double work, double unit, String name) {
            e.put(prefix + "runs", st.runs());
            e.put(prefix + "min_seconds", st.minNanos() * 1e-9);
            e.put(prefix + "median_seconds", st.medianNanos() * 1e-9);
            e.put(prefix + "best_" + name, st.best(work) / unit);
            e.put(prefix + "median_" + name, st.median(work) / unit);
        }
    }

    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.nativeOrder());
    private static final String NOT_AVAILABLE = "not available";

    private final Config cfg;
    private final Gemm gemm;
    private final QuantMatmul quantKernel;
    private final PrintStream out;
    private final Progress progress;
    private final Optional<OpenBlas> blas;
    private final Map<Integer, WorkerPool> pools = new TreeMap<>();

    private KernelBench(Config cfg, Gemm gemm, QuantMatmul quant, PrintStream out, PrintStream err, int steps) {
        this.cfg = cfg;
        this.gemm = gemm;
        this.quantKernel = quant;
        this.out = out;
        this.progress = new Progress(err, steps);
        this.blas = cfg.parts().contains(Part.SGEMM) ? OpenBlas.load() : Optional.empty();
    }

    /** The GEMM shapes of a run. */
    public static List<GemmCase> gemmCases(boolean quick) {
        List<GemmCase> cs = new ArrayList<>();
        int[] squares = quick ? new int[]{256} : new int[]{1024, 2048};
        for (int s : squares) cs.add(new GemmCase("square", "NT", s, s, s));
        int m = 64, k = quick ? 512 : 2048, n = quick ? 256 : 1024;
        for (String form : List.of("NT", "NN", "TN")) cs.add(new GemmCase("MoE expert", form, m, k, n));
        return cs;
    }

    /** The quantized-matvec shapes of a run. */
    public static List<QuantCase> quantCases(boolean quick) {
        int sq = quick ? 1024 : 4096;
        int stackedRows = quick ? 8 * 1024 : 64 * 1024, stackedK = quick ? 512 : 2048;
        List<QuantCase> cs = new ArrayList<>();
        // each format in the file's layout and in the row groups the loader repacks it into on AVX-512
        for (DType t : List.of(DType.Q8_0, DType.Q8_0_R16, DType.Q4_0, DType.Q4_0_R16)) {
            cs.add(new QuantCase(t, "square", sq, sq));
            cs.add(new QuantCase(t, "stacked experts", stackedRows, stackedK));
        }
        cs.add(new QuantCase(DType.F16, "square", sq, sq));
        cs.add(new QuantCase(DType.BF16, "square", sq, sq));
        // batched decode: an expert's up projection (Mixtral-like decode model: f 3584, d 1024) for 4 tokens
        for (DType t : List.of(DType.Q8_0, DType.Q8_0_R16, DType.Q4_0, DType.Q4_0_R16)) {
            cs.add(new QuantCase(t, "expert, 4 tokens", quick ? 896 : 3584, 1024, 4));
        }
        return cs;
    }

    /** Runs the benchmark, printing the tables to {@code out} and progress to {@code err}. */
    public static Report run(Config cfg, PrintStream out, PrintStream err) {
        Kernels k = Kernels.get();
        return run(cfg, k.gemm(), k.quant(), out, err);
    }

    /** As {@link #run(Config, PrintStream, PrintStream)} with the given kernels instead of {@link Kernels#get()}. */
    static Report run(Config cfg, Gemm gemm, QuantMatmul quant, PrintStream out, PrintStream err) {
        int t = cfg.threads().size();
        int steps = 0;
        if (cfg.parts().contains(Part.BANDWIDTH)) steps += t;
        if (cfg.parts().contains(Part.SGEMM)) steps += gemmCases(cfg.quick()).size() * t * (OpenBlas.load().isPresent() ? 2 : 1);
        if (cfg.parts().contains(Part.QUANT)) steps += quantCases(cfg.quick()).size() * t;
        KernelBench b = new KernelBench(cfg, gemm, quant, out, err, steps);
        try {
            return b.run();
        } finally {
            b.pools.values().forEach(WorkerPool::close);
        }
    }

    private Report run() {
        Machine machine = Machine.detect(gemm.name(), quantKernel.name());
        String blasConfig = blas.map(o -> o.config() + " (" + o.library() + ")").orElse(null);
        header(machine, blasConfig);

        List<BandwidthResult> bw = cfg.parts().contains(Part.BANDWIDTH) ? bandwidth() : List.of();
        List<GemmResult> gm = cfg.parts().contains(Part.SGEMM) ? sgemm() : List.of();
        List<QuantResult> qm = List.of();
        Report partial = new Report(machine, blasConfig, cfg, bw, gm, qm);
        if (cfg.parts().contains(Part.QUANT)) qm = quant(partial);
        progress.clear();
        return new Report(machine, blasConfig, cfg, bw, gm, qm);
    }

    private WorkerPool pool(int threads) {
        return pools.computeIfAbsent(threads, WorkerPool::new);
    }

    private void header(Machine m, String blasConfig) {
        out.println("moe4j bench kernels" + (cfg.quick() ? " --quick (small shapes: a smoke test, not a measurement)" : ""));
        out.printf(Locale.ROOT, "  CPU       %s, %d cores; %s%n", m.cpu(), m.cores(), m.simdFlags());
        out.printf(Locale.ROOT, "  JVM       %s%n", m.jvm());
        out.printf(Locale.ROOT, "  kernels   %s (%s); gemm %s, quant %s; vector bits %d%n", m.kernels(), m.kernelReason(),
                m.gemm(), m.quant(), m.vectorBits());
        if (blasConfig != null) out.printf(Locale.ROOT, "  OpenBLAS  %s%n", blasConfig);
        out.printf(Locale.ROOT, "  method    warm-up %.2f s, then %d timed calls (at most %.0f s each measurement); "
                + "best = fastest call, median = median call%n", cfg.warmupSeconds(), cfg.repeat(), cfg.budgetSeconds());
        int maxT = cfg.threads().stream().mapToInt(Integer::intValue).max().orElse(1);
        if (maxT > m.cores()) {
            out.printf(Locale.ROOT, "  note      %d threads requested on %d cores: oversubscribed, slower by design%n", maxT, m.cores());
        }
        out.flush();
    }

    // ------------------------------------------------------------------ bandwidth

    private List<BandwidthResult> bandwidth() {
        long bytes = cfg.quick() ? 128L << 20 : 1L << 30;
        List<BandwidthResult> rs = new ArrayList<>();
        try (MemoryBandwidth mb = new MemoryBandwidth(bytes)) {
            for (int t : cfg.threads()) {
                progress.step("read bandwidth, " + threads(t));
                // One pass takes tens of milliseconds: take at least 10 so the best is not a noisy one.
                Stats.Plan plan = new Stats.Plan(cfg.warmupSeconds(), Math.max(10, cfg.repeat()), cfg.budgetSeconds());
                rs.add(new BandwidthResult(t, mb.bytes(), mb.measure(pool(t), plan)));
            }
        }
        progress.clear();
        out.println();
        out.printf(Locale.ROOT, "Memory read bandwidth (vectorised sum of a %s off-heap buffer, each thread a disjoint part)%n",
                mib(bytes));
        Table tb = new Table("threads", "runs", "best GB/s", "median GB/s");
        for (BandwidthResult r : rs) {
            tb.add(Integer.toString(r.threads()), Integer.toString(r.stats().runs()),
                    num(r.stats().best(r.bufferBytes()) / 1e9), num(r.stats().median(r.bufferBytes()) / 1e9));
        }
        tb.print(out);
        out.flush();
        return rs;
    }

    // ------------------------------------------------------------------ sgemm

    private List<GemmResult> sgemm() {
        List<GemmResult> rs = new ArrayList<>();
        for (GemmCase c : gemmCases(cfg.quick())) {
            try (Arena arena = Arena.ofShared()) {
                long aN = (long) c.m() * c.k(), bN = (long) c.n() * c.k(), cN = (long) c.m() * c.n();
                MemorySegment a = arena.allocate(aN * Float.BYTES, 64);
                MemorySegment b = arena.allocate(bN * Float.BYTES, 64);
                MemorySegment cm = arena.allocate(cN * Float.BYTES, 64);
                MemorySegment cb = arena.allocate(cN * Float.BYTES, 64);
                RandomData.floats(a, 0, aN, 1);
                RandomData.floats(b, 0, bN, 2);
                for (int t : cfg.threads()) {
                    WorkerPool pool = pool(t);
                    String what = "sgemm " + c.form() + " " + c.shape() + ", " + threads(t);
                    progress.step(what + ": moe4j");
                    Stats sm = null;
                    String note = null;
                    try {
                        sm = Stats.measure(() -> gemm.sgemm(pool, c.transA(), c.transB(), c.m(), c.n(), c.k(),
                                a, 0, c.lda(), b, 0, c.ldb(), cm, 0, c.n(), false), cfg.plan());
                    } catch (UnsupportedOperationException e) {
                        note = NOT_AVAILABLE;
                    }
                    Stats sb = null;
                    if (blas.isPresent()) {
                        OpenBlas ob = blas.get();
                        progress.step(what + ": OpenBLAS");
                        ob.setThreads(t);
                        sb = Stats.measure(() -> ob.sgemm(c.transA(), c.transB(), c.m(), c.n(), c.k(), 1f,
                                a, 0, c.lda(), b, 0, c.ldb(), 0f, cb, 0, c.n()), cfg.plan());
                        // OpenBLAS's idle threads spin for a while after a call: let them park before moe4j runs.
                        if (t > 1) sleep(200);
                    }
                    double diff = sm != null && sb != null ? maxRelDiff(cm, cb, cN) : Double.NaN;
                    rs.add(new GemmResult(c, t, sm, note, sb, diff));
                }
            }
        }
        progress.clear();
        printGemm(rs);
        return rs;
    }

    private void printGemm(List<GemmResult> rs) {
        boolean withBlas = blas.isPresent();
        out.println();
        out.println("sgemm GFLOP/s (2·M·N·K / time; NT: C = A·Bᵀ, NN: C = A·B, TN: C = Aᵀ·B)");
        if (!withBlas) out.println("  " + OpenBlas.NOT_FOUND + "; moe4j only, no ratios");
        Table tb = withBlas
                ? new Table("<kind", "<MxKxN", "<form", "threads", "runs", "moe4j best", "median",
                        "OpenBLAS best", "median", "moe4j/OpenBLAS", "max rel diff")
                : new Table("<kind", "<MxKxN", "<form", "threads", "runs", "moe4j best", "median");
        for (GemmResult r : rs) {
            GemmCase c = r.c();
            double f = c.flops() / 1e9;
            List<String> row = new ArrayList<>(List.of(c.kind(), c.shape(), c.form(), Integer.toString(r.threads())));
            if (r.moe4j() != null) {
                row.addAll(List.of(Integer.toString(r.moe4j().runs()), num(r.moe4j().best(f)), num(r.moe4j().median(f))));
            } else {
                row.addAll(List.of("-", r.moe4jNote(), "-"));
            }
            if (withBlas) {
                row.add(num(r.blas().best(f)));
                row.add(num(r.blas().median(f)));
                row.add(r.moe4j() != null ? ratio(r.moe4j().best(1) / r.blas().best(1)) : "-");
                row.add(Double.isNaN(r.maxRelDiff()) ? "-" : String.format(Locale.ROOT, "%.0e", r.maxRelDiff()));
            }
            tb.add(row.toArray(String[]::new));
        }
        tb.print(out);
        if (withBlas) {
            out.println("  moe4j/OpenBLAS = best / best at the same thread count; max rel diff = max|C_moe4j - C_blas| / max|C_blas|");
            for (GemmResult r : rs) {
                if (r.maxRelDiff() > 1e-3) {
                    out.printf(Locale.ROOT, "  WARNING: moe4j and OpenBLAS disagree on %s %s (%d threads): max rel diff %.1e%n",
                            r.c().form(), r.c().shape(), r.threads(), r.maxRelDiff());
                }
            }
        }
        out.flush();
    }

    static double maxRelDiff(MemorySegment x, MemorySegment ref, long n) {
        double maxDiff = 0, maxRef = 0;
        for (long i = 0; i < n; i++) {
            float a = x.getAtIndex(F, i), b = ref.getAtIndex(F, i);
            double d = Math.abs((double) a - b);
            if (Double.isNaN(d)) return Double.POSITIVE_INFINITY;
            maxDiff = Math.max(maxDiff, d);
            maxRef = Math.max(maxRef, Math.abs(b));
        }
        return maxRef == 0 ? maxDiff : maxDiff / maxRef;
    }

    // ------------------------------------------------------------------ quantized matvec

    private List<QuantResult> quant(Report bandwidth) {
        QuantMatmul q = quantKernel;
        long coldBytes = cfg.quick() ? 32L << 20 : 512L << 20;
        List<QuantResult> rs = new ArrayList<>();
        for (QuantCase c : quantCases(cfg.quick())) {
            if (!supported(q, c.type())) {
                for (int t : cfg.threads()) {
                    progress.step("matvec " + c.type() + " " + c.shape() + ", " + threads(t) + ": " + NOT_AVAILABLE);
                    rs.add(new QuantResult(c, t, 0, null, NOT_AVAILABLE));
                }
                continue;
            }
            long wb = c.weightBytes();
            int copies = (int) Math.max(1, (coldBytes + wb - 1) / wb);
            try (Arena arena = Arena.ofShared()) {
                MemorySegment w = arena.allocate(wb * copies, 64);
                DType src = RowGroups.sourceOf(c.type());
                if (src != null) { // a load-time layout: random weights of the file type, packed
                    MemorySegment file = arena.allocate(src.byteSize((long) c.rows() * c.k()), 64);
                    RandomData.weights(src, file, 0, (long) c.rows() * c.k(), 3);
                    RowGroups.pack(src, file, 0, c.rows(), c.k(), w, 0);
                } else {
                    RandomData.weights(c.type(), w, 0, (long) c.rows() * c.k(), 3);
                }
                for (int i = 1; i < copies; i++) MemorySegment.copy(w, 0, w, i * wb, wb);
                MemorySegment x = arena.allocate((long) c.k() * c.n() * Float.BYTES, 64);
                MemorySegment y = arena.allocate((long) c.rows() * c.n() * Float.BYTES, 64);
                RandomData.floats(x, 0, (long) c.k() * c.n(), 4);
                for (int t : cfg.threads()) {
                    WorkerPool pool = pool(t);
                    progress.step("matvec " + c.type() + " " + c.shape() + ", " + threads(t) + ": moe4j");
                    try {
                        Stats s = Stats.measure(() -> {
                            for (int i = 0; i < copies; i++) {
                                q.matmul(pool, c.type(), w, i * wb, c.rows(), c.k(), x, 0, c.k(), c.n(), y, 0, c.rows(), false);
                            }
                        }, cfg.plan());
                        rs.add(new QuantResult(c, t, copies, s, null));
                    } catch (UnsupportedOperationException e) {
                        rs.add(new QuantResult(c, t, copies, null, NOT_AVAILABLE));
                    }
                }
            }
        }
        progress.clear();
        printQuant(rs, bandwidth);
        return rs;
    }

    /** False when the kernel throws UnsupportedOperationException for {@code type} (tried on one tiny block). */
    private static boolean supported(QuantMatmul q, DType type) {
        if (type.inMemoryOnly()) return RowGroups.sourceOf(type) != null && q.preferredLayout(RowGroups.sourceOf(type), 16, 32) == type;
        try (Arena arena = Arena.ofConfined()) {
            int k = type.blockSize() == 1 ? 32 : type.blockSize();
            MemorySegment w = arena.allocate(type.byteSize(k), 64);
            MemorySegment x = arena.allocate((long) k * Float.BYTES, 64);
            MemorySegment y = arena.allocate(Float.BYTES, 64);
            RandomData.weights(type, w, 0, k, 5);
            try (WorkerPool one = new WorkerPool(1)) {
                q.matvec(one, type, w, 0, 1, k, x, 0, y, 0);
            }
            return true;
        } catch (UnsupportedOperationException e) {
            return false;
        }
    }

    private void printQuant(List<QuantResult> rs, Report bw) {
        out.println();
        out.println("Quantized matvec GB/s (weight bytes / time; y = W·x, one F32 vector x, or N of them; weights cycled over");
        out.println("copies of at least " + mib(cfg.quick() ? 32L << 20 : 512L << 20) + " so each call streams them from memory)");
        Table tb = new Table("<weights", "<kind", "<rows x K", "MiB", "copies", "threads", "runs",
                "best GB/s", "median GB/s", "read GB/s", "best/read");
        for (QuantResult r : rs) {
            QuantCase c = r.c();
            List<String> row = new ArrayList<>(List.of(c.type().name(), c.kind(), c.shape(),
                    String.format(Locale.ROOT, "%.1f", c.weightBytes() / 1048576.0),
                    r.copies() > 0 ? Integer.toString(r.copies()) : "-", Integer.toString(r.threads())));
            BandwidthResult b = bw.bandwidthFor(r.threads());
            String read = b != null ? num(b.bestBytesPerSecond() / 1e9) : "-";
            if (r.moe4j() != null) {
                double work = (double) c.weightBytes() * r.copies() / 1e9;
                row.addAll(List.of(Integer.toString(r.moe4j().runs()), num(r.moe4j().best(work)), num(r.moe4j().median(work)), read,
                        b != null ? ratio(r.moe4j().best(work) * 1e9 / b.bestBytesPerSecond()) : "-"));
            } else {
                row.addAll(List.of("-", r.note(), "-", read, "-"));
            }
            tb.add(row.toArray(String[]::new));
        }
        tb.print(out);
        out.println("  best/read = best matvec GB/s / best read bandwidth at the same thread count");
        out.flush();
    }

    // ------------------------------------------------------------------ formatting

    private static String threads(int t) { return t + (t == 1 ? " thread" : " threads"); }

    private static String mib(long bytes) {
        return bytes >= 1L << 30 && bytes % (1L << 30) == 0 ? (bytes >> 30) + " GiB" : (bytes >> 20) + " MiB";
    }

    /** A ratio: two decimals, three below 0.1 so that a slow placeholder kernel does not show as 0.00. */
    static String ratio(double r) {
        return String.format(Locale.ROOT, r < 0.1 ? "%.3f" : "%.2f", r);
    }

    /** Three significant digits, never scientific notation. */
    static String num(double v) {
        if (!Double.isFinite(v)) return "-";
        if (v >= 100) return String.format(Locale.ROOT, "%.0f", v);
        if (v >= 10) return String.format(Locale.ROOT, "%.1f", v);
        if (v >= 1) return String.format(Locale.ROOT, "%.2f", v);
        return String.format(Locale.ROOT, "%.3f", v);
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
