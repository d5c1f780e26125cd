package io.moe4j.moe.variant;

import com.fasterxml.jackson.databind.JsonNode;
import io.moe4j.kernel.Kernels;
import io.moe4j.kernel.row.RowOps;
import io.moe4j.nn.F32;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;
import io.moe4j.testutil.TorchPeer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

import static io.moe4j.moe.variant.TestData.randn;
import static io.moe4j.moe.variant.TestData.seg;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * MoLE's training forward and backward against an independent PyTorch implementation (test resource
 * torch/mole_reference.py, float64 autograd, written after the reference repository's MoleDecoderLayer), including
 * the embedding plumbing a model does around the layer: gather the ids' rows, scatter-add dEmb back into the table.
 */
class MoleTorchDifferentialTest {
    private static final int T = 20, D = 16, E = 4, F = 12, FS = 10, V = 13;

    @Test
    void matchesPyTorch(@TempDir Path dir) throws Exception {
        assumeTrue(TorchPeer.available(), "Debian python3-torch not installed");
        Arena arena = Arena.ofAuto();
        WorkerPool pool = WorkerPool.common();
        MoleConfig c = MoleConfig.builder().dModel(D).numExperts(E).expertHidden(F).sharedHidden(FS).normEps(1e-5f)
                .maxTokens(T).layerIndex(2).build();
        MoleLayer m = new MoleLayer(c, arena, Kernels.get(), pool);
        SplittableRandom rng = new SplittableRandom(2024);
        m.init(rng, 0.4, 1.0);
        float[] nw = randn(rng, D, 0.2);
        for (int j = 0; j < D; j++) nw[j] += 1f;
        m.expertNorm().set(nw);
        float[] us = randn(rng, T * D, 1.0), table = randn(rng, V * D, 1.0), dys = randn(rng, T * D, 1.0);
        int[] ids = new int[T];
        for (int i = 0; i < T; i++) ids[i] = rng.nextInt(V); // 20 draws from 13 ids: repeats are certain

        Map<String, Object> in = new LinkedHashMap<>();
        in.put("tokens", T);
        in.put("dModel", D);
        in.put("numExperts", E);
        in.put("expertHidden", F);
        in.put("sharedHidden", FS);
        in.put("vocab", V);
        in.put("normEps", (double) c.normEps());
        in.put("ids", ids);
        in.put("u", us);
        in.put("embedding", table);
        in.put("dy", dys);
        String prefix = "layers.2.mole.";
        for (Param p : m.params()) in.put(p.name().substring(prefix.length()), p.toArray());
        JsonNode ref = TorchPeer.run("mole_reference.py", in, dir);

        RowOps ops = Kernels.get().rows();
        MemorySegment u = seg(arena, us), tab = seg(arena, table), dy = seg(arena, dys);
        MemorySegment emb = F32.alloc(arena, (long) T * D), y = F32.alloc(arena, (long) T * D);
        MemorySegment du = F32.alloc(arena, (long) T * D), dEmb = F32.alloc(arena, (long) T * D);
        MemorySegment dTable = F32.alloc(arena, (long) V * D);
        ops.gatherRows(T, D, tab, 0, D, ids, 0, emb, 0, D);
        for (Param p : m.params()) p.zeroGrad();
        m.forward(u, 0, emb, 0, T, y, 0);
        m.backward(u, 0, emb, 0, dy, 0, du, 0, dEmb, 0);
        ops.scatterAddRows(T, D, dEmb, 0, D, ids, 0, null, 0, dTable, 0, D);

        assertClose("y", F32.toArray(y, 0, T * D), TorchPeer.floats(ref.get("y")));
        assertClose("probs", m.probs().clone(), TorchPeer.floats(ref.get("probs")));
        assertClose("grad u", F32.toArray(du, 0, T * D), TorchPeer.floats(ref.get("grad.u")));
        assertClose("grad embedding", F32.toArray(dTable, 0, V * D), TorchPeer.floats(ref.get("grad.embedding")));
        for (Param p : m.params()) {
            String key = "grad." + p.name().substring(prefix.length());
            assertThat(ref.has(key)).as("reference has " + key).isTrue();
            assertClose(key, p.gradToArray(), TorchPeer.floats(ref.get(key)));
        }
    }

    /** Relative to the tensor's largest magnitude: F32 against a float64 reference. */
    private static void assertClose(String what, float[] got, float[] want) {
        int n = want.length;
        assertThat(got.length).as(what + " length").isGreaterThanOrEqualTo(n);
        double max = 1e-6;
        for (float v : want) max = Math.max(max, Math.abs(v));
        for (int i = 0; i < n; i++) {
            assertThat(Math.abs(got[i] - want[i]) / max).as("%s[%d]: %s vs torch %s", what, i, got[i], want[i])
                    .isLessThan(2e-5);
        }
    }
}
