package io.moe4j.infer;

import io.moe4j.parallel.WorkerPool;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.lang.reflect.Field;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * End-to-end prompt processing with and without the large-N panel path ({@code io.moe4j.kernel.quant.PanelGemm}),
 * in one JVM, interleaved: off, on, off, on, ... (not a JUnit test). The switch is PanelGemm's threshold, set by
 * reflection (off = never reached). With 1 thread the time is the calling thread's CPU time, which other load on
 * the machine disturbs much less than wall time.
 *
 * <pre>
 *   java --add-modules=jdk.incubator.vector -cp ... io.moe4j.infer.PromptPanelTiming MODEL.gguf [rounds] [threads] [tokens]
 * </pre>
 */
public final class PromptPanelTiming {
    /** {@code -DonlyOn=true}: time the panel path only (for a profiler). */
    private static final boolean ONLY_ON = Boolean.getBoolean("onlyOn");

    public static void main(String[] args) throws Exception {
        Path model = Path.of(args[0]);
        int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 5;
        int threads = args.length > 2 ? Integer.parseInt(args[2]) : 2;
        int tokens = args.length > 3 ? Integer.parseInt(args[3]) : 128;
        Field minN = Class.forName("io.moe4j.kernel.quant.PanelGemm").getDeclaredField("minN");
        minN.setAccessible(true);
        int on = minN.getInt(null);
        ThreadMXBean cpu = ManagementFactory.getThreadMXBean();
        boolean useCpu = threads == 1;
        try (Model m = Model.open(model); WorkerPool pool = new WorkerPool(threads)) {
            int[] prompt = new SplittableRandom(1).ints(tokens, 0, m.hyperParams().vocab()).toArray();
            Engine.Options o = Engine.Options.defaults().withMaxBatch(tokens).withContextLength(tokens + 8);
            try (Engine e = new Engine(m, pool, o)) {
                double[] off = new double[rounds], onT = new double[rounds];
                for (int r = -1; r < rounds; r++) { // round -1 warms both paths up
                    for (int side = ONLY_ON ? 1 : 0; side < 2; side++) {
                        minN.setInt(null, side == 0 ? Integer.MAX_VALUE : on);
                        e.cache().clear(0);
                        long t0 = useCpu ? cpu.getCurrentThreadCpuTime() : System.nanoTime();
                        e.evaluate(0, prompt);
                        double s = ((useCpu ? cpu.getCurrentThreadCpuTime() : System.nanoTime()) - t0) / 1e9;
                        if (r >= 0) (side == 0 ? off : onT)[r] = s;
                    }
                }
                minN.setInt(null, on);
                Arrays.sort(off);
                Arrays.sort(onT);
                System.out.printf(Locale.ROOT, "%s, %d tokens, %d threads (%s), %d interleaved rounds: "
                                + "panel off %.1f / %.1f tok/s, on %.1f / %.1f tok/s (median / best); on/off %.2fx median, %.2fx best%n",
                        model.getFileName(), tokens, threads, useCpu ? "caller CPU time" : "wall time", rounds,
                        tokens / off[rounds / 2], tokens / off[0], tokens / onT[rounds / 2], tokens / onT[0],
                        off[rounds / 2] / onT[rounds / 2], off[0] / onT[0]);
            }
        }
    }
}
