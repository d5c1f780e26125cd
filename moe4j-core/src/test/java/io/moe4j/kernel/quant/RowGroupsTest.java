package io.moe4j.kernel.quant;

import io.moe4j.parallel.WorkerPool;
import io.moe4j.tensor.DType;
import io.moe4j.tensor.quant.Quant;
import io.moe4j.tensor.quant.RowGroups;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The row-group layouts against the row layouts they are packed from: decoding gives the same floats, and every
 * matmul path on packed weights (SIMD decode and multi-row kernels, the panel GEMM, the scalar reference) gives the
 * same bits as the scalar reference on the original rows — the row-group kernels sum each block exactly.
 */
class RowGroupsTest {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final Arena ARENA = Arena.ofShared();
    private static final WorkerPool POOL1 = new WorkerPool(1);
    private static final WorkerPool POOL2 = new WorkerPool(2);
    private static final ScalarQuantMatmul SCALAR = new ScalarQuantMatmul();
    private static final SimdQuantMatmul SIMD = new SimdQuantMatmul();

    @AfterAll
    static void close() {
        POOL1.close();
        POOL2.close();
        ARENA.close();
    }

    /** A quantized (rows × k) matrix; {@code extreme} also sets quants to −128 / 0 / 15 and scales to large values. */
    private static MemorySegment matrix(DType t, int rows, int k, long seed, boolean extreme) {
        SplittableRandom rnd = new SplittableRandom(seed);
        float[] f = new float[rows * k];
        for (int i = 0; i < f.length; i++) f[i] = (float) rnd.nextGaussian() * (1 + (i % 7));
        MemorySegment w = ARENA.allocate(t.byteSize((long) rows * k), 64);
        Quant.quantize(t, f, 0, w, 0, rows * k);
        if (extreme && t == DType.Q8_0) {
            for (long b = 0; b < (long) rows * k / 32; b += 3) w.set(ValueLayout.JAVA_BYTE, b * 34 + 2 + (b % 32), (byte) -128);
        }
        if (extreme && t == DType.Q4_0) {
            for (long b = 0; b < (long) rows * k / 32; b += 2) w.set(ValueLayout.JAVA_BYTE, b * 18 + 2 + (b % 16), (byte) (b % 4 == 0 ? 0 : 0xff));
        }
        return w;
    }

    private static MemorySegment pack(DType t, MemorySegment w, int rows, int k) {
        DType p = RowGroups.packedOf(t);
        MemorySegment out = ARENA.allocate(rows * p.byteSize(k), 64);
        RowGroups.pack(t, w, 0, rows, k, out, 0);
        return out;
    }

    private static MemorySegment activations(int n, int k, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        MemorySegment x = ARENA.allocate((long) n * k * 4, 64);
        for (long i = 0; i < (long) n * k; i++) x.set(F32, 4 * i, (float) rnd.nextGaussian() * (i % 5 == 0 ? 30 : 1));
        return x;
    }

    private static float[] run(QuantMatmul qm, WorkerPool pool, DType t, MemorySegment w, int rows, int k, MemorySegment x,
                               int n, float[] initial) {
        MemorySegment y = ARENA.allocate((long) n * rows * 4, 64);
        if (initial != null) MemorySegment.copy(initial, 0, y, F32, 0, initial.length);
        qm.matmul(pool, t, w, 0, rows, k, x, 0, k, n, y, 0, rows, initial != null);
        return y.toArray(ValueLayout.JAVA_FLOAT);
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"Q8_0", "Q4_0"})
    void decodesRowsExactlyAsTheOriginalBlocks(DType t) {
        int rows = 48, k = 96;
        MemorySegment w = matrix(t, rows, k, 1, true);
        MemorySegment p = pack(t, w, rows, k);
        float[] a = new float[k], b = new float[k], c = new float[64];
        for (int r = 0; r < rows; r++) {
            Quant.dequantize(t, w, r * t.byteSize(k), a, 0, k);
            RowGroups.dequantizeRow(RowGroups.packedOf(t), p, 0, r, k, b, 0);
            assertThat(b).as("row %d", r).containsExactly(a);
            RowGroups.dequantizeRow(RowGroups.packedOf(t), p, 0, r, k, 32, 64, c, 0);
            for (int j = 0; j < 64; j++) assertThat(c[j]).isEqualTo(a[32 + j]);
        }
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"Q8_0", "Q4_0"})
    void everyPathOnPackedWeightsEqualsTheScalarReferenceBitForBit(DType t) {
        DType p = RowGroups.packedOf(t);
        // the last shape spans several tasks (chunks of ~144 KB: 128 rows at K = 1024) and ends in a half chunk
        int[][] shapes = {{16, 32}, {32, 64}, {48, 96}, {80, 1024}, {128, 320}, {336, 1024}};
        int[] ns = {1, 2, 3, 4, 5, 6, 7, 9, 15};
        long seed = 10;
        for (int[] s : shapes) {
            int rows = s[0], k = s[1];
            MemorySegment w = matrix(t, rows, k, seed++, seed % 2 == 0);
            MemorySegment wp = pack(t, w, rows, k);
            for (int n : ns) {
                MemorySegment x = activations(n, k, seed++);
                float[] want = run(SCALAR, POOL1, t, w, rows, k, x, n, null);
                String at = rows + "x" + k + " n=" + n;
                assertThat(run(SIMD, POOL2, p, wp, rows, k, x, n, null)).as("simd " + at).containsExactly(want);
                assertThat(run(SIMD, POOL1, p, wp, rows, k, x, n, null)).as("simd 1 thread " + at).containsExactly(want);
                assertThat(run(SCALAR, POOL2, p, wp, rows, k, x, n, null)).as("scalar " + at).containsExactly(want);
                float[] init = new float[n * rows];
                for (int i = 0; i < init.length; i++) init[i] = i * 0.25f - 3;
                float[] acc = run(SCALAR, POOL1, t, w, rows, k, x, n, init);
                assertThat(run(SIMD, POOL2, p, wp, rows, k, x, n, init)).as("accumulate " + at).containsExactly(acc);
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"Q8_0", "Q4_0"})
    void matmulPairOnPackedWeightsEqualsTwoCalls(DType t) {
        DType p = RowGroups.packedOf(t);
        int rows = 64, k = 128, n = 3;
        MemorySegment w1 = pack(t, matrix(t, rows, k, 3, false), rows, k), w2 = pack(t, matrix(t, rows, k, 4, false), rows, k);
        MemorySegment x = activations(n, k, 5);
        MemorySegment y1 = ARENA.allocate((long) n * rows * 4, 64), y2 = ARENA.allocate((long) n * rows * 4, 64);
        SIMD.matmulPair(POOL2, p, w1, 0, w2, 0, rows, k, x, 0, k, n, y1, 0, y2, 0, rows, false);
        assertThat(y1.toArray(ValueLayout.JAVA_FLOAT)).containsExactly(run(SIMD, POOL1, p, w1, rows, k, x, n, null));
        assertThat(y2.toArray(ValueLayout.JAVA_FLOAT)).containsExactly(run(SIMD, POOL1, p, w2, rows, k, x, n, null));
    }

    /** Large N goes to the panel GEMM, which decodes the same values: the same bits as on the original rows. */
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"Q8_0", "Q4_0"})
    void panelGemmOnPackedWeightsEqualsItsOriginalLayoutResult(DType t) {
        DType p = RowGroups.packedOf(t);
        for (int[] s : new int[][]{{16, 64, 16}, {96, 1024, 33}, {48, 544, 20}}) {
            int rows = s[0], k = s[1], n = s[2];
            MemorySegment w = matrix(t, rows, k, rows + k, true);
            MemorySegment wp = pack(t, w, rows, k);
            MemorySegment x = activations(n, k, n);
            for (PanelGemm pg : new PanelGemm[]{PanelGemm.forBits(FloatVectorBits.PREFERRED), new PanelGemm(jdk.incubator.vector.FloatVector.SPECIES_256),
                    new PanelGemm(jdk.incubator.vector.FloatVector.SPECIES_128)}) {
                float[] want = run(pg, POOL2, t, w, rows, k, x, n, null);
                assertThat(run(pg, POOL2, p, wp, rows, k, x, n, null)).as(pg.name() + " " + rows + "x" + k + " n=" + n).containsExactly(want);
            }
            // and through SimdQuantMatmul's dispatch
            assertThat(run(SIMD, POOL2, p, wp, rows, k, x, n, null)).containsExactly(run(SIMD, POOL2, t, w, rows, k, x, n, null));
        }
    }

    @Test
    void refusesWhatCannotBePackedWithAClearMessage() {
        MemorySegment w = ARENA.allocate(DType.Q8_0.byteSize(24L * 32), 64);
        MemorySegment out = ARENA.allocate(1 << 16, 64);
        assertThatThrownBy(() -> RowGroups.pack(DType.Q8_0, w, 0, 24, 32, out, 0))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("groups of 16");
        assertThatThrownBy(() -> RowGroups.pack(DType.Q4_K, w, 0, 16, 256, out, 0)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> Quant.dequantize(DType.Q8_0_R16, out, 0, new float[32], 0, 32))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("RowGroups");
        MemorySegment x = ARENA.allocate(4 * 32);
        assertThatThrownBy(() -> SIMD.matmul(POOL1, DType.Q8_0_R16, out, 0, 24, 32, x, 0, 32, 1, out, 0, 24, false))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("multiple");
        assertThat(DType.ofGgmlId(-1)).isNull();
        assertThat(DType.fileTypes()).doesNotContain(DType.Q8_0_R16, DType.Q4_0_R16);
    }

    /** The preferred width's bits, for {@link PanelGemm#forBits}. */
    private static final class FloatVectorBits {
        static final int PREFERRED = jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.vectorBitSize();
    }
}
