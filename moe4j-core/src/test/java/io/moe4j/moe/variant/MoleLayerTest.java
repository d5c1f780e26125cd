package io.moe4j.moe.variant;

import io.moe4j.kernel.Kernels;
import io.moe4j.moe.ExpertType;
import io.moe4j.moe.InvalidConfigException;
import io.moe4j.moe.RefFfn;
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

/** MoLE (spec §4.16): training forward against a double reference, the lookup-table properties 1–3, backward. */
class MoleLayerTest {
    private static final WorkerPool POOL = new WorkerPool(2);
    /** Finite differences run hundreds of tiny forwards: one thread avoids waking workers on a busy machine. */
    private static final WorkerPool SERIAL = new WorkerPool(1);
    private static final int D = 8, E = 3, F = 6, FS = 5, V = 37;
    private final Arena arena = Arena.ofAuto();

    @AfterAll
    static void close() {
        POOL.close();
        SERIAL.close();
    }

    private MoleLayer layer(int layerIndex, int maxTokens, long seed) {
        return layer(layerIndex, maxTokens, seed, POOL);
    }

    private MoleLayer layer(int layerIndex, int maxTokens, long seed, WorkerPool pool) {
        MoleConfig c = MoleConfig.builder().dModel(D).numExperts(E).expertHidden(F).sharedHidden(FS)
                .maxTokens(maxTokens).layerIndex(layerIndex).build();
        MoleLayer m = new MoleLayer(c, arena, Kernels.get(), pool);
        m.init(new SplittableRandom(seed), 0.5, 1.0);
        // a non-trivial norm weight, so the test sees it applied
        float[] w = randn(new SplittableRandom(seed + 1), D, 0.3);
        for (int j = 0; j < D; j++) w[j] += 1f;
        m.expertNorm().set(w);
        return m;
    }

    private static int[] tokens(SplittableRandom rng, int t) {
        int[] ids = new int[t];
        for (int i = 0; i < t; i++) ids[i] = rng.nextInt(V);
        return ids;
    }

    private static float[] gather(float[] table, int[] ids) {
        float[] out = new float[ids.length * D];
        for (int i = 0; i < ids.length; i++) System.arraycopy(table, ids[i] * D, out, i * D, D);
        return out;
    }

    @Test
    void trainingForwardMatchesDoubleReference() {
        int t = 9;
        MoleLayer m = layer(0, t, 11);
        SplittableRandom rng = new SplittableRandom(12);
        float[] us = randn(rng, t * D, 1.0), embs = randn(rng, t * D, 1.0);
        MemorySegment y = F32.alloc(arena, (long) t * D);
        m.forward(seg(arena, us), 0, seg(arena, embs), 0, t, y, 0);

        float[] wr = m.router().weight().toArray(), nw = m.expertNorm().toArray();
        float[] up = m.experts().up().toArray(), down = m.experts().down().toArray();
        float[] sUp = m.shared().up().toArray(), sDown = m.shared().down().toArray();
        for (int i = 0; i < t; i++) {
            double[] p = TestData.softmax(TestData.linear(wr, E, us, i, D));
            double[] ref = RefFfn.ffn(ExpertType.MLP_GELU_ERF, us, i * D, D, FS, null, sUp, sDown, 0);
            double ss = 0;
            for (int j = 0; j < D; j++) ss += (double) embs[i * D + j] * embs[i * D + j];
            double rstd = 1 / Math.sqrt(ss / D + 1e-6);
            float[] en = new float[D];
            for (int j = 0; j < D; j++) en[j] = (float) (embs[i * D + j] * rstd * nw[j]);
            for (int k = 0; k < E; k++) {
                double[] o = RefFfn.ffn(ExpertType.MLP_GELU_ERF, en, 0, D, F, null, up, down, k);
                for (int j = 0; j < D; j++) ref[j] += p[k] * o[j];
            }
            for (int j = 0; j < D; j++) {
                assertThat((double) F32.get(y, (long) i * D + j)).as("y[%d][%d]", i, j).isCloseTo(ref[j], within(2e-5));
            }
            for (int k = 0; k < E; k++) assertThat((double) m.probs()[i * E + k]).isCloseTo(p[k], within(1e-6));
        }
    }

    /** Properties 1 and 3: the table reproduces the training forward for the same ids; its size is V·L·E·d. */
    @Test
    void lookupTableForwardEqualsTrainingForward() {
        int t = 11;
        // maxTokens 8 < V = 37: the table is built in five chunks
        List<MoleLayer> layers = List.of(layer(0, 8, 21), layer(3, 8, 31));
        List<MoleLayer> big = List.of(layer(0, t, 21), layer(3, t, 31)); // same weights, room for the batch
        SplittableRandom rng = new SplittableRandom(22);
        float[] table = randn(rng, V * D, 1.0);
        MemorySegment embTable = seg(arena, table);
        int[] ids = tokens(rng, t);
        ids[4] = ids[1]; // a repeated id
        MemorySegment emb = seg(arena, gather(table, ids));
        MemorySegment u = seg(arena, randn(rng, t * D, 1.0));

        for (MoleLookupTable.Storage storage : MoleLookupTable.Storage.values()) {
            MoleLookupTable lut = MoleLookupTable.build(arena, layers, embTable, 0, V, storage, Kernels.get());
            assertThat(lut.values()).isEqualTo((long) V * 2 * E * D);
            assertThat(lut.bytes()).isEqualTo(lut.values() * (storage == MoleLookupTable.Storage.F16 ? 2 : 4));
            assertThat(lut.slotOf(3)).isEqualTo(1);
            for (MoleLayer m : big) {
                MemorySegment yTrain = F32.alloc(arena, (long) t * D), yLut = F32.alloc(arena, (long) t * D);
                m.forward(u, 0, emb, 0, t, yTrain, 0);
                m.forwardLookup(u, 0, ids, t, lut, yLut, 0);
                double tol = storage == MoleLookupTable.Storage.F32 ? 1e-6 : 2e-3;
                double max = 0;
                for (int i = 0; i < t * D; i++) max = Math.max(max, Math.abs(F32.get(yTrain, i)));
                for (int i = 0; i < t * D; i++) {
                    assertThat((double) F32.get(yLut, i)).as("%s layer %d y[%d]", storage, m.config().layerIndex(), i)
                            .isCloseTo(F32.get(yTrain, i), within(tol * Math.max(1, max)));
                }
            }
        }
    }

    /** Property 2: an expert's output depends only on the token id, never on the hidden state or the context. */
    @Test
    void expertOutputsDependOnlyOnTheTokenId() {
        int t = 6;
        MoleLayer m = layer(0, t, 41);
        SplittableRandom rng = new SplittableRandom(42);
        float[] table = randn(rng, V * D, 1.0);
        int[] ids = {5, 9, 5, 2, 9, 5};
        MemorySegment emb = seg(arena, gather(table, ids)), y = F32.alloc(arena, (long) t * D);
        m.forward(seg(arena, randn(rng, t * D, 1.0)), 0, emb, 0, t, y, 0);
        float[] first = F32.toArray(m.expertOutput(), 0, E * t * D);
        for (int i = 0; i < t; i++) {
            for (int j = 0; j < t; j++) {
                if (ids[i] != ids[j]) continue;
                for (int k = 0; k < E; k++) {
                    for (int c = 0; c < D; c++) {
                        assertThat(first[(k * t + i) * D + c]).isEqualTo(first[(k * t + j) * D + c]);
                    }
                }
            }
        }
        // a different context (other hidden states, neighbours shuffled) leaves token 5's expert outputs unchanged
        int[] ids2 = {2, 5, 9, 9, 2, 2};
        m.forward(seg(arena, randn(rng, t * D, 3.0)), 0, seg(arena, gather(table, ids2)), 0, t, y, 0);
        for (int k = 0; k < E; k++) {
            for (int c = 0; c < D; c++) {
                assertThat(F32.get(m.expertOutput(), m.expertOffset(k, 1) + c)).isEqualTo(first[(k * t) * D + c]);
            }
        }
    }

    @Test
    void backwardMatchesFiniteDifferences() {
        int t = 5;
        MoleLayer m = layer(0, t, 51, SERIAL);
        SplittableRandom rng = new SplittableRandom(52);
        float[] rs = randn(rng, t * D, 1.0);
        MemorySegment u = seg(arena, randn(rng, t * D, 1.0)), emb = seg(arena, randn(rng, t * D, 1.0));
        MemorySegment y = F32.alloc(arena, (long) t * D), dy = seg(arena, rs);
        MemorySegment du = F32.alloc(arena, (long) t * D), dEmb = F32.alloc(arena, (long) t * D);
        for (Param p : m.params()) p.zeroGrad();
        m.forward(u, 0, emb, 0, t, y, 0);
        m.backward(u, 0, emb, 0, dy, 0, du, 0, dEmb, 0);

        GradCheck g = new GradCheck("MoLE", () -> {
            m.forward(u, 0, emb, 0, t, y, 0);
            return TestData.dot(rs, y, 0);
        });
        g.probe("u", u, 0, t * D, F32.toArray(du, 0, t * D), 20);
        g.probe("emb", emb, 0, t * D, F32.toArray(dEmb, 0, t * D), 20);
        for (Param p : m.params()) g.probe(p.name(), p.data(), 0, (int) p.numel(), p.gradToArray(), 12);
        g.assertMostlyChecked();
    }

    @Test
    void gradientsAccumulateIntoTheCallersBuffers() {
        int t = 4;
        MoleLayer m = layer(0, t, 61);
        SplittableRandom rng = new SplittableRandom(62);
        MemorySegment u = seg(arena, randn(rng, t * D, 1.0)), emb = seg(arena, randn(rng, t * D, 1.0));
        MemorySegment y = F32.alloc(arena, (long) t * D), dy = seg(arena, randn(rng, t * D, 1.0));
        MemorySegment du = F32.alloc(arena, (long) t * D), dEmb = F32.alloc(arena, (long) t * D);
        m.forward(u, 0, emb, 0, t, y, 0);
        m.backward(u, 0, emb, 0, dy, 0, du, 0, dEmb, 0);
        float[] du1 = F32.toArray(du, 0, t * D), de1 = F32.toArray(dEmb, 0, t * D);
        m.backward(u, 0, emb, 0, dy, 0, du, 0, dEmb, 0);
        for (int i = 0; i < t * D; i++) {
            assertThat(F32.get(du, i)).isCloseTo(2 * du1[i], within(1e-5f));
            assertThat(F32.get(dEmb, i)).isCloseTo(2 * de1[i], within(1e-5f));
        }
    }

    @Test
    void invalidConfigAndInputsNameTheField() {
        assertThatThrownBy(() -> MoleConfig.builder().dModel(8).numExperts(0).expertHidden(4).sharedHidden(4).build())
                .isInstanceOf(InvalidConfigException.class).hasMessageContaining("mole.numExperts");
        assertThatThrownBy(() -> MoleConfig.builder().dModel(8).numExperts(2).expertHidden(4).build())
                .isInstanceOf(InvalidConfigException.class).hasMessageContaining("mole.sharedHidden");
        MoleLayer m = layer(0, 4, 71);
        MoleLookupTable lut = MoleLookupTable.build(arena, List.of(m), seg(arena, new float[V * D]), 0, V,
                MoleLookupTable.Storage.F32, Kernels.get());
        MemorySegment u = F32.alloc(arena, 4L * D), y = F32.alloc(arena, 4L * D);
        assertThatThrownBy(() -> m.forwardLookup(u, 0, new int[]{1, V, 2, 3}, 4, lut, y, 0))
                .hasMessageContaining("token id " + V + " at position 1");
        assertThatThrownBy(() -> m.forward(u, 0, u, 0, 5, y, 0)).hasMessageContaining("mole.maxTokens");
        MoleLayer other = layer(2, 4, 72);
        assertThatThrownBy(() -> other.forwardLookup(u, 0, new int[4], 4, lut, y, 0)).hasMessageContaining("no layer 2");
    }
}
