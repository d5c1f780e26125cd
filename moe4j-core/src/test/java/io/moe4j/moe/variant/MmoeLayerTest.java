package io.moe4j.moe.variant;

import io.moe4j.kernel.Kernels;
import io.moe4j.moe.ExpertType;
import io.moe4j.moe.InvalidConfigException;
import io.moe4j.moe.MoeConfig;
import io.moe4j.moe.MoeLayer;
import io.moe4j.moe.RefFfn;
import io.moe4j.moe.loss.BalanceLoss;
import io.moe4j.nn.F32;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.SplittableRandom;

import static io.moe4j.moe.variant.TestData.randn;
import static io.moe4j.moe.variant.TestData.seg;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

/** MMoE (spec §4.19): the three test properties, agreement with the dense MoE layer, backward. */
class MmoeLayerTest {
    private static final WorkerPool POOL = new WorkerPool(2);
    /** Finite differences run hundreds of tiny forwards: one thread avoids waking workers on a busy machine. */
    private static final WorkerPool SERIAL = new WorkerPool(1);
    private static final int D = 7, N = 4, F = 5;
    private final Arena arena = Arena.ofAuto();

    @AfterAll
    static void close() {
        POOL.close();
        SERIAL.close();
    }

    private MmoeLayer layer(int tasks, ExpertType type, int maxT, long seed) {
        return layer(tasks, type, maxT, seed, POOL);
    }

    private MmoeLayer layer(int tasks, ExpertType type, int maxT, long seed, WorkerPool pool) {
        MmoeConfig c = MmoeConfig.builder().dModel(D).numExperts(N).expertHidden(F).expertType(type).numTasks(tasks)
                .maxTokens(maxT).build();
        MmoeLayer m = new MmoeLayer(c, arena, Kernels.get(), pool);
        m.init(new SplittableRandom(seed), 0.5, 1.0);
        return m;
    }

    /** One task: MMoE is the ordinary dense softmax MoE — moe4j's MoeLayer with k = E — forward and backward. */
    @Test
    void oneTaskIsTheDenseSoftmaxMoe() {
        int t = 9;
        MmoeLayer m = layer(1, ExpertType.SWIGLU, t, 1);
        MoeConfig c = MoeConfig.builder().dModel(D).numExperts(N).topK(N).expertHidden(F).expertType(ExpertType.SWIGLU)
                .normalizeTopK(false).balanceLoss(BalanceLoss.NONE).maxTokens(t).build();
        MoeLayer moe = new MoeLayer(c, arena, Kernels.get(), POOL);
        List<Param> mine = m.params(), theirs = moe.params(); // [gate, up, down, router] vs [router, gate, up, down]
        theirs.get(0).set(mine.get(3).toArray());
        for (int i = 0; i < 3; i++) theirs.get(i + 1).set(mine.get(i).toArray());

        SplittableRandom rng = new SplittableRandom(2);
        MemorySegment x = seg(arena, randn(rng, t * D, 1.0)), dy = seg(arena, randn(rng, t * D, 1.0));
        MemorySegment y1 = F32.alloc(arena, (long) t * D), y2 = F32.alloc(arena, (long) t * D);
        MemorySegment dx1 = F32.alloc(arena, (long) t * D), dx2 = F32.alloc(arena, (long) t * D);
        m.forward(x, 0, t, y1, 0);
        m.backward(x, 0, dy, 0, dx1, 0);
        moe.forward(x, 0, t, y2, 0, true);
        moe.backward(x, 0, dy, 0, dx2, 0);
        assertClose("y", F32.toArray(y1, 0, t * D), F32.toArray(y2, 0, t * D));
        assertClose("dx", F32.toArray(dx1, 0, t * D), F32.toArray(dx2, 0, t * D));
        assertClose("d gate/router", mine.get(3).gradToArray(), theirs.get(0).gradToArray());
        for (int i = 0; i < 3; i++) assertClose(mine.get(i).name(), mine.get(i).gradToArray(), theirs.get(i + 1).gradToArray());
    }

    /** Zero gate weights: every task output is the plain average of the experts. */
    @Test
    void zeroGateWeightsGiveTheUniformAverage() {
        int t = 5, tasks = 3;
        MmoeLayer m = layer(tasks, ExpertType.MLP_RELU, t, 3);
        for (int k = 0; k < tasks; k++) m.gate(k).weight().fill(0f);
        float[] xs = randn(new SplittableRandom(4), t * D, 1.0);
        MemorySegment y = F32.alloc(arena, (long) tasks * t * D);
        m.forward(seg(arena, xs), 0, t, y, 0);
        float[] up = m.experts().up().toArray(), down = m.experts().down().toArray();
        for (int i = 0; i < t; i++) {
            double[] avg = new double[D];
            for (int j = 0; j < N; j++) {
                double[] o = RefFfn.ffn(ExpertType.MLP_RELU, xs, i * D, D, F, null, up, down, j);
                for (int c = 0; c < D; c++) avg[c] += o[c] / N;
            }
            for (int k = 0; k < tasks; k++) {
                for (int c = 0; c < D; c++) {
                    assertThat((double) F32.get(y, m.taskOffset(k, t) + (long) i * D + c)).as("task %d y[%d][%d]", k, i, c)
                            .isCloseTo(avg[c], within(1e-5));
                }
            }
        }
    }

    /** Each task's gate row is a distribution, and each task output is its own mixture of the shared experts. */
    @Test
    void gateRowsSumToOneAndTasksMixTheSharedExperts() {
        int t = 6, tasks = 2;
        MmoeLayer m = layer(tasks, ExpertType.GEGLU, t, 5);
        float[] xs = randn(new SplittableRandom(6), t * D, 2.0);
        MemorySegment y = F32.alloc(arena, (long) tasks * t * D);
        m.forward(seg(arena, xs), 0, t, y, 0);
        ExpertTables w = new ExpertTables(m);
        for (int k = 0; k < tasks; k++) {
            float[] wg = m.gate(k).weight().toArray();
            for (int i = 0; i < t; i++) {
                double sum = 0;
                for (int j = 0; j < N; j++) {
                    float g = m.gateProbs(k)[i * N + j];
                    assertThat(g).isBetween(0f, 1f);
                    sum += g;
                }
                assertThat(sum).isCloseTo(1.0, within(1e-6));
                double[] p = TestData.softmax(TestData.linear(wg, N, xs, i, D));
                double[] ref = new double[D];
                for (int j = 0; j < N; j++) {
                    double[] o = RefFfn.ffn(ExpertType.GEGLU, xs, i * D, D, F, w.gate, w.up, w.down, j);
                    for (int c = 0; c < D; c++) ref[c] += p[j] * o[c];
                }
                for (int c = 0; c < D; c++) {
                    assertThat((double) F32.get(y, m.taskOffset(k, t) + (long) i * D + c)).isCloseTo(ref[c], within(1e-5));
                }
            }
        }
    }

    @Test
    void backwardMatchesFiniteDifferences() {
        int t = 5, tasks = 3;
        MmoeLayer m = layer(tasks, ExpertType.MLP_GELU_ERF, t, 7, SERIAL);
        SplittableRandom rng = new SplittableRandom(8);
        float[] rs = randn(rng, tasks * t * D, 1.0);
        MemorySegment x = seg(arena, randn(rng, t * D, 1.0)), y = F32.alloc(arena, (long) tasks * t * D);
        MemorySegment dx = F32.alloc(arena, (long) t * D);
        for (Param p : m.params()) p.zeroGrad();
        m.forward(x, 0, t, y, 0);
        m.backward(x, 0, seg(arena, rs), 0, dx, 0);
        GradCheck g = new GradCheck("MMoE", () -> {
            m.forward(x, 0, t, y, 0);
            return TestData.dot(rs, y, 0);
        });
        g.probe("x", x, 0, t * D, F32.toArray(dx, 0, t * D), 20);
        for (Param p : m.params()) g.probe(p.name(), p.data(), 0, (int) p.numel(), p.gradToArray(), 12);
        g.assertMostlyChecked();
    }

    /** Task k's loss updates its own gate only (all experts through g^k). */
    @Test
    void aTaskWithoutGradientLeavesItsGateUntouched() {
        int t = 4, tasks = 2;
        MmoeLayer m = layer(tasks, ExpertType.MLP_RELU, t, 9);
        SplittableRandom rng = new SplittableRandom(10);
        MemorySegment x = seg(arena, randn(rng, t * D, 1.0)), y = F32.alloc(arena, (long) tasks * t * D);
        float[] dys = randn(rng, tasks * t * D, 1.0);
        for (int i = t * D; i < 2 * t * D; i++) dys[i] = 0f; // task 1 has no labels in this batch
        for (Param p : m.params()) p.zeroGrad();
        m.forward(x, 0, t, y, 0);
        m.backward(x, 0, seg(arena, dys), 0, F32.alloc(arena, (long) t * D), 0);
        assertThat(m.gate(1).weight().gradToArray()).containsOnly(0f);
        assertThat(maxAbs(m.gate(0).weight().gradToArray())).isGreaterThan(0f);
        assertThat(maxAbs(m.experts().down().gradToArray())).isGreaterThan(0f);
    }

    private MmoeLayer wide(int tasks, ExpertType type, int maxT, int h, long seed, WorkerPool pool) {
        MmoeConfig c = MmoeConfig.builder().dModel(D).numExperts(N).expertHidden(F).expertType(type).numTasks(tasks)
                .maxTokens(maxT).expertOutput(h).build();
        MmoeLayer m = new MmoeLayer(c, arena, Kernels.get(), pool);
        m.init(new SplittableRandom(seed), 0.5, 1.0);
        return m;
    }

    /**
     * Experts d → f → h with h ≠ d (narrower and wider than d; 70 columns spans two tiles of the tiled schedule):
     * each task output (T, h) is its gate's mixture of the experts computed in double, and 1 vs 2 threads agree
     * bit for bit (2 threads take the tiled expert schedule, 1 thread the plain GEMMs).
     */
    @Test
    void expertOutputWidthOtherThanD() {
        int t = 6, tasks = 2;
        for (ExpertType type : new ExpertType[]{ExpertType.MLP_RELU, ExpertType.SWIGLU}) {
            for (int h : new int[]{3, 70}) {
                MmoeLayer m = wide(tasks, type, t, h, 21, POOL);
                assertThat(m.experts().down().toArray()).hasSize(N * h * F);
                assertThat(m.outputWidth()).isEqualTo(h);
                float[] xs = randn(new SplittableRandom(22), t * D, 1.0);
                MemorySegment y = F32.alloc(arena, (long) tasks * t * h);
                m.forward(seg(arena, xs), 0, t, y, 0);
                ExpertTables w = new ExpertTables(m);
                for (int k = 0; k < tasks; k++) {
                    float[] wg = m.gate(k).weight().toArray();
                    for (int i = 0; i < t; i++) {
                        double[] p = TestData.softmax(TestData.linear(wg, N, xs, i, D));
                        double[] ref = new double[h];
                        for (int j = 0; j < N; j++) {
                            double[] o = RefFfn.ffn(type, xs, i * D, D, F, h, w.gate, w.up, w.down, j);
                            for (int c = 0; c < h; c++) ref[c] += p[j] * o[c];
                        }
                        for (int c = 0; c < h; c++) {
                            assertThat((double) F32.get(y, m.taskOffset(k, t) + (long) i * h + c))
                                    .as("%s h=%d task %d y[%d][%d]", type, h, k, i, c).isCloseTo(ref[c], within(1e-5));
                        }
                    }
                }
                // 1 vs 2 threads, forward and backward
                float[] dys = randn(new SplittableRandom(23), tasks * t * h, 1.0);
                float[][] one = runOnce(wide(tasks, type, t, h, 21, SERIAL), xs, dys, t, h);
                float[][] two = runOnce(wide(tasks, type, t, h, 21, POOL), xs, dys, t, h);
                for (int a = 0; a < one.length; a++) assertThat(one[a]).as("%s h=%d output %d", type, h, a).containsExactly(two[a]);
            }
        }
    }

    /** {y, dx, then every parameter gradient}. */
    private float[][] runOnce(MmoeLayer m, float[] xs, float[] dys, int t, int h) {
        int tasks = m.numTasks();
        MemorySegment x = seg(arena, xs), y = F32.alloc(arena, (long) tasks * t * h), dx = F32.alloc(arena, (long) t * D);
        for (Param p : m.params()) p.zeroGrad();
        m.forward(x, 0, t, y, 0);
        m.backward(x, 0, seg(arena, dys), 0, dx, 0);
        List<Param> ps = m.params();
        float[][] out = new float[2 + ps.size()][];
        out[0] = F32.toArray(y, 0, tasks * t * h);
        out[1] = F32.toArray(dx, 0, t * D);
        for (int i = 0; i < ps.size(); i++) out[2 + i] = ps.get(i).gradToArray();
        return out;
    }

    @Test
    void backwardWithExpertOutputWidthOtherThanDMatchesFiniteDifferences() {
        int t = 5, tasks = 2;
        for (int h : new int[]{3, 11}) {
            MmoeLayer m = wide(tasks, ExpertType.GEGLU, t, h, 25, SERIAL);
            SplittableRandom rng = new SplittableRandom(26);
            float[] rs = randn(rng, tasks * t * h, 1.0);
            MemorySegment x = seg(arena, randn(rng, t * D, 1.0)), y = F32.alloc(arena, (long) tasks * t * h);
            MemorySegment dx = F32.alloc(arena, (long) t * D);
            for (Param p : m.params()) p.zeroGrad();
            m.forward(x, 0, t, y, 0);
            m.backward(x, 0, seg(arena, rs), 0, dx, 0);
            GradCheck g = new GradCheck("MMoE h=" + h, () -> {
                m.forward(x, 0, t, y, 0);
                return TestData.dot(rs, y, 0);
            });
            g.probe("x", x, 0, t * D, F32.toArray(dx, 0, t * D), 20);
            for (Param p : m.params()) g.probe(p.name(), p.data(), 0, (int) p.numel(), p.gradToArray(), 12);
            g.assertMostlyChecked();
        }
    }

    @Test
    void invalidConfigNamesTheField() {
        assertThatThrownBy(() -> MmoeConfig.builder().dModel(4).numExperts(2).expertHidden(3).numTasks(2)
                .expertOutput(0).build())
                .isInstanceOf(InvalidConfigException.class).hasMessageContaining("mmoe.expertOutput");
        assertThatThrownBy(() -> MmoeConfig.builder().dModel(4).numExperts(2).expertHidden(3).numTasks(0).build())
                .isInstanceOf(InvalidConfigException.class).hasMessageContaining("mmoe.numTasks");
        assertThatThrownBy(() -> MmoeConfig.builder().dModel(4).numExperts(0).expertHidden(3).numTasks(2).build())
                .isInstanceOf(InvalidConfigException.class).hasMessageContaining("mmoe.numExperts");
    }

    private static float maxAbs(float[] v) {
        float m = 0;
        for (float x : v) m = Math.max(m, Math.abs(x));
        return m;
    }

    private static void assertClose(String what, float[] got, float[] want) {
        assertThat(got.length).isEqualTo(want.length);
        for (int i = 0; i < got.length; i++) {
            assertThat(got[i]).as("%s[%d]", what, i).isCloseTo(want[i], within(1e-5f * Math.max(1f, Math.abs(want[i]))));
        }
    }

    /** The experts' weights as arrays, for the double reference. */
    private record ExpertTables(float[] gate, float[] up, float[] down) {
        ExpertTables(MmoeLayer m) {
            this(m.experts().gate() == null ? null : m.experts().gate().toArray(), m.experts().up().toArray(),
                    m.experts().down().toArray());
        }
    }
}
