package io.moe4j.bench;

import io.moe4j.kernel.gemm.ScalarGemm;
import io.moe4j.parallel.WorkerPool;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The FFM binding of cblas_sgemm agrees with moe4j's scalar reference GEMM in all four forms. */
class OpenBlasTest {
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.nativeOrder());

    @Test
    void sgemmMatchesScalarReferenceInAllForms() {
        OpenBlas blas = OpenBlas.load().orElse(null);
        assumeTrue(blas != null, OpenBlas.NOT_FOUND);
        int m = 13, n = 7, k = 29;
        try (Arena arena = Arena.ofShared(); WorkerPool pool = new WorkerPool(1)) {
            for (boolean ta : new boolean[]{false, true}) {
                for (boolean tb : new boolean[]{false, true}) {
                    // Awkward leading dimensions and offsets, so a wrong stride or order shows.
                    int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 2, ldc = n + 5;
                    long aOff = 4, bOff = 1, cOff = 3;
                    MemorySegment a = arena.allocate((aOff + (long) (ta ? k : m) * lda) * 4, 64);
                    MemorySegment b = arena.allocate((bOff + (long) (tb ? n : k) * ldb) * 4, 64);
                    MemorySegment c1 = arena.allocate((cOff + (long) m * ldc) * 4, 64);
                    MemorySegment c2 = arena.allocate((cOff + (long) m * ldc) * 4, 64);
                    RandomData.floats(a, 0, a.byteSize() / 4, 11);
                    RandomData.floats(b, 0, b.byteSize() / 4, 12);
                    RandomData.floats(c1, 0, c1.byteSize() / 4, 13);
                    MemorySegment.copy(c1, 0, c2, 0, c1.byteSize());

                    new ScalarGemm().sgemm(pool, ta, tb, m, n, k, a, aOff, lda, b, bOff, ldb, c1, cOff, ldc, true);
                    blas.sgemm(ta, tb, m, n, k, 1f, a, aOff, lda, b, bOff, ldb, 1f, c2, cOff, ldc);

                    for (long i = 0; i < c1.byteSize() / 4; i++) {
                        assertThat(c2.getAtIndex(F, i)).as("ta=%s tb=%s element %d", ta, tb, i)
                                .isCloseTo(c1.getAtIndex(F, i), org.assertj.core.data.Offset.offset(1e-4f));
                    }
                }
            }
        }
    }

    @Test
    void sgemmRejectsTooSmallSegmentsInsteadOfCrashing() {
        OpenBlas blas = OpenBlas.load().orElse(null);
        assumeTrue(blas != null, OpenBlas.NOT_FOUND);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment s = arena.allocate(16 * 4);
            assertThatThrownBy(() -> blas.sgemm(false, false, 4, 4, 5, 1f, s, 0, 5, s, 0, 4, 0f, s, 0, 4))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("A needs");
        }
    }

    @Test
    void threadCountAndConfigCalls() {
        OpenBlas blas = OpenBlas.load().orElse(null);
        assumeTrue(blas != null, OpenBlas.NOT_FOUND);
        blas.setThreads(1);
        assertThat(blas.config()).containsIgnoringCase("openblas");
    }
}
