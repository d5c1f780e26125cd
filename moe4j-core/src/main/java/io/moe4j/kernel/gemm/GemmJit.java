package io.moe4j.kernel.gemm;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import javax.management.ObjectName;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Keeps HotSpot's C1 compiler away from the GEMM microkernels, so that they always reach C2.
 *
 * <p>Why: C1 inlines every {@code @ForceInline} Vector API method into {@link GemmKernel#multiply} and runs out of
 * virtual registers ("COMPILE SKIPPED: out of virtual registers") at its profiling tier 3. That alone is harmless —
 * the method then goes from the interpreter to C2. But when the C2 queue is long at the moment the kernel gets
 * hot (JVM start-up, a model loading), the tiered policy first compiles it at tier 2, which C1 <em>can</em> do
 * for the smaller kernels; the method then waits forever for a tier-3 compile that always fails, and the GEMM
 * runs in tier-2 code at 0.1–0.5 GFLOP/s instead of 50–100. Reproduced here with {@code -XX:Tier3DelayOn=0}
 * (which always takes tier 2): 256-bit and 128-bit kernels stuck at 0.3–0.6 GFLOP/s for the whole run; with
 * the directive below, C2 compiled them in about a second every time.
 *
 * <p>The fix is a compiler directive (the same as {@code jcmd <pid> Compiler.directives_add}) excluding the
 * kernels from C1 only, added once through the DiagnosticCommand MBean. It costs the platform MBean server's
 * start-up (0.2–0.5 s, once per JVM), so it runs on the first packed GEMM, not when the kernels are loaded.
 * When it cannot be added (no {@code java.management}, a non-HotSpot VM), GEMM still works and the risk is
 * logged at debug level. Launching with {@code -XX:Tier3DelayOn=100000} avoids the trap for every kernel.
 */
final class GemmJit {
    private static final Logger LOG = LoggerFactory.getLogger(GemmJit.class);
    // Only the microkernels: the packing methods compile at tier 3 (checked with -XX:TieredStopAtLevel=3), so they
    // take the normal 3 → 4 route and are better left to C1 while they warm up.
    // The second directive keeps the two halves of the SwiGLU backward row kernel out of their caller's compile
    // (see VectorRowKernels.swigluBackward: together they exceed C2's node budget and get boxed).
    private static final String DIRECTIVE =
            "[{ match: \"io/moe4j/kernel/gemm/GemmKernel*.multiply\", c1: { Exclude: true } },"
            + " { match: \"io/moe4j/*.*\", inline: [\"-io/moe4j/kernel/row/VectorRowKernels.sigmoidChunk\","
            + " \"-io/moe4j/kernel/row/VectorRowKernels.swigluBackwardChunk\"] }]";

    private GemmJit() {}

    /** Adds the directive the first time it is called (class initialisation runs it exactly once). */
    static void ensureC2Only() {
        Holder.touch();
    }

    private static final class Holder {
        static {
            install();
        }

        static void touch() {}
    }

    private static void install() {
        Path file = null;
        try {
            file = Files.createTempFile("moe4j-gemm-jit", ".json");
            Files.writeString(file, DIRECTIVE);
            Object result = ManagementFactory.getPlatformMBeanServer().invoke(
                    new ObjectName("com.sun.management:type=DiagnosticCommand"), "compilerDirectivesAdd",
                    new Object[] {new String[] {file.toString()}}, new String[] {String[].class.getName()});
            LOG.debug("GEMM microkernels excluded from C1: {}", String.valueOf(result).trim());
        } catch (Exception | LinkageError e) {
            LOG.debug("could not exclude the GEMM microkernels from C1 ({}); under heavy JIT load they may stay in "
                    + "slow tier-2 code", e.toString());
        } finally {
            if (file != null) {
                try {
                    Files.deleteIfExists(file);
                } catch (Exception ignored) {
                    // a leftover temp file is harmless
                }
            }
        }
    }
}
