package io.moe4j.train.model;

import io.moe4j.kernel.Kernels;
import io.moe4j.moe.MoeConfig;
import io.moe4j.moe.MoeLayer;
import io.moe4j.moe.MoeProfile;
import io.moe4j.moe.loss.BalanceLoss;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Locale;

/**
 * Measures (asserts nothing) forward+backward tokens/s of a small MoE model: d 256, 4 layers, 8 heads / 4 kv heads
 * of 32, 8 experts top-2, f 512, vocab 4096, B 8, T 128, and prints where the time goes. Tagged "bench", so the
 * default test run skips it; run with
 * {@code mvn -o -pl moe4j-train -am test -Dtest=ModelThroughputBench -Dtest.excludedGroups= -Dsurefire.failIfNoSpecifiedTests=false}
 * ({@code -Dmoe4j.threads=N} picks the thread count).
 */
@Tag("bench")
class ModelThroughputBench {

    @Test
    void forwardBackwardTokensPerSecond() {
        int b = 8, t = 128, steps = Integer.getInteger("bench.steps", 5);
        MoeConfig moe = MoeConfig.builder().dModel(256).numExperts(8).topK(2).expertHidden(512)
                .balanceLoss(BalanceLoss.HF).balanceCoef(0.01).build();
        ModelConfig c = new ModelConfig(4096, 256, 4, 8, 4, 32, t, 10000.0, 1e-5, false, false, 0, 0, moe, 0.02, 1L);
        WorkerPool pool = WorkerPool.common();
        try (MoeTransformer m = MoeTransformer.create(c, Kernels.get(), pool, b)) {
            int[] tokens = TinyConfigs.tokens(1, b, t, c.vocabSize());
            ParamCounts pc = ParamCounts.of(c);
            System.out.printf(Locale.ROOT, "kernels %s, %d threads, params total %.2f M, active %.2f M%n",
                    Kernels.get().path(), pool.threads(), pc.total() / 1e6, pc.active() / 1e6);
            for (int i = 0; i < 2; i++) step(m, tokens, b, t); // warm-up (JIT)
            m.profile().reset();
            for (MoeLayer l : m.moeLayers()) l.profile().reset();
            double[] secs = new double[steps];
            for (int i = 0; i < steps; i++) secs[i] = step(m, tokens, b, t);
            Arrays.sort(secs);
            int n = b * t;
            System.out.printf(Locale.ROOT, "forward+backward B %d T %d: min %.3f s (%.0f tok/s), median %.3f s (%.0f tok/s)%n",
                    b, t, secs[0], n / secs[0], secs[steps / 2], n / secs[steps / 2]);
            System.out.print(m.profile().report());
            long[] moeNs = new long[MoeProfile.Phase.values().length];
            for (MoeLayer l : m.moeLayers()) {
                for (MoeProfile.Phase p : MoeProfile.Phase.values()) moeNs[p.ordinal()] += l.profile().nanos(p);
            }
            for (MoeProfile.Phase p : MoeProfile.Phase.values()) {
                if (moeNs[p.ordinal()] > 0) System.out.printf(Locale.ROOT, "  moe %-12s %9.1f ms%n", p, moeNs[p.ordinal()] / 1e6);
            }
        }
    }

    private static double step(MoeTransformer m, int[] tokens, int b, int t) {
        for (Param p : m.params()) p.zeroGrad();
        long t0 = System.nanoTime();
        m.forwardBackward(tokens, b, t, 1f);
        return (System.nanoTime() - t0) / 1e9;
    }
}
