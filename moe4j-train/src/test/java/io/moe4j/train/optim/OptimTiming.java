package io.moe4j.train.optim;

import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;

import java.lang.foreign.Arena;
import java.lang.management.ManagementFactory;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Not a test: AdamW step + gradient clipping with the scalar and the Vector API loops, interleaved in one JVM
 * (best of N each). {@code java ... io.moe4j.train.optim.OptimTiming [numel=8000000] [threads=2] [rounds=15]}
 */
public final class OptimTiming {
    private OptimTiming() {}

    public static void main(String[] args) {
        int numel = 8_000_000, threads = 2, rounds = 15;
        for (String a : args) {
            String[] kv = a.split("=", 2);
            switch (kv[0]) {
                case "numel" -> numel = Integer.parseInt(kv[1]);
                case "threads" -> threads = Integer.parseInt(kv[1]);
                case "rounds" -> rounds = Integer.parseInt(kv[1]);
                default -> throw new IllegalArgumentException(a);
            }
        }
        try (Arena arena = Arena.ofShared(); WorkerPool pool = new WorkerPool(threads)) {
            Param p = new Param(arena, "w", 1, numel).initNormal(new SplittableRandom(1), 1);
            p.gradData().fill((byte) 0x3c);
            OptimKernels[] ks = {OptimKernels.scalar(), OptimKernels.simd()};
            AdamW[] opts = {new AdamW(List.of(p), AdamWConfig.defaults(), arena, pool, ks[0]),
                    new AdamW(List.of(p), AdamWConfig.defaults(), arena, pool, ks[1])};
            long[] bestStep = {Long.MAX_VALUE, Long.MAX_VALUE}, bestNorm = {Long.MAX_VALUE, Long.MAX_VALUE};
            for (int r = 0; r < rounds + 5; r++) {
                for (int i = 0; i < 2; i++) {
                    long t0 = System.nanoTime();
                    opts[i].step(1e-9);
                    long t1 = System.nanoTime();
                    double[] s = new double[1];
                    OptimKernels k = ks[i];
                    pool.parallelFor(numel / 65536, (c, w) -> { if (c == 0) s[0] = 0; });
                    long t2 = System.nanoTime();
                    for (long c = 0; c < numel; c += 65536) s[0] += k.sumSquares(p.gradData(), c, Math.min(numel, c + 65536));
                    long t3 = System.nanoTime();
                    if (r >= 5) {
                        bestStep[i] = Math.min(bestStep[i], t1 - t0);
                        bestNorm[i] = Math.min(bestNorm[i], t3 - t2);
                    }
                }
            }
            System.out.printf(Locale.ROOT, "numel=%d threads=%d load %.2f: AdamW step scalar %.2f ms, simd %.2f ms (%.2fx);"
                            + " sum of squares (1 thread) scalar %.2f ms, simd %.2f ms (%.2fx)%n", numel, threads,
                    ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage(),
                    bestStep[0] / 1e6, bestStep[1] / 1e6, (double) bestStep[0] / bestStep[1],
                    bestNorm[0] / 1e6, bestNorm[1] / 1e6, (double) bestNorm[0] / bestNorm[1]);
        }
    }
}
