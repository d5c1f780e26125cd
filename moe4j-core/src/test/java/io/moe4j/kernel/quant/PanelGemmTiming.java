package io.moe4j.kernel.quant;

import io.moe4j.parallel.WorkerPool;
import io.moe4j.tensor.DType;
import io.moe4j.tensor.quant.Quant;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Same-JVM, interleaved A/B timing of the small-N kernels ({@link SimdQuantMatmul} with the panel path switched
 * off) against {@link PanelGemm} on the Mixtral-like model's shapes, to pick {@link PanelGemm#MIN_N} (not a JUnit
 * test). Rounds alternate old, new, old, new, ...; each side reports its best round (the machine is shared).
 *
 * <pre>
 *   java --add-modules=jdk.incubator.vector -cp moe4j-core/target/classes:moe4j-core/target/test-classes:$(deps) \
 *        io.moe4j.kernel.quant.PanelGemmTiming [rounds] [threads]
 * </pre>
 * {@code -Dtypes=Q8_0,Q4_0} weight formats, {@code -Dns=8,16,32,64,128} row counts, {@code -Dshapes=3584x1024,...}
 * (rows x K). GFLOP/s = 2·N·rows·K / time; with 1 thread, time is the calling thread's CPU time.
 */
public final class PanelGemmTiming {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;

    public static void main(String[] args) {
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 5;
        int threads = args.length > 1 ? Integer.parseInt(args[1]) : 2;
        String[] types = System.getProperty("types", "Q8_0,Q4_0").split(",");
        int[] ns = java.util.Arrays.stream(System.getProperty("ns", "8,16,32,64,128").split(",")).mapToInt(Integer::parseInt).toArray();
        String[] shapes = System.getProperty("shapes", "3584x1024,1024x3584,1024x1024").split(",");
        SimdQuantMatmul old = new SimdQuantMatmul();
        // -Dkc / -Dnc: other block sizes for the new side (experiments)
        PanelGemm panel = new PanelGemm(jdk.incubator.vector.FloatVector.SPECIES_PREFERRED,
                Integer.getInteger("kc", PanelGemm.KC), Integer.getInteger("nc", PanelGemm.NC), PanelGemm.A_FLOATS);
        System.out.printf(Locale.ROOT, "old %s vs new %s, %d threads, best of %d interleaved rounds%n",
                old.name(), panel.name(), threads, rounds);
        try (Arena arena = Arena.ofShared(); WorkerPool pool = new WorkerPool(threads)) {
            // Warm-up: every kernel of every type through C2 before the first timed round (a few seconds).
            for (String tn : types) {
                DType t = DType.valueOf(tn.trim());
                MemorySegment w = weights(arena, t, 1024, 1024);
                MemorySegment x = arena.allocate(4L * 128 * 1024), y = arena.allocate(4L * 128 * 1024);
                for (int r = 0; r < 30; r++) {
                    PanelGemm.minN = Integer.MAX_VALUE;
                    time(old, pool, t, w, 1024, 1024, x, r % 2 == 0 ? 128 : 8, y, 2);
                    PanelGemm.minN = PanelGemm.MIN_N;
                    time(panel, pool, t, w, 1024, 1024, x, r % 2 == 0 ? 128 : 8, y, 2);
                }
            }
            for (String tn : types) {
                DType t = DType.valueOf(tn.trim());
                for (String shape : shapes) {
                    String[] rk = shape.trim().split("x");
                    int rows = Integer.parseInt(rk[0]), k = Integer.parseInt(rk[1]);
                    MemorySegment w = weights(arena, t, rows, k);
                    for (int n : ns) {
                        if (rows == k && rows == 1024 && n != 128 && shapes.length > 2) continue; // attention: prompt size only
                        MemorySegment x = arena.allocate(4L * n * k), y = arena.allocate(4L * n * rows);
                        SplittableRandom rnd = new SplittableRandom(n);
                        for (long i = 0; i < (long) n * k; i++) x.setAtIndex(F32, i, (float) rnd.nextGaussian());
                        double flop = 2.0 * n * rows * k;
                        int reps = (int) Math.max(1, Math.min(200, 2e9 / 40 / flop * 4)); // ~20-50 ms per round
                        double bestOld = Double.MAX_VALUE, bestNew = Double.MAX_VALUE;
                        for (int r = 0; r < rounds + 1; r++) { // round 0 warms both up
                            PanelGemm.minN = Integer.MAX_VALUE;
                            double a = time(old, pool, t, w, rows, k, x, n, y, reps);
                            PanelGemm.minN = PanelGemm.MIN_N;
                            double b = time(panel, pool, t, w, rows, k, x, n, y, reps);
                            if (r > 0) {
                                bestOld = Math.min(bestOld, a);
                                bestNew = Math.min(bestNew, b);
                            }
                        }
                        System.out.printf(Locale.ROOT, "%-4s %5d x %-5d n=%-4d old %6.1f GFLOP/s  new %6.1f GFLOP/s  new/old %.2fx%n",
                                t, rows, k, n, flop / bestOld / 1e9, flop / bestNew / 1e9, bestOld / bestNew);
                    }
                }
            }
        }
    }

    static MemorySegment weights(Arena arena, DType t, int rows, int k) {
        MemorySegment w = arena.allocate(t.byteSize((long) rows * k), 64);
        SplittableRandom rnd = new SplittableRandom(7);
        float[] row = new float[k];
        for (int r = 0; r < rows; r++) {
            for (int j = 0; j < k; j++) row[j] = (float) (rnd.nextGaussian() * 0.05);
            Quant.quantize(t, row, 0, w, r * t.byteSize(k), k);
        }
        return w;
    }

    private static final java.lang.management.ThreadMXBean CPU = java.lang.management.ManagementFactory.getThreadMXBean();

    /**
     * Seconds per call, averaged over {@code reps} calls: wall time, or with 1 thread (the caller does all the
     * work) the caller's CPU time, which a loaded machine disturbs much less.
     */
    static double time(QuantMatmul q, WorkerPool pool, DType t, MemorySegment w, int rows, int k, MemorySegment x,
                       int n, MemorySegment y, int reps) {
        boolean cpu = pool.threads() == 1;
        long t0 = cpu ? CPU.getCurrentThreadCpuTime() : System.nanoTime();
        for (int i = 0; i < reps; i++) q.matmul(pool, t, w, 0, rows, k, x, 0, k, n, y, 0, rows, false);
        return ((cpu ? CPU.getCurrentThreadCpuTime() : System.nanoTime()) - t0) / 1e9 / reps;
    }
}
