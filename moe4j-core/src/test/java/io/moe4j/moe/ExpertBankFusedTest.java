package io.moe4j.moe;

import io.moe4j.kernel.Kernels;
import io.moe4j.nn.F32;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The fused gate|up path (stacked GEMMs) against separate gate and up GEMMs, under every schedule: outputs, input
 * gradients and all weight gradients, bit for bit (the stacked GEMMs split along N or M only).
 */
class ExpertBankFusedTest {

    @ParameterizedTest(name = "{0} f={1}")
    @CsvSource({"SWIGLU,256", "GEGLU,256", "SWIGLU,24", "MLP_RELU,24"})
    void fusedMatchesSeparateGemms(ExpertType type, int f) {
        int e = 4, d = 40;
        int[] bins = {0, 70, 70, 75, 140}; // an empty expert, a 5-row one, two larger ones
        try (Arena arena = Arena.ofShared(); WorkerPool pool = new WorkerPool(2)) {
            SplittableRandom rng = new SplittableRandom(11);
            int rows = bins[e];
            MemorySegment x = random(arena, (long) rows * d, rng), dy = random(arena, (long) rows * d, rng);
            ExpertBank fused = new ExpertBank(arena, "experts", type, e, d, f, rows, Kernels.get(), pool);
            ExpertBank separate = new ExpertBank(arena, "experts", type, e, d, f, rows, Kernels.get(), pool);
            separate.fusedGateUp(false);
            for (int i = 0; i < fused.params().size(); i++) {
                Param p = fused.params().get(i);
                MemorySegment v = random(arena, p.numel(), rng);
                p.data().copyFrom(v);
                separate.params().get(i).data().copyFrom(v);
            }
            for (String mode : List.of("off", "on", "tiles")) {
                List<float[]> a = run(fused, mode, x, dy, bins, arena), b = run(separate, mode, x, dy, bins, arena);
                for (int t = 0; t < a.size(); t++) {
                    assertThat(a.get(t)).as("%s %s output %d", type, mode, t).isEqualTo(b.get(t));
                }
            }
        }
    }

    /** y, dx, then every weight gradient (zeroed first), after one forward and backward under a schedule. */
    private static List<float[]> run(ExpertBank bank, String mode, MemorySegment x, MemorySegment dy, int[] bins, Arena arena) {
        int rows = bins[bins.length - 1];
        int d = (int) (x.byteSize() / 4 / rows);
        bank.splitMode(mode);
        for (Param p : bank.params()) F32.zero(p.gradData(), 0, p.numel());
        MemorySegment dx = F32.alloc(arena, (long) rows * d);
        bank.forward(x, 0, bins);
        bank.backward(x, 0, bins, dy, 0, dx, 0);
        List<float[]> out = new ArrayList<>();
        out.add(F32.toArray(bank.output(), 0, rows * d));
        out.add(F32.toArray(dx, 0, rows * d));
        for (Param p : bank.params()) out.add(p.gradToArray());
        // the outputs are not trivially zero
        assertThat(out.get(0)).isNotEqualTo(new float[rows * d]);
        return out;
    }

    private static MemorySegment random(Arena arena, long n, SplittableRandom rng) {
        MemorySegment s = F32.alloc(arena, n);
        for (long i = 0; i < n; i++) F32.set(s, i, (float) (rng.nextGaussian() * 0.5));
        return s;
    }
}
