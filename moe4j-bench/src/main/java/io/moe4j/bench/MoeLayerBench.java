package io.moe4j.bench;

import io.moe4j.kernel.Kernels;
import io.moe4j.moe.MoeConfig;
import io.moe4j.moe.MoeLayer;
import io.moe4j.moe.MoeProfile;
import io.moe4j.nn.F32;
import io.moe4j.parallel.WorkerPool;

import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * {@code moe4j bench moe-layer}: the MoE FFN layer, forward and forward+backward, moe4j next to PyTorch run in the
 * same benchmark with the same shapes and thread count: the usual loop-over-experts implementation
 * (index_select / index_add_ per expert) and a sorted single-gather variant; PyTorch is credited with the faster. Reports tokens/s, GFLOP/s, the ratio to PyTorch, and where moe4j's time goes — including the expert
 * GEMMs' throughput relative to moe4j's own sgemm on one GEMM of the same total size.
 *
 * <p>PyTorch gets its best settings on this machine kind (see shared/PEERS.md): Debian's /usr/bin/python3,
 * {@code OMP_WAIT_POLICY=PASSIVE}, {@code OPENBLAS_NUM_THREADS} = threads. When torch is not installed the table
 * says so and shows moe4j alone. The "lockstep" rows alternate the two call by call in one run (see
 * {@link #lockstep}): on a shared machine the separate rows can compare a quiet minute of one with a loaded one.
 *
 * <p>FLOPs counted: 2·(3·d·f) per routed assignment, 2·(3·d·f_s) per token for the shared expert, 2·d·E for the
 * router; backward = 2× forward.
 */
public final class MoeLayerBench {
    /** Untimed forward+backward calls before the first measurement: at least this many, and this long. */
    private static final int WARMUP_CALLS = 10;
    private static final long WARMUP_NANOS = 10_000_000_000L;

    private MoeLayerBench() {}

    /** One benchmarked shape. */
    public record Shape(String name, int tokens, int d, int experts, int k, int f, int sharedF) {
        double forwardFlops() {
            return 2.0 * tokens * ((double) k * 3 * d * f + 3.0 * d * sharedF + (double) d * experts);
        }
    }

    public static List<Shape> defaultShapes(boolean quick) {
        if (quick) {
            return List.of(new Shape("E=8 k=2 (small)", 256, 128, 8, 2, 256, 0),
                    new Shape("E=16 k=4 +shared (small)", 256, 128, 16, 4, 64, 64));
        }
        return List.of(new Shape("E=8 k=2 f=1024", 2048, 512, 8, 2, 1024, 0),
                new Shape("E=64 k=8 f=256 +1 shared", 2048, 512, 64, 8, 256, 256));
    }

    public static void run(List<Shape> shapes, int threads, int repeat, boolean withTorch, PrintStream out, PrintStream err) {
        Kernels kernels = Kernels.get();
        out.printf(Locale.ROOT, "moe4j bench moe-layer — %s, %d threads, kernels %s%n",
                Machine.detect().cpu(), threads, kernels);
        out.println("tokens/s and GFLOP/s: best (median) of " + repeat + " timed calls after warm-up");
        Table table = new Table("shape", "pass", "moe4j tok/s", "moe4j GFLOP/s", "PyTorch tok/s", "PyTorch GFLOP/s",
                "moe4j/PyTorch");
        List<String> notes = new ArrayList<>();
        try (WorkerPool pool = new WorkerPool(threads); Arena arena = Arena.ofShared()) {
            for (Shape s : shapes) {
                err.printf("  %s: moe4j...%n", s.name());
                MoeConfig c = MoeConfig.builder().dModel(s.d()).numExperts(s.experts()).topK(s.k()).expertHidden(s.f())
                        .sharedExperts(s.sharedF() > 0 ? 1 : 0).sharedHidden(s.sharedF()).maxTokens(s.tokens())
                        .balanceCoef(0.01).build();
                MoeLayer layer = new MoeLayer(c, arena, kernels, pool);
                layer.init(new SplittableRandom(0), 0.02, 1.0);
                int n = s.tokens() * s.d();
                MemorySegment x = F32.alloc(arena, n), y = F32.alloc(arena, n), dy = F32.alloc(arena, n), dx = F32.alloc(arena, n);
                SplittableRandom rng = new SplittableRandom(1);
                for (int i = 0; i < n; i++) {
                    F32.set(x, i, (float) rng.nextGaussian());
                    F32.set(dy, i, (float) rng.nextGaussian());
                }
                Stats.Plan plan = new Stats.Plan(2.0, repeat, 120);
                Runnable fwdBwd = () -> {
                    layer.forward(x, 0, s.tokens(), y, 0, true);
                    layer.backward(x, 0, dy, 0, dx, 0);
                };
                // JIT warm-up of every kernel before the first measurement: on a loaded machine C2 needs tens of
                // seconds, and a 2 s warm-up timed the forward partly in interpreted/C1 code
                long warmStart = System.nanoTime();
                for (int i = 0; i < WARMUP_CALLS || System.nanoTime() - warmStart < WARMUP_NANOS; i++) {
                    fwdBwd.run();
                    if (System.nanoTime() - warmStart > 4 * WARMUP_NANOS) break;
                }
                Stats fwd = Stats.measure(() -> layer.forward(x, 0, s.tokens(), y, 0, false), plan);
                Stats fb = Stats.measure(fwdBwd, plan);
                // The expert schedules and the separate gate/up GEMMs (same bits), fwd+bwd, timed interleaved
                // (one call of each per round) so that a change in the machine's load hits all of them alike.
                List<String> variants = new ArrayList<>(List.of("auto", "on", "off", "tiles"));
                if (c.expertType().gated()) variants.add("auto, separate gate/up");
                long[][] samples = new long[variants.size()][Math.max(5, repeat)];
                for (int r = 0; r < samples[0].length; r++) {
                    for (int v = 0; v < variants.size(); v++) {
                        layer.experts().splitMode(variants.get(v).split(",")[0]);
                        layer.experts().fusedGateUp(!variants.get(v).contains("separate"));
                        long t0 = System.nanoTime();
                        fwdBwd.run();
                        samples[v][r] = System.nanoTime() - t0;
                    }
                }
                layer.experts().splitMode("auto");
                layer.experts().fusedGateUp(true);
                StringBuilder sched = new StringBuilder();
                for (int v = 0; v < variants.size(); v++) {
                    Stats st = new Stats(samples[v], 0);
                    sched.append(String.format(Locale.ROOT, "  %s %s (%s)", variants.get(v), fmt(st.best(s.tokens())),
                            fmt(st.median(s.tokens()))));
                }
                notes.add(s.name() + ": fwd+bwd tokens/s best (median) with the default schedule " + fmt(fb.best(s.tokens()))
                        + " (" + fmt(fb.median(s.tokens())) + "); interleaved same-run comparison (auto = default, on = one "
                        + "expert per task, off = parallel GEMMs, tiles; fused gate/up unless separate), "
                        + samples[0].length + " rounds:" + sched);
                // the phase profile of warm (JIT-compiled) calls only
                layer.profile().reset();
                for (int i = 0; i < Math.max(2, fb.runs()); i++) fwdBwd.run();
                MoeProfile prof = layer.profile();
                double ff = s.forwardFlops();
                double[] torch = withTorch ? torch(s, threads, repeat, err, notes) : null;
                addRow(table, s.name(), "forward", s.tokens(), fwd, ff, torch == null ? null : new double[]{torch[0], torch[1]});
                addRow(table, s.name(), "fwd+bwd", s.tokens(), fb, 3 * ff, torch == null ? null : new double[]{torch[2], torch[3]});
                if (withTorch && torch != null) {
                    lockstep(s, threads, repeat, () -> layer.forward(x, 0, s.tokens(), y, 0, false), fwdBwd, table, notes, err);
                }
                // expert GEMM efficiency: the forward experts phase against one sgemm of the same total work
                double expertFlops = 2.0 * s.tokens() * s.k() * 3.0 * s.d() * s.f();
                long calls = Math.max(1, prof.calls(MoeProfile.Phase.EXPERTS));
                double expertGflops = expertFlops / (prof.nanos(MoeProfile.Phase.EXPERTS) / (double) calls);
                double sgemm = sgemmGflops(kernels, pool, arena, s.tokens() * s.k(), s.d(), s.f());
                notes.add(String.format(Locale.ROOT, "%s: forward expert GEMMs %.1f GFLOP/s = %.0f%% of moe4j's sgemm on one "
                                + "%dx%dx%d NT product (%.1f GFLOP/s)%n    mean time per phase in fwd+bwd: %s", s.name(),
                        expertGflops, 100 * expertGflops / sgemm, s.tokens() * s.k(), s.d(), s.f(), sgemm, prof));
            }
        }
        table.print(out);
        for (String note : notes) out.println("  " + note);
    }

    private static void addRow(Table t, String shape, String pass, int tokens, Stats st, double flops, double[] torchBestMedian) {
        double bestTok = st.best(tokens), medTok = st.median(tokens);
        String torchTok = "-", torchG = "-", ratio = "-";
        if (torchBestMedian != null) {
            double tb = tokens / torchBestMedian[0], tm = tokens / torchBestMedian[1];
            torchTok = fmt(tb) + " (" + fmt(tm) + ")";
            torchG = String.format(Locale.ROOT, "%.1f (%.1f)", flops / torchBestMedian[0] / 1e9, flops / torchBestMedian[1] / 1e9);
            ratio = String.format(Locale.ROOT, "%.2f", bestTok / tb);
        }
        t.add(shape, pass, fmt(bestTok) + " (" + fmt(medTok) + ")",
                String.format(Locale.ROOT, "%.1f (%.1f)", st.best(flops) / 1e9, st.median(flops) / 1e9), torchTok, torchG, ratio);
    }

    private static String fmt(double v) {
        return v >= 1000 ? String.format(Locale.ROOT, "%.2fk", v / 1000) : String.format(Locale.ROOT, "%.0f", v);
    }

    private static double sgemmGflops(Kernels k, WorkerPool pool, Arena arena, int m, int d, int f) {
        MemorySegment a = F32.alloc(arena, (long) m * d), b = F32.alloc(arena, (long) f * d), c = F32.alloc(arena, (long) m * f);
        Stats st = Stats.measure(() -> k.gemm().nt(pool, m, f, d, a, 0, d, b, 0, d, c, 0, f, false), new Stats.Plan(1.0, 5, 30));
        return st.best(2.0 * m * d * f) / 1e9;
    }

    /**
     * moe4j and PyTorch call by call (moe4j, PyTorch loop, PyTorch sorted, two calls each; forward, then fwd+bwd), rows "… lockstep":
     * a change of the machine's load during the run hits both alike, which the separate PyTorch run above cannot
     * promise on a shared machine. PyTorch is credited with its faster implementation per pass.
     */
    private static void lockstep(Shape s, int threads, int repeat, Runnable fwd, Runnable fwdBwd, Table table,
                                 List<String> notes, PrintStream err) {
        err.printf("  %s: moe4j and PyTorch in lockstep...%n", s.name());
        try (TorchBench.Server torch = TorchBench.Server.start("moe_layer_bench.py", List.of("" + s.tokens(), "" + s.d(),
                "" + s.experts(), "" + s.k(), "" + s.f(), "" + s.sharedF(), "2", "1"), threads, notes)) {
            if (torch == null) return;
            int rounds = Math.max(5, repeat);
            String[] passes = {"fwd", "fwdbwd"};
            long[][] ours = new long[2][rounds];
            long[][][] theirs = new long[2][2][rounds]; // [pass][loop, sorted][round]
            // totals over every call, for CPU share (CPU-seconds per second) and work per CPU-second: [pass][side]
            double[][] wall = new double[2][3], cpu = new double[2][3];
            com.sun.management.OperatingSystemMXBean os = (com.sun.management.OperatingSystemMXBean)
                    java.lang.management.ManagementFactory.getOperatingSystemMXBean();
            for (int r = 0; r < rounds; r++) {
                for (int p = 0; p < 2; p++) {
                    // two calls in a row per side, the faster counted: the first after the other side's call finds
                    // cold caches and (PyTorch, OMP_WAIT_POLICY=PASSIVE) sleeping threads
                    Runnable call = p == 0 ? fwd : fwdBwd;
                    ours[p][r] = Long.MAX_VALUE;
                    for (int twice = 0; twice < 2; twice++) {
                        long c0 = os.getProcessCpuTime(), t0 = System.nanoTime();
                        call.run();
                        long t = System.nanoTime() - t0;
                        ours[p][r] = Math.min(ours[p][r], t);
                        wall[p][0] += t * 1e-9;
                        cpu[p][0] += (os.getProcessCpuTime() - c0) * 1e-9;
                    }
                    for (int v = 0; v < 2; v++) {
                        String name = (v == 0 ? "loop_" : "sorted_") + passes[p];
                        double best = Double.MAX_VALUE;
                        for (int twice = 0; twice < 2; twice++) {
                            double t = torch.time(name);
                            best = Math.min(best, t);
                            wall[p][1 + v] += t;
                            cpu[p][1 + v] += torch.lastCpu();
                        }
                        theirs[p][v][r] = (long) (best * 1e9);
                    }
                }
            }
            StringBuilder share = new StringBuilder();
            for (int p = 0; p < 2; p++) {
                Stats loop = new Stats(theirs[p][0], 0), sorted = new Stats(theirs[p][1], 0);
                Stats best = loop.minNanos() <= sorted.minNanos() ? loop : sorted;
                int v = best == loop ? 1 : 2;
                double work = (p == 0 ? 1 : 3) * s.forwardFlops() * 2 * rounds / 1e9;
                share.append(String.format(Locale.ROOT, "; %s: CPU-seconds per second moe4j %.2f, PyTorch %.2f; "
                                + "GFLOP per CPU-second moe4j %.1f, PyTorch %.1f", p == 0 ? "forward" : "fwd+bwd",
                        cpu[p][0] / wall[p][0], cpu[p][v] / wall[p][v], work / cpu[p][0], work / cpu[p][v]));
                addRow(table, s.name(), (p == 0 ? "forward" : "fwd+bwd") + " lockstep", s.tokens(), new Stats(ours[p], 0),
                        (p == 0 ? 1 : 3) * s.forwardFlops(),
                        new double[]{best.minNanos() * 1e-9, best.medianNanos() * 1e-9});
            }
            notes.add(s.name() + ": lockstep rows: " + rounds + " rounds, each two moe4j calls then two calls of each "
                    + "PyTorch implementation (loop, sorted), the faster of each pair counted; forward then fwd+bwd; "
                    + "one PyTorch process kept running between calls (its faster implementation in the CPU figures)" + share);
        } catch (RuntimeException e) {
            notes.add(s.name() + ": lockstep comparison failed: " + e.getMessage());
        }
    }

    /** Runs the PyTorch peer; returns {fwd best, fwd median, fwdbwd best, fwdbwd median} seconds, or null. */
    private static double[] torch(Shape s, int threads, int repeat, PrintStream err, List<String> notes) {
        err.printf("  %s: PyTorch...%n", s.name());
        String json = TorchBench.run("moe_layer_bench.py", List.of("" + s.tokens(), "" + s.d(), "" + s.experts(),
                "" + s.k(), "" + s.f(), "" + s.sharedF(), "2", "" + repeat), threads, 600, notes);
        if (json == null) return null;
        // PyTorch is credited with the faster of its two implementations, per pass
        String f = TorchBench.min(json, "loop_fwd") <= TorchBench.min(json, "sorted_fwd") ? "loop_fwd" : "sorted_fwd";
        String b = TorchBench.min(json, "loop_fwdbwd") <= TorchBench.min(json, "sorted_fwdbwd") ? "loop_fwdbwd" : "sorted_fwdbwd";
        notes.add(String.format(Locale.ROOT, "%s: PyTorch best-of tokens/s — loop-over-experts fwd %s, fwd+bwd %s; "
                        + "sorted single-gather fwd %s, fwd+bwd %s (the faster one is in the table)", s.name(),
                fmt(s.tokens() / TorchBench.min(json, "loop_fwd")), fmt(s.tokens() / TorchBench.min(json, "loop_fwdbwd")),
                fmt(s.tokens() / TorchBench.min(json, "sorted_fwd")), fmt(s.tokens() / TorchBench.min(json, "sorted_fwdbwd"))));
        return new double[]{TorchBench.min(json, f), TorchBench.median(json, f), TorchBench.min(json, b), TorchBench.median(json, b)};
    }

}
