package io.moe4j.moe;

import io.moe4j.kernel.Kernels;
import io.moe4j.nn.F32;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Not a test: where the MoE layer's fwd+bwd time goes at the bench shape (T=2048, d=512, E=8, k=2, f=1024), in one
 * JVM, interleaved rounds: the whole layer (bench setup), its expert bank alone on the layer's own (uneven) bins,
 * and an expert bank of the same shape on even bins. Separates bin imbalance and non-expert work from GEMM speed.
 *
 * <pre>
 * java --add-modules=jdk.incubator.vector -cp moe4j-core/target/classes:moe4j-core/target/test-classes:slf4j-api.jar \
 *     io.moe4j.moe.LayerTiming [threads=2] [rounds=8] [modes=auto] [warm=seconds]
 * </pre>
 */
public final class LayerTiming {
    private LayerTiming() {}

    public static void main(String[] args) {
        Map<String, String> o = new LinkedHashMap<>(Map.of("threads", "2", "rounds", "8", "modes", "auto",
                "t", "2048", "d", "512", "e", "8", "k", "2", "f", "1024", "warm", "0"));
        for (String a : args) {
            String[] kv = a.split("=", 2);
            o.put(kv[0], kv[1]);
        }
        int threads = Integer.parseInt(o.get("threads")), rounds = Integer.parseInt(o.get("rounds"));
        int t = Integer.parseInt(o.get("t")), d = Integer.parseInt(o.get("d")), e = Integer.parseInt(o.get("e"));
        int k = Integer.parseInt(o.get("k")), f = Integer.parseInt(o.get("f"));
        String[] modes = o.get("modes").split(",");
        Kernels kernels = Kernels.get();
        try (WorkerPool pool = new WorkerPool(threads); Arena arena = Arena.ofShared()) {
            MoeConfig c = MoeConfig.builder().dModel(d).numExperts(e).topK(k).expertHidden(f).maxTokens(t)
                    .balanceCoef(0.01).build();
            MoeLayer layer = new MoeLayer(c, arena, kernels, pool);
            layer.init(new SplittableRandom(0), 0.02, 1.0);
            int n = t * d;
            MemorySegment x = F32.alloc(arena, n), y = F32.alloc(arena, n), dy = F32.alloc(arena, n), dx = F32.alloc(arena, n);
            SplittableRandom rng = new SplittableRandom(1);
            for (int i = 0; i < n; i++) {
                F32.set(x, i, (float) rng.nextGaussian());
                F32.set(dy, i, (float) rng.nextGaussian());
            }
            layer.forward(x, 0, t, y, 0, true);
            long warmEnd = System.nanoTime() + (long) (Double.parseDouble(o.get("warm")) * 1e9);
            while (System.nanoTime() < warmEnd) {
                layer.forward(x, 0, t, y, 0, true);
                layer.backward(x, 0, dy, 0, dx, 0);
            }
            int[] load = layer.routing().load;
            int[] bins = new int[e + 1];
            for (int j = 0; j < e; j++) bins[j + 1] = bins[j] + load[j];
            int rows = bins[e];
            int[] even = new int[e + 1];
            for (int j = 0; j <= e; j++) even[j] = (int) ((long) j * rows / e);
            System.out.println("layer bins: " + Arrays.toString(Arrays.copyOf(load, e)));

            ExpertBank bank = new ExpertBank(arena, "b", ExpertType.SWIGLU, e, d, f, rows, kernels, pool);
            for (Param p : bank.params()) fill(p.data(), p.numel(), rng, 0.02);
            MemorySegment xb = F32.alloc(arena, (long) rows * d), dyb = F32.alloc(arena, (long) rows * d);
            MemorySegment dxb = F32.alloc(arena, (long) rows * d);
            fill(xb, (long) rows * d, rng, 1);
            fill(dyb, (long) rows * d, rng, 1);
            double flops = 3 * 2.0 * rows * 3.0 * d * f;

            String[] names = new String[3 * modes.length];
            long[] best = new long[names.length];
            long[] bestF = new long[names.length];
            long[] cpuSum = new long[names.length], wallSum = new long[names.length], poolCpu = new long[names.length];
            java.lang.management.ThreadMXBean tmx = java.lang.management.ManagementFactory.getThreadMXBean();
            long[] poolThreads = Thread.getAllStackTraces().keySet().stream()
                    .filter(th -> th.getName().startsWith("moe4j-worker") || th == Thread.currentThread())
                    .mapToLong(Thread::threadId).toArray();
            java.util.function.LongSupplier poolCpuNow = () -> {
                long sum = 0;
                for (long id : poolThreads) sum += Math.max(0, tmx.getThreadCpuTime(id));
                return sum;
            };
            long jit0 = java.lang.management.ManagementFactory.getCompilationMXBean().getTotalCompilationTime();
            com.sun.management.OperatingSystemMXBean os = (com.sun.management.OperatingSystemMXBean)
                    java.lang.management.ManagementFactory.getOperatingSystemMXBean();
            Arrays.fill(best, Long.MAX_VALUE);
            Arrays.fill(bestF, Long.MAX_VALUE);
            for (int r = 0; r < rounds + 3; r++) {
                for (int m = 0; m < modes.length; m++) {
                    layer.experts().splitMode(modes[m]);
                    bank.splitMode(modes[m]);
                    for (int v = 0; v < 3; v++) {
                        int i = 3 * m + v;
                        names[i] = modes[m] + (v == 0 ? " layer" : v == 1 ? " bank, layer bins" : " bank, even bins");
                        long c0 = os.getProcessCpuTime(), p0 = poolCpuNow.getAsLong();
                        long t0 = System.nanoTime(), t1;
                        if (v == 0) {
                            layer.forward(x, 0, t, y, 0, true);
                            t1 = System.nanoTime();
                            layer.backward(x, 0, dy, 0, dx, 0);
                        } else {
                            int[] b = v == 1 ? bins : even;
                            bank.forward(xb, 0, b);
                            t1 = System.nanoTime();
                            bank.backward(xb, 0, b, dyb, 0, dxb, 0);
                        }
                        long t2 = System.nanoTime();
                        if (r >= 3) {
                            cpuSum[i] += os.getProcessCpuTime() - c0;
                            poolCpu[i] += poolCpuNow.getAsLong() - p0;
                            wallSum[i] += t2 - t0;
                            best[i] = Math.min(best[i], t2 - t0);
                            bestF[i] = Math.min(bestF[i], t1 - t0);
                        }
                    }
                }
            }
            System.out.printf(Locale.ROOT, "T=%d d=%d E=%d k=%d f=%d threads=%d, best of %d interleaved rounds, load %.2f, "
                            + "JIT compile time during the rounds %d ms%n", t, d, e, k, f, threads, rounds,
                    java.lang.management.ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage(),
                    java.lang.management.ManagementFactory.getCompilationMXBean().getTotalCompilationTime() - jit0);
            for (int i = 0; i < names.length; i++) {
                System.out.printf(Locale.ROOT, "  %-24s fwd %7.2f ms  fwd+bwd %7.2f ms  %6.1f GFLOP/s  %6.2fk tok/s"
                                + "   all rounds: CPU-s/s %.2f, GFLOP per CPU-s %5.1f (pool threads only %5.1f)%n",
                        names[i], bestF[i] / 1e6, best[i] / 1e6, flops / best[i], t / (best[i] / 1e9) / 1000,
                        (double) cpuSum[i] / wallSum[i], flops * rounds / cpuSum[i], flops * rounds / poolCpu[i]);
            }
        }
    }

    static void fill(MemorySegment s, long n, SplittableRandom rng, double scale) {
        for (long i = 0; i < n; i++) F32.set(s, i, (float) (rng.nextGaussian() * scale));
    }
}
