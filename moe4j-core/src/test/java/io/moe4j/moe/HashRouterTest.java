package io.moe4j.moe;

import io.moe4j.kernel.Kernels;
import io.moe4j.moe.router.HashRouter;
import io.moe4j.moe.router.Routers;
import io.moe4j.nn.F32;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

/** Hash routing (spec §4.11): fixed token-id table, weight 1, no router parameters or losses; balanced hash. */
class HashRouterTest {
    private static final int V = 1000, E = 8;
    private final Arena arena = Arena.ofAuto();

    private static MoeConfig.Builder base() {
        return MoeConfig.builder().router("hash").vocabSize(V).dModel(4).numExperts(E).topK(1).expertHidden(4)
                .maxTokens(256).seed(11);
    }

    private HashRouter create(MoeConfig c) {
        return (HashRouter) Routers.create(c, arena, Kernels.get(), WorkerPool.common());
    }

    private Routing route(HashRouter router, MoeConfig c, int[] ids) {
        return RouterHarness.route(router, c, arena, null, ids, true);
    }

    private static int[] randomIds(long seed, int n) {
        SplittableRandom rng = new SplittableRandom(seed);
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) ids[i] = rng.nextInt(V);
        return ids;
    }

    /** Same token id ⇒ same expert at every position and in every batch; weight 1; one-hot scores; no losses. */
    @Test
    void sameTokenSameExpertEverywhere() {
        MoeConfig c = base().build();
        HashRouter router = create(c);
        int[] table = router.table();
        assertThat(router.params()).isEmpty();
        for (long seed = 0; seed < 3; seed++) {
            int[] ids = randomIds(seed, 200);
            ids[7] = ids[150] = 42; // the same id at two positions
            Routing r = route(router, c, ids);
            for (int i = 0; i < ids.length; i++) {
                assertThat(r.expert[i]).isEqualTo(table[ids[i]]);
                assertThat(r.weight[i]).isEqualTo(1f);
                for (int j = 0; j < E; j++) assertThat(r.scores[i * E + j]).isEqualTo(j == table[ids[i]] ? 1f : 0f);
            }
            assertThat(r.expert[7]).isEqualTo(r.expert[150]);
            assertThat(r.auxLoss()).isZero();
        }
    }

    /** The random table is a pure function of (vocabSize, E, seed) and spreads ids roughly uniformly. */
    @Test
    void randomTableIsSeededAndRoughlyUniform() {
        assertThat(create(base().build()).table()).isEqualTo(create(base().build()).table());
        assertThat(create(base().seed(12).build()).table()).isNotEqualTo(create(base().build()).table());
        int[] t = HashRouter.randomTable(80_000, E, 5);
        int[] counts = new int[E];
        for (int x : t) counts[x]++;
        for (int n : counts) assertThat(n).isBetween(9_400, 10_600); // 10 000 ± ~6σ
    }

    /** Balanced hash: expert loads differ by at most the largest single-token frequency (spec §4.11). */
    @Test
    void balancedHashLoadsDifferByAtMostTheLargestFrequency() {
        for (long seed = 0; seed < 5; seed++) {
            SplittableRandom rng = new SplittableRandom(seed);
            long[] freq = new long[V];
            long max = 0;
            for (int v = 0; v < V; v++) {
                freq[v] = v % 7 == 0 ? 0 : (long) (1e5 / (1 + rng.nextInt(V))); // Zipf-like, with unseen ids
                max = Math.max(max, freq[v]);
            }
            int[] t = HashRouter.balancedTable(freq, E);
            long[] load = new long[E];
            int[] unseen = new int[E];
            for (int v = 0; v < V; v++) {
                assertThat(t[v]).isBetween(0, E - 1);
                load[t[v]] += freq[v];
                if (freq[v] == 0) unseen[t[v]]++;
            }
            long lo = Long.MAX_VALUE, hi = 0;
            for (long l : load) { lo = Math.min(lo, l); hi = Math.max(hi, l); }
            assertThat(hi - lo).isLessThanOrEqualTo(max);
            int uLo = Integer.MAX_VALUE, uHi = 0;
            for (int u : unseen) { uLo = Math.min(uLo, u); uHi = Math.max(uHi, u); }
            assertThat(uHi - uLo).isLessThanOrEqualTo(1);
        }
        // by hand: 10 → e0; 7 → e1; 5 → e1 (7 < 10); 4 → e0 (10 < 12); 3 → e1 (12 < 14): loads 14 / 15
        assertThat(HashRouter.balancedTable(new long[]{10, 7, 5, 4, 3}, 2)).containsExactly(0, 1, 1, 0, 1);
    }

    @Test
    void balancedFactoryUsesTheBalancedTable() {
        long[] freq = new long[V];
        for (int v = 0; v < V; v++) freq[v] = V - v;
        HashRouter router = HashRouter.balanced(base().build(), freq);
        assertThat(router.table()).isEqualTo(HashRouter.balancedTable(freq, E));
        assertThatThrownBy(() -> router.loadTable(new int[V - 1])).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("vocabSize");
        int[] bad = new int[V];
        bad[3] = E;
        assertThatThrownBy(() -> router.loadTable(bad)).hasMessageContaining("entry 3");
    }

    @Test
    void missingOrOutOfRangeTokenIdsAreClearErrors() {
        MoeConfig c = base().build();
        HashRouter router = create(c);
        Routing r = new Routing(E, 1, c.maxTokens());
        r.reset(2);
        MemorySegment x = F32.alloc(arena, 8);
        assertThatThrownBy(() -> router.forward(x, 0, 2, null, r, false))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("token ids");
        assertThatThrownBy(() -> router.forward(x, 0, 2, new int[]{1}, r, false))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("1 token ids for 2 tokens");
        assertThatThrownBy(() -> router.forward(x, 0, 2, new int[]{1, V}, r, false))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("token id " + V + " at position 1").hasMessageContaining("moe.vocabSize");
        assertThatThrownBy(() -> router.forward(x, 0, 2, new int[]{-1, 0}, r, false))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("token id -1");
    }

    @Test
    void invalidConfigsNameTheField() {
        assertThatThrownBy(() -> create(base().vocabSize(0).build())).isInstanceOf(InvalidConfigException.class)
                .hasMessageContaining("moe.vocabSize must be > 0");
        assertThatThrownBy(() -> create(base().topK(2).build())).isInstanceOf(InvalidConfigException.class)
                .hasMessageContaining("moe.topK must be 1");
        assertThatThrownBy(() -> create(base().zLossCoef(1e-3).build())).isInstanceOf(InvalidConfigException.class)
                .hasMessageContaining("moe.zLossCoef");
    }

    /** Layer: y_t = FFN_{h(v_t)}(x_t) exactly (weight 1); only the experts get gradients. */
    @Test
    void layerOutputIsTheHashedExpert() {
        int d = 8, f = 6, t = 12;
        MoeConfig c = base().dModel(d).expertHidden(f).maxTokens(t).build();
        MoeLayer layer = new MoeLayer(c, arena, Kernels.get(), WorkerPool.common());
        layer.init(new SplittableRandom(1), 0.5, 1.0);
        float[] xs = MoeLayerTest.randn(new SplittableRandom(2), t * d, 1.0);
        int[] ids = randomIds(3, t);
        MemorySegment x = F32.alloc(arena, (long) t * d), y = F32.alloc(arena, (long) t * d);
        F32.copyIn(xs, x, 0);
        layer.forward(x, 0, t, ids, y, 0, true);
        int[] table = ((HashRouter) layer.router()).table();
        ExpertBank b = layer.experts();
        for (int i = 0; i < t; i++) {
            double[] ref = RefFfn.ffn(ExpertType.SWIGLU, xs, i * d, d, f, b.gate().toArray(), b.up().toArray(),
                    b.down().toArray(), table[ids[i]]);
            for (int j = 0; j < d; j++) assertThat((double) F32.get(y, (long) i * d + j)).isCloseTo(ref[j], within(1e-5));
        }
        for (Param p : layer.params()) p.zeroGrad();
        MemorySegment dy = F32.alloc(arena, (long) t * d), dx = F32.alloc(arena, (long) t * d);
        F32.copyIn(MoeLayerTest.randn(new SplittableRandom(4), t * d, 1.0), dy, 0);
        layer.backward(x, 0, dy, 0, dx, 0);
        assertThat(layer.params()).hasSize(3); // gate, up, down of the experts; no router parameter
        float[] gup = b.up().gradToArray();
        for (int ex = 0; ex < E; ex++) {
            boolean used = false;
            for (int id : ids) used |= table[id] == ex;
            double norm = 0;
            for (int i = ex * f * d; i < (ex + 1) * f * d; i++) norm += Math.abs(gup[i]);
            if (used) assertThat(norm).isPositive();
            else assertThat(norm).isZero();
        }
    }
}
