package io.moe4j.kernel.gemm;

import io.moe4j.parallel.WorkerPool;
import io.moe4j.testutil.GemmOperands;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.data.Offset.offset;

/** The reference itself, against a naive float64 loop, in all four forms. */
class ScalarGemmTest {

    @Test
    void matchesFloat64ProductInAllForms() {
        try (Arena arena = Arena.ofShared(); WorkerPool pool = new WorkerPool(2)) {
            for (int form = 0; form < 4; form++) {
                for (boolean accumulate : new boolean[] {false, true}) {
                    GemmOperands o = new GemmOperands(arena, form % 2 == 0, (form & 2) != 0, (form & 1) != 0,
                            5, 9, 17, 2, form);
                    new ScalarGemm().sgemm(pool, o.transA, o.transB, o.m, o.n, o.k, o.a, o.aOff, o.lda,
                            o.b, o.bOff, o.ldb, o.c, o.cOff, o.ldc, accumulate);
                    for (int i = 0; i < o.m; i++) {
                        for (int j = 0; j < o.n; j++) {
                            assertThat((double) o.c(i, j)).isCloseTo(o.expected(i, j, accumulate), offset(1e-5));
                        }
                    }
                }
            }
        }
    }

    @Test
    void smallExactProduct() {
        float[] a = {1, 2, 3, 4, 5, 6};     // 2×3
        float[] bt = {1, 0, 2, 0, 1, 1};    // B stored 2×3, so op(B) = Bᵀ is 3×2
        float[] c = new float[4];
        try (WorkerPool pool = new WorkerPool(1)) {
            new ScalarGemm().nt(pool, 2, 2, 3, java.lang.foreign.MemorySegment.ofArray(a), 0, 3,
                    java.lang.foreign.MemorySegment.ofArray(bt), 0, 3, java.lang.foreign.MemorySegment.ofArray(c), 0, 2,
                    false);
        }
        assertThat(c).containsExactly(7, 5, 16, 11);
    }
}
