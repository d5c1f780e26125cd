package io.moe4j.kernel.row;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorSpecies;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.stream.Stream;

import static io.moe4j.kernel.row.RowTestData.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Both implementations reject bad arguments with the same clear IllegalArgumentException, before touching memory. */
class RowOpsArgumentTest {
    private final Arena arena = Arena.ofConfined();
    private final MemorySegment s10 = segment(arena, 10);

    @AfterEach
    void close() { arena.close(); }

    static Stream<RowOps> impls() { return allImpls().stream(); }

    @ParameterizedTest
    @MethodSource("impls")
    void lengthsAndOffsets(RowOps ops) {
        assertThatThrownBy(() -> ops.axpy(-1, 1f, s10, 0, s10, 0)).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("n must be >= 0");
        assertThatThrownBy(() -> ops.dot(8, s10, 3, s10, 0)).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("x: 8 floats at offset 3");
        assertThatThrownBy(() -> ops.add(4, s10, 0, s10, -1, s10, 0)).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("y: negative offset");
        assertThatThrownBy(() -> ops.silu(11, s10, 0, s10, 0)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> ops.rmsnorm(0, s10, 0, s10, 0, 1e-5f, s10, 0)).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("n must be >= 1");
        assertThatThrownBy(() -> ops.softmax(0, s10, 0)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> ops.swigluBackward(5, s10, 0, s10, 0, s10, 0, s10, 0, s10, 6))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("dup");
        // n = 0 is a no-op where the result is defined
        ops.axpy(0, 1f, s10, 10, s10, 10);
        assertThat(ops.dot(0, s10, 0, s10, 0)).isZero();
    }

    @ParameterizedTest
    @MethodSource("impls")
    void softmaxWithoutFiniteMaximum(RowOps ops) {
        MemorySegment x = segment(arena, 40);
        for (int i = 0; i < 40; i++) x.setAtIndex(F, i, Float.NEGATIVE_INFINITY);
        assertThatThrownBy(() -> ops.softmax(40, x, 0)).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("finite maximum");
        x.setAtIndex(F, 3, Float.NaN);
        assertThatThrownBy(() -> ops.softmax(40, x, 0)).isInstanceOf(IllegalArgumentException.class);
    }

    @ParameterizedTest
    @MethodSource("impls")
    void ropeAndTopK(RowOps ops) {
        float[] t = new float[8];
        assertThatThrownBy(() -> ops.rope(1, 4, 3, s10, 0, t, t, 0, false, false)).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("even");
        assertThatThrownBy(() -> ops.rope(1, 4, 6, s10, 0, t, t, 0, false, false)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> ops.rope(3, 4, 4, s10, 0, t, t, 0, false, false)).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("x:");
        assertThatThrownBy(() -> ops.rope(1, 4, 4, s10, 0, t, t, 7, false, false)).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("cos");
        assertThatThrownBy(() -> ops.topK(5, 6, s10, 0, new int[6], 0, null, 0)).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("k must be");
        assertThatThrownBy(() -> ops.topK(5, 3, s10, 0, new int[2], 0, null, 0)).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("idx");
        assertThatThrownBy(() -> ops.topK(5, 3, s10, 0, new int[3], 0, new float[3], 1)).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("vals");
    }

    @ParameterizedTest
    @MethodSource("impls")
    void gatherAndScatter(RowOps ops) {
        MemorySegment m = segment(arena, 12); // 3 rows of 4
        assertThatThrownBy(() -> ops.gatherRows(1, 4, m, 0, 4, new int[]{3}, 0, m, 0, 4))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("src (row 3)");
        assertThatThrownBy(() -> ops.gatherRows(1, 4, m, 0, 4, new int[]{-1}, 0, m, 0, 4))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("negative");
        assertThatThrownBy(() -> ops.gatherRows(1, 4, m, 0, 3, new int[]{0}, 0, m, 0, 4))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("leading dimension");
        assertThatThrownBy(() -> ops.scatterAddRows(2, 4, m, 0, 4, new int[]{0, 1}, 0, new float[1], 0, m, 0, 4))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("weights");
        assertThatThrownBy(() -> ops.scatterAddRows(4, 4, m, 0, 4, new int[]{0, 1, 2, 0}, 0, null, 0, m, 0, 4))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("src");
        assertThatThrownBy(() -> ops.scatterAddRowsBackward(2, 4, m, 0, 4, new int[]{0, 1}, 0, null, 0, m, 0, 4,
                m, 0, 4, new float[1], 0)).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("dWeights");
        // src is not read without dWeights, so it may be null then
        ops.scatterAddRowsBackward(2, 4, m, 0, 4, new int[]{0, 1}, 0, null, 0, null, 0, 0, m, 4, 4, null, 0);
    }

    @Test
    @SuppressWarnings("unchecked")
    void nonFloatSpeciesIsRejected() {
        VectorSpecies<?> ints = IntVector.SPECIES_256;
        assertThatThrownBy(() -> new SimdRowOps((VectorSpecies<Float>) ints))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("float species");
        assertThatThrownBy(() -> new SimdRowOps(null)).isInstanceOf(IllegalArgumentException.class);
        assertThat(new SimdRowOps(FloatVector.SPECIES_64).name()).isEqualTo("simd-64"); // generic-width path
    }
}
