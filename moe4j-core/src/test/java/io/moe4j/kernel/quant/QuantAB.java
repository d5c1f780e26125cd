package io.moe4j.kernel.quant;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Same-JVM, interleaved A/B timing of two builds of the quant kernels (not a JUnit test). Each build's classes are
 * loaded by their own class loader (parent: the platform loader), so an old build (e.g. {@code git stash; mvn
 * test-compile; cp -r target/classes /tmp/quant-base/classes}) runs next to the current one on the same weights,
 * alternating A, B, A, B ... — on a shared machine the load then hits both alike. Prints best and median GB/s
 * (weight bytes / wall time) per build and the ratios B/A, also of the calling thread's CPU time (with one
 * thread that is the kernel's own time, robust to the machine's load; with two it misses the worker's part).
 *
 * <pre>
 *   java --add-modules=jdk.incubator.vector -cp target/test-classes io.moe4j.kernel.quant.QuantAB \
 *        /tmp/quant-base/classes target/classes
 *   -Dtypes=Q4_0,Q8_0  -Dshapes=3584x1024,4096x4096  -Dn=1,2,4  -Dthreads=1,2  -Drounds=15
 *   -Dcold=268435456 (bytes of weight copies cycled; 0 = one copy, cache-hot)  -Dwarmup=1.5 (seconds per build)
 * </pre>
 */
public final class QuantAB {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED;

    /** One build: its class loader, a worker pool and the kernel's matmul bound to the instance. */
    record Build(String name, Object pool, MethodHandle matmul, Object[] dtypes, AutoCloseable closer) {}

    public static void main(String[] args) throws Throwable {
        if (args.length < 2) throw new IllegalArgumentException("usage: QuantAB <classesA> <classesB>");
        String[] types = System.getProperty("types", "Q4_0,Q8_0").split(",");
        String[] shapes = System.getProperty("shapes", "3584x1024,4096x4096").split(",");
        int[] ns = Arrays.stream(System.getProperty("n", "1").split(",")).mapToInt(Integer::parseInt).toArray();
        int[] threadCounts = Arrays.stream(System.getProperty("threads", "1,2").split(",")).mapToInt(Integer::parseInt).toArray();
        int rounds = Integer.getInteger("rounds", 15);
        long cold = Long.getLong("cold", 256L << 20);
        double warmup = Double.parseDouble(System.getProperty("warmup", "1.5"));
        System.out.printf(Locale.ROOT, "A = %s%nB = %s%nrounds %d, cold %d MiB, warm-up %.1f s per build%n",
                args[0], args[1], rounds, cold >> 20, warmup);
        for (int threads : threadCounts) {
            Build a = load("A", Path.of(args[0]), threads), b = load("B", Path.of(args[1]), threads);
            try (Arena arena = Arena.ofShared()) {
                for (String type : types) {
                    for (String shape : shapes) {
                        String[] rk = shape.split("x");
                        for (int n : ns) {
                            run(arena, a, b, type.trim(), Integer.parseInt(rk[0]), Integer.parseInt(rk[1]), n, threads,
                                    rounds, cold, warmup);
                        }
                    }
                }
            } finally {
                a.closer.close();
                b.closer.close();
            }
        }
    }

    static Build load(String name, Path classes, int threads) throws Throwable {
        URLClassLoader cl = new URLClassLoader(name, new URL[] {classes.toUri().toURL()}, ClassLoader.getPlatformClassLoader());
        Class<?> poolClass = cl.loadClass("io.moe4j.parallel.WorkerPool");
        Class<?> dtype = cl.loadClass("io.moe4j.tensor.DType");
        Class<?> kernelClass = cl.loadClass(System.getProperty("kernel", "io.moe4j.kernel.quant.SimdQuantMatmul"));
        Object pool = poolClass.getConstructor(int.class).newInstance(threads);
        Object kernel = kernelClass.getConstructor().newInstance();
        MethodHandle mm = MethodHandles.publicLookup().findVirtual(kernelClass, "matmul", MethodType.methodType(void.class,
                poolClass, dtype, MemorySegment.class, long.class, int.class, int.class, MemorySegment.class, long.class,
                int.class, int.class, MemorySegment.class, long.class, int.class, boolean.class)).bindTo(kernel);
        AutoCloseable closer = () -> {
            ((AutoCloseable) pool).close();
            cl.close();
        };
        return new Build(name, pool, mm, dtype.getEnumConstants(), closer);
    }

    static Object dtype(Build b, String name) {
        for (Object o : b.dtypes) if (((Enum<?>) o).name().equals(name)) return o;
        throw new IllegalArgumentException("no DType " + name);
    }

    static void run(Arena arena, Build a, Build b, String type, int rows, int k, int n, int threads, int rounds,
                    long cold, double warmup) throws Throwable {
        int blockBytes = switch (type) {
            case "Q8_0" -> 34; case "Q4_0" -> 18; case "Q4_K" -> 144; case "Q6_K" -> 210;
            default -> throw new IllegalArgumentException("quantized types only: " + type);
        };
        int blockSize = type.endsWith("_K") ? 256 : 32;
        long matBytes = (long) rows * (k / blockSize) * blockBytes;
        int copies = (int) Math.max(1, (cold + matBytes - 1) / matBytes);
        MemorySegment w = arena.allocate(matBytes * copies, 64);
        SplittableRandom rnd = new SplittableRandom(7);
        for (long o = 0; o + 8 <= w.byteSize(); o += 8) w.set(ValueLayout.JAVA_LONG_UNALIGNED, o, rnd.nextLong());
        short scale = Float.floatToFloat16(0.01f);
        int scaleAt = type.equals("Q6_K") ? 208 : 0;
        for (long o = 0; o + blockBytes <= w.byteSize(); o += blockBytes) {
            w.set(ValueLayout.JAVA_SHORT_UNALIGNED, o + scaleAt, scale);
            if (type.equals("Q4_K")) w.set(ValueLayout.JAVA_SHORT_UNALIGNED, o + 2, scale);
        }
        MemorySegment x = arena.allocate(4L * k * n, 64);
        for (long i = 0; i < (long) k * n; i++) x.setAtIndex(F32, i, (float) rnd.nextGaussian());
        MemorySegment ya = arena.allocate(4L * rows * n, 64), yb = arena.allocate(4L * rows * n, 64);
        Object ta = dtype(a, type), tb = dtype(b, type);
        int passes = Math.max(copies, (int) Math.min(200, Math.max(4, (64L << 20) / matBytes)));

        // warm-up (alternating, so both get C2-compiled before timing)
        long until = System.nanoTime() + (long) (warmup * 2e9);
        while (System.nanoTime() < until) {
            time(a, ta, w, matBytes, copies, 2, rows, k, x, n, ya);
            time(b, tb, w, matBytes, copies, 2, rows, k, x, n, yb);
        }
        double maxDiff = 0, maxAbs = 0;
        for (long i = 0; i < (long) rows * n; i++) {
            maxDiff = Math.max(maxDiff, Math.abs(ya.getAtIndex(F32, i) - yb.getAtIndex(F32, i)));
            maxAbs = Math.max(maxAbs, Math.abs(ya.getAtIndex(F32, i)));
        }
        List<Double> ra = new ArrayList<>(), rb = new ArrayList<>(), ca = new ArrayList<>(), cb = new ArrayList<>();
        for (int r = 0; r < rounds; r++) {
            ra.add(matBytes / time(a, ta, w, matBytes, copies, passes, rows, k, x, n, ya));
            ca.add(matBytes / lastCpu);
            rb.add(matBytes / time(b, tb, w, matBytes, copies, passes, rows, k, x, n, yb));
            cb.add(matBytes / lastCpu);
        }
        for (List<Double> l : List.of(ra, rb, ca, cb)) l.sort(null);
        double bestA = ra.getLast(), bestB = rb.getLast(), medA = ra.get(rounds / 2), medB = rb.get(rounds / 2);
        System.out.printf(Locale.ROOT, "%-4s %5dx%-5d n=%d thr=%d  A best %6.2f med %6.2f GB/s | B best %6.2f med %6.2f GB/s"
                        + " | B/A best %.2f med %.2f | caller-CPU B/A best %.2f med %.2f  (max|yA-yB| %.2g of max|y| %.2g)%n",
                type, rows, k, n, threads, bestA, medA, bestB, medB, bestB / bestA, medB / medA,
                cb.getLast() / ca.getLast(), cb.get(rounds / 2) / ca.get(rounds / 2), maxDiff, maxAbs);
    }

    private static final java.lang.management.ThreadMXBean CPU = java.lang.management.ManagementFactory.getThreadMXBean();
    /** Calling thread's CPU nanoseconds per call of the last {@link #time}: with 1 thread, immune to descheduling. */
    private static double lastCpu;

    /** Nanoseconds per call, averaged over {@code passes} calls cycling over the copies. */
    static double time(Build bld, Object type, MemorySegment w, long matBytes, int copies, int passes, int rows, int k,
                       MemorySegment x, int n, MemorySegment y) throws Throwable {
        long c0 = CPU.getCurrentThreadCpuTime();
        long t0 = System.nanoTime();
        for (int p = 0; p < passes; p++) {
            bld.matmul.invoke(bld.pool, type, w, (p % copies) * matBytes, rows, k, x, 0L, k, n, y, 0L, rows, false);
        }
        long dt = System.nanoTime() - t0;
        lastCpu = (CPU.getCurrentThreadCpuTime() - c0) / (double) passes;
        return dt / (double) passes;
    }
}
