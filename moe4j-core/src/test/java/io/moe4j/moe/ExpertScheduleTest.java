package io.moe4j.moe;

import io.moe4j.kernel.Kernels;
import io.moe4j.nn.F32;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The one-expert-per-task schedule with its heavy head (the experts too large to leave to one thread run first with
 * parallel GEMMs): which experts go to the head, and that every schedule — and 1 thread — gives the same bits on
 * skewed bins that put experts in the head.
 */
class ExpertScheduleTest {

    private static int[] bins(int... rows) {
        int[] b = new int[rows.length + 1];
        for (int j = 0; j < rows.length; j++) b[j + 1] = b[j] + rows[j];
        return b;
    }

    @Test
    void heavyHeadHoldsTheExpertsThatWouldLeaveAThreadIdle() {
        try (Arena arena = Arena.ofShared(); WorkerPool pool = new WorkerPool(2)) {
            ExpertBank bank = new ExpertBank(arena, "x", ExpertType.SWIGLU, 8, 8, 8, 4096, Kernels.get(), pool);
            // the bench's E=8 bins: even enough, no head
            assertThat(bank.heavyExperts(bins(495, 535, 525, 500, 521, 507, 523, 490))).isEmpty();
            // one expert with most rows: it alone, with parallel GEMMs
            assertThat(bank.heavyExperts(bins(10, 900, 0, 30, 20, 10, 15, 15))).containsExactly(1);
            // three equal experts on two threads: one thread would run two of them while the other idles
            assertThat(bank.heavyExperts(bins(0, 300, 300, 0, 300, 0, 0, 0))).containsExactly(1);
            // a single non-empty expert (a shared expert over all tokens): parallel GEMMs
            assertThat(bank.heavyExperts(bins(0, 0, 0, 64, 0, 0, 0, 0))).containsExactly(3);
        }
        try (Arena arena = Arena.ofShared(); WorkerPool pool = new WorkerPool(1)) {
            ExpertBank bank = new ExpertBank(arena, "x", ExpertType.SWIGLU, 4, 8, 8, 64, Kernels.get(), pool);
            assertThat(bank.heavyExperts(bins(60, 1, 1, 1))).isEmpty();
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"SWIGLU", "MLP_GELU"})
    void everyScheduleGivesTheSameBitsOnSkewedBins(ExpertType type) {
        int e = 6, d = 48, f = 80;
        int[] bins = bins(150, 0, 9, 30, 30, 3); // expert 0 forms the head on 2 threads
        int rows = bins[e];
        List<List<float[]>> results = new ArrayList<>();
        SplittableRandom rng = new SplittableRandom(5);
        try (Arena arena = Arena.ofShared(); WorkerPool one = new WorkerPool(1); WorkerPool two = new WorkerPool(2)) {
            MemorySegment x = random(arena, (long) rows * d, rng), dy = random(arena, (long) rows * d, rng);
            List<MemorySegment> weights = new ArrayList<>();
            for (String mode : List.of("off", "on", "auto", "tiles", "1 thread")) {
                WorkerPool pool = mode.equals("1 thread") ? one : two;
                ExpertBank bank = new ExpertBank(arena, "x", type, e, d, f, rows, Kernels.get(), pool);
                if (weights.isEmpty()) for (Param p : bank.params()) weights.add(random(arena, p.numel(), rng));
                for (int i = 0; i < weights.size(); i++) bank.params().get(i).data().copyFrom(weights.get(i));
                if (!mode.equals("1 thread")) bank.splitMode(mode);
                if (mode.equals("on")) assertThat(bank.heavyExperts(bins)).containsExactly(0);
                MemorySegment dx = F32.alloc(arena, (long) rows * d);
                bank.forward(x, 0, bins);
                bank.backward(x, 0, bins, dy, 0, dx, 0);
                List<float[]> out = new ArrayList<>();
                out.add(F32.toArray(bank.output(), 0, rows * d));
                out.add(F32.toArray(dx, 0, rows * d));
                for (Param p : bank.params()) out.add(p.gradToArray());
                assertThat(out.get(0)).as("the bank computed something").isNotEqualTo(new float[rows * d]);
                results.add(out);
            }
        }
        for (int m = 1; m < results.size(); m++) {
            for (int t = 0; t < results.get(0).size(); t++) {
                assertThat(results.get(m).get(t)).as("schedule %d output %d", m, t).isEqualTo(results.get(0).get(t));
            }
        }
    }

    private static MemorySegment random(Arena arena, long n, SplittableRandom rng) {
        MemorySegment s = F32.alloc(arena, n);
        for (long i = 0; i < n; i++) F32.set(s, i, (float) (rng.nextGaussian() * 0.5));
        return s;
    }
}
