package io.moe4j.train.optim;

import io.moe4j.kernel.Kernels;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.foreign.MemorySegment;

/**
 * The elementwise loops of the optimizer step (AdamW update, gradient sum of squares and scaling) over index ranges
 * of F32 segments, with a scalar reference ({@link ScalarOptimKernels}) and a Vector API implementation
 * ({@link SimdOptimKernels}) that gives the same bits.
 *
 * <p>Why a kernel at all: going one float at a time through {@code F32.get/set}, AdamW was 11–14 % and clipping
 * 3–4 % of a small training step (JFR, session 2). Why the same bits: the AdamW update uses only lanewise
 * multiply, add, divide and square root in the scalar order (no FMA contraction; Java float arithmetic is
 * IEEE-exact per operation, and {@code (float) Math.sqrt(v)} is the correctly rounded float square root, like
 * {@code vsqrtps}), and the sum of squares is defined with {@link #SUM_LANES} interleaved partial sums that the
 * scalar reference computes the same way. So checkpoints do not depend on the vector width or JIT mode.
 *
 * <p>The path follows {@link Kernels#get()}: {@code -Dmoe4j.kernels=scalar} forces the scalar one here too.
 */
public interface OptimKernels {
    /**
     * Partial sums of {@link #sumSquares}: element i of a range goes to partial {@code (i - from) % SUM_LANES}; the
     * result is {@code ((p0 + p1) + p2) + … + p7}, each partial summed in index order in double.
     */
    int SUM_LANES = 8;

    /**
     * AdamW over elements [from, to) of parameter w with gradient g and moments m, v (see {@link AdamW}), the
     * gradient first multiplied by gs (the clipping factor, applied here rather than in a separate pass over g):
     * <pre>
     *   g = g·gs;  p = w·keep;  m = m·b1 + g·omb1;  v = v·b2 + (g·g)·omb2;  w = p − stepSize·(m / (√v / bc2s + eps))
     * </pre>
     */
    void adamw(MemorySegment w, MemorySegment g, MemorySegment m, MemorySegment v, long from, long to, float gs,
               float keep, float b1, float omb1, float b2, float omb2, float bc2s, float eps, float stepSize);

    /** Σ g[i]² over [from, to) in double, in the order defined by {@link #SUM_LANES}. */
    double sumSquares(MemorySegment g, long from, long to);

    /** g[i] ← g[i]·s over [from, to). */
    void scale(MemorySegment g, long from, long to, float s);

    String name();

    /** The kernels matching {@link Kernels#get()}: Vector API when the other kernels use it, else scalar. */
    static OptimKernels get() { return Holder.CHOSEN; }

    static OptimKernels scalar() { return ScalarOptimKernels.INSTANCE; }

    /** The Vector API kernels (tests compare both paths in one JVM); fails when the module is not loaded. */
    static OptimKernels simd() {
        try {
            return (OptimKernels) Class.forName("io.moe4j.train.optim.SimdOptimKernels").getDeclaredConstructor().newInstance();
        } catch (ReflectiveOperationException | LinkageError e) {
            throw new IllegalStateException("cannot load the Vector API optimizer kernels: " + e, e);
        }
    }

    /** Chosen once per JVM, on first use (loaded reflectively so a JVM without the Vector API never links it). */
    final class Holder {
        private static final Logger LOG = LoggerFactory.getLogger(OptimKernels.class);
        static final OptimKernels CHOSEN = choose();

        private Holder() {}

        private static OptimKernels choose() {
            Kernels k = Kernels.get();
            OptimKernels o = k.vectorBits() > 0 ? simd() : scalar();
            LOG.debug("optimizer kernels: {} (kernels {})", o.name(), k.path());
            return o;
        }
    }
}
