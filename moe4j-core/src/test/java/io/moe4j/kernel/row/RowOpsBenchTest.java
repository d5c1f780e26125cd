package io.moe4j.kernel.row;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Locale;
import java.util.Random;

import static io.moe4j.kernel.row.RowTestData.*;

/**
 * Scalar vs SIMD timings (best of 7 runs after warm-up) — a quick same-process comparison, not JMH. Run alone so
 * the JVM sees a single vector width (see {@link VectorRowKernels}):
 * {@code mvn -pl moe4j-core test -Dtest=RowOpsBenchTest -Dtest.excludedGroups=}.
 */
@Tag("bench")
class RowOpsBenchTest {
    interface Body { void run(RowOps ops); }

    private static double nanos(RowOps ops, Body body, int reps) {
        for (int i = 0; i < reps * 20; i++) body.run(ops);
        double best = Double.MAX_VALUE;
        for (int trial = 0; trial < 7; trial++) {
            long t = System.nanoTime();
            for (int i = 0; i < reps; i++) body.run(ops);
            best = Math.min(best, (System.nanoTime() - t) / (double) reps);
        }
        return best;
    }

    @Test
    void scalarVsSimd() {
        RowOps scalar = new ScalarRowOps(), simd = new SimdRowOps();
        int n = 4096;
        try (Arena arena = Arena.ofConfined()) {
            Random r = new Random(1);
            MemorySegment x = segmentWith(arena, r, uniform(r, n, -4, 4), 0), y = segmentWith(arena, r, uniform(r, n, -4, 4), 0);
            MemorySegment z = segmentWith(arena, r, uniform(r, n, -4, 4), 0), u = segmentWith(arena, r, uniform(r, n, -4, 4), 0);
            MemorySegment v = segmentWith(arena, r, uniform(r, n, -4, 4), 0);
            RopeTable t = new RopeTable(16, 128, 10000);
            int[] rows = new int[64];
            for (int i = 0; i < rows.length; i++) rows[i] = r.nextInt(64);
            float[] w = uniform(r, 64, 0, 1), dw = new float[64];
            MemorySegment big = segment(arena, 64 * 2048L), big2 = segment(arena, 64 * 2048L);
            int[] idx = new int[8];
            Object[][] cases = {
                    {"axpy 4096", (Body) o -> o.axpy(n, 0.5f, x, 0, y, 0)},
                    {"dot 4096", (Body) o -> o.dot(n, x, 0, y, 0)},
                    {"rmsnorm 4096", (Body) o -> o.rmsnorm(n, x, 0, y, 0, 1e-5f, z, 0)},
                    {"rmsnormBackward 4096", (Body) o -> o.rmsnormBackward(n, x, 0, y, 0, z, 0, 0.5f, u, 0, v, 0)},
                    {"softmax 4096", (Body) o -> { z.copyFrom(x); o.softmax(n, z, 0); }},
                    {"softmaxBackward 4096", (Body) o -> o.softmaxBackward(n, x, 0, y, 0, z, 0)},
                    {"silu 4096", (Body) o -> o.silu(n, x, 0, z, 0)},
                    {"swiglu 4096", (Body) o -> o.swiglu(n, x, 0, y, 0, z, 0)},
                    {"swigluBackward 4096", (Body) o -> o.swigluBackward(n, x, 0, y, 0, z, 0, u, 0, v, 0)},
                    {"gelu 4096", (Body) o -> o.gelu(n, x, 0, z, 0)},
                    {"geglu 4096", (Body) o -> o.geglu(n, x, 0, y, 0, z, 0)},
                    {"gegluBackward 4096", (Body) o -> o.gegluBackward(n, x, 0, y, 0, z, 0, u, 0, v, 0)},
                    {"relu 4096", (Body) o -> o.relu(n, x, 0, z, 0)},
                    {"rope neox 32x128", (Body) o -> o.rope(32, 128, 128, z, 0, t.cos(), t.sin(), t.offset(9), true, false)},
                    {"rope llama 32x128", (Body) o -> o.rope(32, 128, 128, z, 0, t.cos(), t.sin(), t.offset(9), false, false)},
                    {"topK 64 k=8", (Body) o -> o.topK(64, 8, x, 0, idx, 0, null, 0)},
                    {"gather 64x2048", (Body) o -> o.gatherRows(64, 2048, big, 0, 2048, rows, 0, big2, 0, 2048)},
                    {"scatterAdd 64x2048", (Body) o -> o.scatterAddRows(64, 2048, big2, 0, 2048, rows, 0, w, 0, big, 0, 2048)},
                    {"scatterAddBwd 64x2048", (Body) o -> o.scatterAddRowsBackward(64, 2048, big, 0, 2048, rows, 0, w, 0,
                            big2, 0, 2048, big2, 0, 2048, dw, 0)},
            };
            System.out.printf(Locale.ROOT, "%-24s %12s %12s %8s  (%s)%n", "op", "scalar ns", simd.name() + " ns", "speedup", "best of 7");
            for (Object[] c : cases) {
                Body b = (Body) c[1];
                double s = nanos(scalar, b, 2000), v2 = nanos(simd, b, 2000);
                System.out.printf(Locale.ROOT, "%-24s %12.0f %12.0f %7.1fx%n", c[0], s, v2, s / v2);
            }
        }
    }
}
