package io.moe4j.moe;

import io.moe4j.kernel.Kernels;
import io.moe4j.kernel.gemm.Gemm;
import io.moe4j.kernel.row.RowOps;
import io.moe4j.nn.F32;
import io.moe4j.parallel.WorkerPool;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Not a test: each product and elementwise pass of the SwiGLU expert bank's forward and backward timed on its own,
 * summed over the E experts (the calls {@code ExpertBank} makes in its parallel-GEMM schedule), at 1 and 2 threads
 * in one JVM, interleaved (1, 2, 1, 2, … best of N). Shows which phase loses against twice the 1-thread speed.
 *
 * <pre>
 * java --add-modules=jdk.incubator.vector -cp moe4j-core/target/classes:moe4j-core/target/test-classes:slf4j-api.jar \
 *     io.moe4j.moe.ExpertPhaseTiming [e=8] [d=512] [f=1024] [rows=512] [rounds=6]
 * </pre>
 */
public final class ExpertPhaseTiming {
    private ExpertPhaseTiming() {}

    private static final String[] PHASES = {"fwd [H|U]=X·[Wg;Wu]ᵀ NT", "fwd SwiGLU", "fwd Y=A·Wdᵀ NT",
        "bwd dA=dY·Wd NN", "bwd dWd+=dYᵀ·A TN", "bwd SwiGLU'", "bwd [dWg;dWu]+=[dH|dU]ᵀ·X TN", "bwd dX=dH·Wg+dU·Wu NN×2"};

    public static void main(String[] args) {
        Map<String, String> o = new LinkedHashMap<>(Map.of("e", "8", "d", "512", "f", "1024", "rows", "512", "rounds", "6"));
        for (String a : args) {
            String[] kv = a.split("=", 2);
            o.put(kv[0], kv[1]);
        }
        int e = Integer.parseInt(o.get("e")), d = Integer.parseInt(o.get("d")), f = Integer.parseInt(o.get("f"));
        int n = Integer.parseInt(o.get("rows")), rounds = Integer.parseInt(o.get("rounds"));
        int rows = e * n, hs = 2 * f;
        Kernels kernels = Kernels.get();
        Gemm g = kernels.gemm();
        RowOps ops = kernels.rows();
        try (WorkerPool p1 = new WorkerPool(1); WorkerPool p2 = new WorkerPool(2); Arena arena = Arena.ofShared()) {
            SplittableRandom rng = new SplittableRandom(0);
            MemorySegment wg = rand(arena, (long) e * f * d, rng, 0.02), wu = rand(arena, (long) e * f * d, rng, 0.02);
            MemorySegment wd = rand(arena, (long) e * d * f, rng, 0.02);
            MemorySegment gwg = rand(arena, (long) e * f * d, rng, 0), gwu = rand(arena, (long) e * f * d, rng, 0);
            MemorySegment gwd = rand(arena, (long) e * d * f, rng, 0);
            MemorySegment x = rand(arena, (long) rows * d, rng, 1), dy = rand(arena, (long) rows * d, rng, 1);
            MemorySegment h = rand(arena, (long) rows * hs, rng, 0), a = rand(arena, (long) rows * f, rng, 0);
            MemorySegment y = rand(arena, (long) rows * d, rng, 0), dA = rand(arena, (long) rows * f, rng, 0);
            MemorySegment dH = rand(arena, (long) rows * hs, rng, 0), dx = rand(arena, (long) rows * d, rng, 0);
            double[] flops = {2.0 * rows * d * 2 * f, 0, 2.0 * rows * f * d, 2.0 * rows * d * f, 2.0 * rows * d * f, 0,
                2.0 * rows * d * 2 * f, 2.0 * rows * 2 * f * d};
            long[][] best = new long[2][PHASES.length];
            for (long[] b : best) Arrays.fill(b, Long.MAX_VALUE);
            long[] total = {Long.MAX_VALUE, Long.MAX_VALUE};
            long wf = (long) f * d;
            for (int r = 0; r < rounds + 3; r++) {
                for (int ti = 0; ti < 2; ti++) {
                    WorkerPool pool = ti == 0 ? p1 : p2;
                    long[] t = new long[PHASES.length + 1];
                    t[0] = System.nanoTime();
                    // forward, phase by phase over all experts
                    for (int j = 0; j < e; j++) {
                        long ho = (long) j * n * hs;
                        g.sgemmStacked(pool, false, true, n, 2 * f, d, x, (long) j * n * d, d, wg, j * wf, wu, j * wf, f, d,
                                h, ho, h, ho, Integer.MAX_VALUE, hs, false);
                    }
                    t[1] = System.nanoTime();
                    pool.parallelRanges(rows, 16, (from, to, w) -> {
                        for (int i = from; i < to; i++) ops.swiglu(f, h, (long) i * hs, h, (long) i * hs + f, a, (long) i * f);
                    });
                    t[2] = System.nanoTime();
                    for (int j = 0; j < e; j++) {
                        g.nt(pool, n, d, f, a, (long) j * n * f, f, wd, j * wf, f, y, (long) j * n * d, d, false);
                    }
                    t[3] = System.nanoTime();
                    for (int j = 0; j < e; j++) {
                        g.nn(pool, n, f, d, dy, (long) j * n * d, d, wd, j * wf, f, dA, (long) j * n * f, f, false);
                    }
                    t[4] = System.nanoTime();
                    for (int j = 0; j < e; j++) {
                        g.tn(pool, d, f, n, dy, (long) j * n * d, d, a, (long) j * n * f, f, gwd, j * wf, f, true);
                    }
                    t[5] = System.nanoTime();
                    pool.parallelRanges(rows, 16, (from, to, w) -> {
                        for (int i = from; i < to; i++) {
                            long ho = (long) i * hs;
                            ops.swigluBackward(f, h, ho, h, ho + f, dA, (long) i * f, dH, ho, dH, ho + f);
                        }
                    });
                    t[6] = System.nanoTime();
                    for (int j = 0; j < e; j++) {
                        long ho = (long) j * n * hs, xo = (long) j * n * d;
                        g.sgemmStacked(pool, true, false, 2 * f, d, n, dH, ho, hs, x, xo, x, xo, Integer.MAX_VALUE, d,
                                gwg, j * wf, gwu, j * wf, f, d, true);
                    }
                    t[7] = System.nanoTime();
                    for (int j = 0; j < e; j++) {
                        long ho = (long) j * n * hs, xo = (long) j * n * d;
                        g.nn(pool, n, d, f, dH, ho, hs, wg, j * wf, d, dx, xo, d, false);
                        g.nn(pool, n, d, f, dH, ho + f, hs, wu, j * wf, d, dx, xo, d, true);
                    }
                    t[8] = System.nanoTime();
                    if (r >= 3) {
                        for (int i = 0; i < PHASES.length; i++) best[ti][i] = Math.min(best[ti][i], t[i + 1] - t[i]);
                        total[ti] = Math.min(total[ti], t[8] - t[0]);
                    }
                }
            }
            System.out.printf(Locale.ROOT, "E=%d rows/expert=%d d=%d f=%d, best of %d interleaved rounds, load %.2f%n", e, n, d, f,
                    rounds, java.lang.management.ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
            System.out.printf(Locale.ROOT, "  %-30s %9s %9s %9s %9s %8s%n", "phase", "1T ms", "1T GF/s", "2T ms", "2T GF/s", "speedup");
            long s1 = 0, s2 = 0;
            for (int i = 0; i < PHASES.length; i++) {
                s1 += best[0][i];
                s2 += best[1][i];
                System.out.printf(Locale.ROOT, "  %-30s %9.2f %9.1f %9.2f %9.1f %8.2f%n", PHASES[i], best[0][i] / 1e6,
                        flops[i] / best[0][i], best[1][i] / 1e6, flops[i] / best[1][i], (double) best[0][i] / best[1][i]);
            }
            double all = Arrays.stream(flops).sum();
            System.out.printf(Locale.ROOT, "  %-30s %9.2f %9.1f %9.2f %9.1f %8.2f%n", "sum of bests", s1 / 1e6, all / s1,
                    s2 / 1e6, all / s2, (double) s1 / s2);
            System.out.printf(Locale.ROOT, "  %-30s %9.2f %9.1f %9.2f %9.1f %8.2f%n", "best whole round", total[0] / 1e6,
                    all / total[0], total[1] / 1e6, all / total[1], (double) total[0] / total[1]);
        }
    }

    private static MemorySegment rand(Arena arena, long n, SplittableRandom rng, double scale) {
        MemorySegment s = F32.alloc(arena, n);
        if (scale != 0) for (long i = 0; i < n; i++) F32.set(s, i, (float) (rng.nextGaussian() * scale));
        return s;
    }
}
