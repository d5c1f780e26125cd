package io.moe4j.kernel.quant;

import io.moe4j.parallel.WorkerPool;
import io.moe4j.tensor.DType;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Matvec timing for the quantized kernels next to the machine's memory read bandwidth, measured in the same
 * process (not a JUnit test). Weights are cycled through enough copies to exceed the L3 cache, so the numbers
 * are DRAM-bound. GB/s = weight bytes / time; best of the repetitions (the machine is shared).
 *
 * <pre>
 *   java --add-modules=jdk.incubator.vector -cp target/classes:target/test-classes \
 *        io.moe4j.kernel.quant.QuantTiming [bits: 512|256|128|preferred] [reps] [n]
 * </pre>
 * {@code -Dtypes=F16,BF16} picks the weight formats (default Q8_0,Q4_0,F16,BF16; several in one JVM are fine), {@code -Dthreads=2} only that
 * thread count (default 1 and 2). {@code -Dcold=0} reuses one matrix (cache-hot: the kernels' compute ceiling); {@code -Dsmall=true} times a
 * 256×4096 matrix instead of the two issue shapes, {@code -Dshapes=4096x4096,8192x2048} any shapes (rows x K). The "caller CPU time" column divides by the calling thread's
 * CPU time rather than wall time: on a shared machine it shows what the kernel does when it gets the core.
 */
public final class QuantTiming {
    private static final long COLD_BYTES = Long.getLong("cold", 256L << 20); // > L3 (32 MiB here): DRAM-bound

    private static final int[][] SHAPES = System.getProperty("shapes") != null
            ? java.util.Arrays.stream(System.getProperty("shapes").split(",")).map(sh -> sh.trim().split("x"))
                    .map(a -> new int[] {Integer.parseInt(a[0]), Integer.parseInt(a[1])}).toArray(int[][]::new)
            : Boolean.getBoolean("small") ? new int[][] {{256, 4096}} : new int[][] {{4096, 4096}, {65536, 2048}};

    private static final java.lang.management.ThreadMXBean CPU = java.lang.management.ManagementFactory.getThreadMXBean();
    /** Weight bytes per second of the calling thread's CPU time (meaningful with 1 thread on a busy machine). */
    private static double lastCpuGbs;

    public static void main(String[] args) {
        String bitsArg = args.length > 0 ? args[0] : "preferred";
        int reps = args.length > 1 ? Integer.parseInt(args[1]) : 7;
        int n = args.length > 2 ? Integer.parseInt(args[2]) : 1;
        VectorSpecies<Float> species = switch (bitsArg) {
            case "512" -> FloatVector.SPECIES_512;
            case "256" -> FloatVector.SPECIES_256;
            case "128" -> FloatVector.SPECIES_128;
            default -> FloatVector.SPECIES_PREFERRED;
        };
        QuantMatmul kernel = new SimdQuantMatmul(species);
        System.out.printf(Locale.ROOT, "kernel %s, N=%d, best of %d%n", kernel.name(), n, reps);
        try (Arena arena = Arena.ofShared()) {
            DType[] types = java.util.Arrays.stream(System.getProperty("types", "Q8_0,Q4_0,F16,BF16").split(","))
                    .map(String::trim).map(DType::valueOf).toArray(DType[]::new);
            int only = Integer.getInteger("threads", 0);
            for (int threads = 1; threads <= 2; threads++) {
                if (only != 0 && threads != only) continue;
                try (WorkerPool pool = new WorkerPool(threads)) {
                    System.out.printf(Locale.ROOT, "threads %d: memory read %.1f GB/s%n", threads, bandwidth(arena, pool, reps));
                    for (DType t : types) {
                        for (int[] shape : SHAPES) {
                            double gbs = matvec(arena, pool, kernel, t, shape[0], shape[1], n, reps);
                            System.out.printf(Locale.ROOT, "threads %d: %-4s %5d x %-5d  %.1f GB/s  (%.1f GB/s of caller CPU time)%n",
                                    threads, t, shape[0], shape[1], gbs, lastCpuGbs);
                        }
                    }
                }
            }
        }
    }

    /** Sum of a 1 GiB off-heap float array, split in fixed chunks over the pool. */
    static double bandwidth(Arena arena, WorkerPool pool, int reps) {
        long bytes = 1L << 30;
        MemorySegment m = arena.allocate(bytes, 64);
        for (long o = 0; o < bytes; o += 4096) m.set(ValueLayout.JAVA_FLOAT, o, 1f); // touch every page
        int chunks = 256;
        long chunk = bytes / chunks;
        float[] sink = new float[chunks];
        double best = 0;
        for (int r = 0; r < reps + 2; r++) {
            long t0 = System.nanoTime();
            pool.parallelFor(chunks, (task, worker) -> sink[task] = sum(m, task * chunk, chunk));
            long t1 = System.nanoTime();
            best = Math.max(best, bytes / (double) (t1 - t0));
        }
        if (sink[0] < 0) System.out.println(); // keep the sums alive
        return best;
    }

    private static float sum(MemorySegment m, long off, long bytes) {
        VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
        FloatVector a = FloatVector.zero(F), b = a, c = a, d = a;
        long step = 4L * F.vectorByteSize();
        for (long o = off; o < off + bytes; o += step) {
            a = a.add(FloatVector.fromMemorySegment(F, m, o, java.nio.ByteOrder.LITTLE_ENDIAN));
            b = b.add(FloatVector.fromMemorySegment(F, m, o + F.vectorByteSize(), java.nio.ByteOrder.LITTLE_ENDIAN));
            c = c.add(FloatVector.fromMemorySegment(F, m, o + 2L * F.vectorByteSize(), java.nio.ByteOrder.LITTLE_ENDIAN));
            d = d.add(FloatVector.fromMemorySegment(F, m, o + 3L * F.vectorByteSize(), java.nio.ByteOrder.LITTLE_ENDIAN));
        }
        return a.add(b).add(c.add(d)).reduceLanes(VectorOperators.ADD);
    }

    static double matvec(Arena arena, WorkerPool pool, QuantMatmul kernel, DType t, int rows, int k, int n, int reps) {
        long matBytes = t.byteSize((long) rows * k);
        int copies = (int) Math.max(1, (COLD_BYTES + matBytes - 1) / matBytes);
        MemorySegment w = arena.allocate(matBytes * copies, 64);
        if (t.isQuantized()) fillRandomBlocks(w, t);
        else fillRandomFloats(w, t);
        MemorySegment x = arena.allocate(4L * k * n, 64);
        SplittableRandom rnd = new SplittableRandom(1);
        for (long i = 0; i < (long) k * n; i++) x.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) rnd.nextDouble(-1, 1));
        MemorySegment y = arena.allocate(4L * rows * n, 64);
        double best = Double.MAX_VALUE, bestCpu = Double.MAX_VALUE;
        int passes = Math.max(copies, 4);
        for (int r = 0; r < reps + 1; r++) {
            long c0 = CPU.getCurrentThreadCpuTime();
            long t0 = System.nanoTime();
            for (int p = 0; p < passes; p++) {
                kernel.matmul(pool, t, w, (p % copies) * matBytes, rows, k, x, 0, k, n, y, 0, rows, false);
            }
            long dt = System.nanoTime() - t0;
            long dc = CPU.getCurrentThreadCpuTime() - c0;
            if (r > 0) {
                best = Math.min(best, dt / (double) passes);
                bestCpu = Math.min(bestCpu, dc / (double) passes);
            }
        }
        lastCpuGbs = matBytes / bestCpu;
        return matBytes / best;
    }

    /** Uniform values in [-1, 1) as F32 / F16 / BF16 (no NaN or infinity: the float formats' realistic case). */
    private static void fillRandomFloats(MemorySegment w, DType t) {
        SplittableRandom rnd = new SplittableRandom(7);
        long n = w.byteSize() / t.byteSize(1);
        for (long i = 0; i < n; i++) {
            float f = (float) rnd.nextDouble(-1, 1);
            switch (t) {
                case F32 -> w.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, f);
                case F16 -> w.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, Float.floatToFloat16(f));
                default -> w.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, (short) (Float.floatToRawIntBits(f) >>> 16));
            }
        }
    }

    /** Random quants with a small valid fp16 scale in every block. */
    private static void fillRandomBlocks(MemorySegment w, DType t) {
        SplittableRandom rnd = new SplittableRandom(7);
        long size = w.byteSize();
        for (long o = 0; o + 8 <= size; o += 8) w.set(ValueLayout.JAVA_LONG_UNALIGNED, o, rnd.nextLong());
        for (long o = 0; o + t.bytesPerBlock() <= size; o += t.bytesPerBlock()) {
            w.set(ValueLayout.JAVA_SHORT_UNALIGNED, o, Float.floatToFloat16(0.01f));
        }
    }
}
