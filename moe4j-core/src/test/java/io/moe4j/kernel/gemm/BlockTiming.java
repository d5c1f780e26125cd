package io.moe4j.kernel.gemm;

import io.moe4j.parallel.WorkerPool;
import jdk.incubator.vector.FloatVector;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.Locale;

/**
 * Not a test: SimdGemm with other block sizes against the defaults, interleaved in one JVM, best of N; wall time
 * and the caller's CPU time (with 1 thread the caller does all the work; CPU time is less disturbed by a loaded
 * machine). {@code java ... BlockTiming threads rounds FORM:MxKxN,... kc/nc/mc,...}
 */
public final class BlockTiming {
    public static void main(String[] args) {
        int threads = Integer.parseInt(args[0]), rounds = Integer.parseInt(args[1]);
        String[] shapes = args[2].split(",");
        String[] variants = ("256/256/1024," + args[3]).split(",");
        ThreadMXBean tm = ManagementFactory.getThreadMXBean();
        SimdGemm[] gemms = new SimdGemm[variants.length];
        for (int v = 0; v < variants.length; v++) {
            String[] b = variants[v].split("/");
            gemms[v] = new SimdGemm(FloatVector.SPECIES_PREFERRED, Integer.parseInt(b[0]), Integer.parseInt(b[1]),
                    Integer.parseInt(b[2]), SimdGemm.A_BLOCK_FLOATS);
        }
        try (WorkerPool pool = new WorkerPool(threads); Arena arena = Arena.ofShared()) {
            for (String shape : shapes) {
                String[] fd = shape.split(":");
                boolean ta = fd[0].charAt(0) == 'T', tb = fd[0].charAt(1) == 'T';
                String[] d = fd[1].split("x");
                int m = Integer.parseInt(d[0]), k = Integer.parseInt(d[1]), n = Integer.parseInt(d[2]);
                MemorySegment a = GemmTiming.random(arena, (long) m * k, 1), b = GemmTiming.random(arena, (long) k * n, 2);
                MemorySegment c = arena.allocate((long) m * n * 4, 64);
                int lda = ta ? m : k, ldb = tb ? k : n;
                long[] wall = new long[variants.length], cpu = new long[variants.length];
                java.util.Arrays.fill(wall, Long.MAX_VALUE);
                java.util.Arrays.fill(cpu, Long.MAX_VALUE);
                for (int r = 0; r < rounds + 5; r++) {
                    for (int v = 0; v < variants.length; v++) {
                        long c0 = tm.getCurrentThreadCpuTime(), t0 = System.nanoTime();
                        gemms[v].sgemm(pool, ta, tb, m, n, k, a, 0, lda, b, 0, ldb, c, 0, n, true);
                        long t = System.nanoTime() - t0, cc = tm.getCurrentThreadCpuTime() - c0;
                        if (r >= 5) {
                            wall[v] = Math.min(wall[v], t);
                            cpu[v] = Math.min(cpu[v], cc);
                        }
                    }
                }
                double fl = 2.0 * m * n * k;
                StringBuilder sb = new StringBuilder(String.format(Locale.ROOT, "threads=%d %-16s", threads, shape));
                for (int v = 0; v < variants.length; v++) {
                    sb.append(String.format(Locale.ROOT, "  %s: %5.1f (cpu %5.1f)", variants[v], fl / wall[v], fl / cpu[v]));
                }
                sb.append(String.format(Locale.ROOT, "  load %.2f", ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage()));
                System.out.println(sb);
            }
        }
    }
}
