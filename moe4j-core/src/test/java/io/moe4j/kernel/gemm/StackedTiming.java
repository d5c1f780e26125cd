package io.moe4j.kernel.gemm;

import io.moe4j.parallel.WorkerPool;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.Locale;

/**
 * Not a test: the fused gate|up GEMMs of one E=8 expert (rows × d = 512 × 512, f = 1024) as one stacked call
 * against two plain calls, interleaved, best of N; wall time and (1 thread) this thread's CPU time, which a loaded
 * machine disturbs less. {@code java ... io.moe4j.kernel.gemm.StackedTiming [threads] [rounds] [rows d f]}
 */
public final class StackedTiming {
    public static void main(String[] args) {
        int threads = args.length > 0 ? Integer.parseInt(args[0]) : 1, rounds = args.length > 1 ? Integer.parseInt(args[1]) : 20;
        int r = args.length > 2 ? Integer.parseInt(args[2]) : 512, d = args.length > 3 ? Integer.parseInt(args[3]) : 512;
        int f = args.length > 4 ? Integer.parseInt(args[4]) : 1024;
        ThreadMXBean tm = ManagementFactory.getThreadMXBean();
        try (WorkerPool pool = new WorkerPool(threads); Arena arena = Arena.ofShared()) {
            Gemm g = new SimdGemm();
            MemorySegment x = GemmTiming.random(arena, (long) r * d, 1), wg = GemmTiming.random(arena, (long) f * d, 2);
            MemorySegment wu = GemmTiming.random(arena, (long) f * d, 3), hu = GemmTiming.random(arena, (long) r * 2 * f, 4);
            MemorySegment dx = arena.allocate((long) r * d * 4, 64);
            MemorySegment gg = arena.allocate((long) f * d * 4, 64), gu = arena.allocate((long) f * d * 4, 64);
            Runnable[][] pairs = {
                    {() -> g.sgemmStacked(pool, false, true, r, 2 * f, d, x, 0, d, wg, 0, wu, 0, f, d, hu, 0, hu, 0, Integer.MAX_VALUE, 2 * f, false),
                     () -> { g.nt(pool, r, f, d, x, 0, d, wg, 0, d, hu, 0, 2 * f, false); g.nt(pool, r, f, d, x, 0, d, wu, 0, d, hu, f, 2 * f, false); }},
                    {() -> g.sgemmStacked(pool, true, false, 2 * f, d, r, hu, 0, 2 * f, x, 0, x, 0, Integer.MAX_VALUE, d, gg, 0, gu, 0, f, d, true),
                     () -> { g.tn(pool, f, d, r, hu, 0, 2 * f, x, 0, d, gg, 0, d, true); g.tn(pool, f, d, r, hu, f, 2 * f, x, 0, d, gu, 0, d, true); }},
                    {() -> g.sgemmStacked(pool, false, false, r, d, 2 * f, hu, 0, 2 * f, wg, 0, wu, 0, f, d, dx, 0, dx, 0, Integer.MAX_VALUE, d, false),
                     () -> { g.nn(pool, r, d, f, hu, 0, 2 * f, wg, 0, d, dx, 0, d, false); g.nn(pool, r, d, f, hu, f, 2 * f, wu, 0, d, dx, 0, d, true); }}};
            String[] names = {"forward NT [H|U]", "weight grad TN", "input grad NN"};
            double flops = 2.0 * r * d * 2 * f;
            for (int p = 0; p < pairs.length; p++) {
                long[] wall = {Long.MAX_VALUE, Long.MAX_VALUE}, cpu = {Long.MAX_VALUE, Long.MAX_VALUE};
                for (int round = 0; round < rounds + 5; round++) {
                    for (int v = 0; v < 2; v++) {
                        long c0 = tm.getCurrentThreadCpuTime(), t0 = System.nanoTime();
                        pairs[p][v].run();
                        long t = System.nanoTime() - t0, c = tm.getCurrentThreadCpuTime() - c0;
                        if (round >= 5) {
                            wall[v] = Math.min(wall[v], t);
                            cpu[v] = Math.min(cpu[v], c);
                        }
                    }
                }
                System.out.printf(Locale.ROOT, "threads=%d %-18s stacked %6.1f  two calls %6.1f GFLOP/s wall (%.3fx); "
                                + "caller CPU %6.1f vs %6.1f (%.3fx)  load %.2f%n", threads, names[p], flops / wall[0], flops / wall[1],
                        (double) wall[1] / wall[0], flops / cpu[0], flops / cpu[1], (double) cpu[1] / cpu[0],
                        ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
            }
        }
    }
}
