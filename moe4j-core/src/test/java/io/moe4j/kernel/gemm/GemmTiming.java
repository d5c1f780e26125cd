package io.moe4j.kernel.gemm;

import io.moe4j.parallel.WorkerPool;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Locale;
import java.util.Random;

/**
 * Not a test: a timing main for {@link SimdGemm}, for tuning and for the numbers quoted in its Javadoc.
 * Each shape runs until C2 has compiled it, then the best of several timed rounds is printed.
 *
 * <pre>
 * java --add-modules=jdk.incubator.vector -cp moe4j-core/target/classes:moe4j-core/target/test-classes \
 *     io.moe4j.kernel.gemm.GemmTiming [threads=1,2] [bits=512,256] [shapes=NT:2048x2048x2048,NT:64x2048x1024,...]
 * </pre>
 * Shapes are {@code FORM:MxKxN} with FORM one of NN, NT, TN, TT.
 */
public final class GemmTiming {
    private GemmTiming() {}

    public static void main(String[] args) {
        String threads = "1,2", bits = "512,256";
        String shapes = "NT:2048x2048x2048,NN:2048x2048x2048,TN:2048x2048x2048,"
                + "NT:64x2048x1024,NN:64x2048x1024,TN:64x2048x1024";
        double seconds = 0.4;
        for (String arg : args) {
            String[] kv = arg.split("=", 2);
            switch (kv[0]) {
                case "threads" -> threads = kv[1];
                case "bits" -> bits = kv[1];
                case "shapes" -> shapes = kv[1];
                case "seconds" -> seconds = Double.parseDouble(kv[1]);
                default -> throw new IllegalArgumentException("unknown argument " + arg);
            }
        }
        for (String t : threads.split(",")) {
            try (WorkerPool pool = new WorkerPool(Integer.parseInt(t))) {
                for (String bw : bits.split(",")) {
                    Gemm gemm = bw.equals("scalar") ? new ScalarGemm() : new SimdGemm(species(Integer.parseInt(bw)));
                    for (String shape : shapes.split(",")) {
                        double gflops = time(pool, gemm, shape, seconds);
                        System.out.printf(Locale.ROOT, "threads=%s %-16s %-20s %7.1f GFLOP/s%n", t, gemm.name(), shape, gflops);
                    }
                }
            }
        }
    }

    static VectorSpecies<Float> species(int bits) {
        return switch (bits) {
            case 512 -> FloatVector.SPECIES_512;
            case 256 -> FloatVector.SPECIES_256;
            case 128 -> FloatVector.SPECIES_128;
            default -> FloatVector.SPECIES_PREFERRED;
        };
    }

    static double time(WorkerPool pool, Gemm gemm, String shape, double seconds) {
        String[] fd = shape.split(":");
        boolean ta = fd[0].charAt(0) == 'T', tb = fd[0].charAt(1) == 'T';
        String[] d = fd[1].split("x");
        int m = Integer.parseInt(d[0]), k = Integer.parseInt(d[1]), n = Integer.parseInt(d[2]);
        try (Arena arena = Arena.ofShared()) {
            MemorySegment a = random(arena, (long) m * k, 1), b = random(arena, (long) k * n, 2);
            MemorySegment c = arena.allocate((long) m * n * 4, 64);
            int lda = ta ? m : k, ldb = tb ? k : n;
            double flops = 2.0 * m * n * k;
            long best = Long.MAX_VALUE;
            long end = System.nanoTime() + (long) (seconds * 3e9);
            int rounds = 0;
            // Warm-up (C2) and timing in one loop: keep the best of the rounds after the first third.
            while (System.nanoTime() < end || rounds < 6) {
                int reps = Math.max(1, (int) (2e8 / flops));
                long t0 = System.nanoTime();
                for (int r = 0; r < reps; r++) gemm.sgemm(pool, ta, tb, m, n, k, a, 0, lda, b, 0, ldb, c, 0, n, false);
                long dt = (System.nanoTime() - t0) / reps;
                if (rounds++ >= 2) best = Math.min(best, dt);
            }
            return flops / best;
        }
    }

    static MemorySegment random(Arena arena, long count, long seed) {
        MemorySegment s = arena.allocate(count * 4, 64);
        Random rnd = new Random(seed);
        for (long i = 0; i < count; i++) s.setAtIndex(ValueLayout.JAVA_FLOAT, i, rnd.nextFloat() - 0.5f);
        return s;
    }
}
