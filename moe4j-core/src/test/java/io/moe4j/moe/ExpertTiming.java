package io.moe4j.moe;

import io.moe4j.kernel.Kernels;
import io.moe4j.nn.F32;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Not a test: same-JVM interleaved timing of the expert bank's forward and backward under its schedules
 * (A, B, A, B, … best of N each), for the numbers in docs/BENCHMARKS.md.
 *
 * <pre>
 * java --add-modules=jdk.incubator.vector -cp moe4j-core/target/classes:moe4j-core/target/test-classes \
 *     io.moe4j.moe.ExpertTiming [threads=2] [e=8] [d=512] [f=1024] [rows=512] [rounds=15] [modes=auto,on,tiles]
 * </pre>
 */
public final class ExpertTiming {
    private ExpertTiming() {}

    public static void main(String[] args) {
        Map<String, String> o = new LinkedHashMap<>(Map.of("threads", "2", "e", "8", "d", "512", "f", "1024",
                "rows", "512", "rounds", "15", "modes", "off+fused,off,on+fused,on"));
        for (String a : args) {
            String[] kv = a.split("=", 2);
            o.put(kv[0], kv[1]);
        }
        int threads = Integer.parseInt(o.get("threads")), e = Integer.parseInt(o.get("e")), d = Integer.parseInt(o.get("d"));
        int f = Integer.parseInt(o.get("f")), rows = Integer.parseInt(o.get("rows")), rounds = Integer.parseInt(o.get("rounds"));
        String[] modes = o.get("modes").split(",");
        int total = e * rows;
        try (WorkerPool pool = new WorkerPool(threads); Arena arena = Arena.ofShared()) {
            ExpertBank bank = new ExpertBank(arena, "experts", ExpertType.SWIGLU, e, d, f, total, Kernels.get(), pool);
            SplittableRandom rng = new SplittableRandom(0);
            for (Param p : bank.params()) fill(p.data(), p.numel(), rng, 0.02);
            MemorySegment x = F32.alloc(arena, (long) total * d), dy = F32.alloc(arena, (long) total * d);
            MemorySegment dx = F32.alloc(arena, (long) total * d);
            fill(x, (long) total * d, rng, 1);
            fill(dy, (long) total * d, rng, 1);
            int[] bins = new int[e + 1];
            for (int j = 0; j <= e; j++) bins[j] = j * rows;
            double fwdFlops = 2.0 * total * 3.0 * d * f;
            long[][] best = new long[modes.length][2];
            long[] bestCpu = new long[modes.length];
            java.util.Arrays.fill(bestCpu, Long.MAX_VALUE);
            com.sun.management.OperatingSystemMXBean os =
                    (com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean();
            for (long[] b : best) java.util.Arrays.fill(b, Long.MAX_VALUE);
            for (int r = 0; r < rounds + 3; r++) {
                for (int m = 0; m < modes.length; m++) {
                    bank.splitMode(modes[m].replace("+fused", ""));
                    bank.fusedGateUp(modes[m].endsWith("+fused"));
                    long c0 = os.getProcessCpuTime();
                    long t0 = System.nanoTime();
                    bank.forward(x, 0, bins);
                    long t1 = System.nanoTime();
                    bank.backward(x, 0, bins, dy, 0, dx, 0);
                    long t2 = System.nanoTime();
                    long c1 = os.getProcessCpuTime();
                    if (r >= 3) {
                        best[m][0] = Math.min(best[m][0], t1 - t0);
                        best[m][1] = Math.min(best[m][1], t2 - t1);
                        bestCpu[m] = Math.min(bestCpu[m], c1 - c0);
                    }
                }
            }
            System.out.printf(Locale.ROOT, "E=%d d=%d f=%d rows/expert=%d threads=%d, best of %d interleaved rounds, load %.2f%n",
                    e, d, f, rows, threads, rounds, java.lang.management.ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
            for (int m = 0; m < modes.length; m++) {
                System.out.printf(Locale.ROOT, "  %-12s fwd %7.2f ms %6.1f GFLOP/s   bwd %7.2f ms %6.1f GFLOP/s   fwd+bwd %6.1f GFLOP/s   per CPU-second %6.1f%n",
                        modes[m], best[m][0] / 1e6, fwdFlops / best[m][0], best[m][1] / 1e6, 2 * fwdFlops / best[m][1],
                        3 * fwdFlops / (best[m][0] + best[m][1]), 3 * fwdFlops / bestCpu[m]);
            }
        }
    }

    private static void fill(MemorySegment s, long n, SplittableRandom rng, double scale) {
        for (long i = 0; i < n; i++) F32.set(s, i, (float) (rng.nextGaussian() * scale));
    }
}
