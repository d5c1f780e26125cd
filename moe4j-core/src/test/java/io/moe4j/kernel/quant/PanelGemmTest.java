package io.moe4j.kernel.quant;

import io.moe4j.parallel.WorkerPool;
import io.moe4j.tensor.DType;
import io.moe4j.tensor.quant.Bf16;
import io.moe4j.tensor.quant.Fp16;
import io.moe4j.tensor.quant.Q4_K;
import io.moe4j.tensor.quant.Q6_K;
import io.moe4j.tensor.quant.Q8_0;
import io.moe4j.tensor.quant.Q8_K;
import io.moe4j.tensor.quant.Quant;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.List;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * The large-N panel path ({@link PanelGemm}): its weight decoders against {@link Quant#dequantize} (bit-exact),
 * products against a float64 reference over awkward sizes, offsets, strides and accumulation for every weight
 * type, against {@link ScalarQuantMatmul} (the measured gap), bit-identity over thread counts, column splits and
 * vector widths, and the dispatch boundary in {@link SimdQuantMatmul}.
 */
class PanelGemmTest {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final Arena ARENA = Arena.ofShared();
    private static final WorkerPool POOL1 = new WorkerPool(1);
    private static final WorkerPool POOL2 = new WorkerPool(2);
    private static final WorkerPool POOL3 = new WorkerPool(3);

    @AfterAll
    static void close() {
        POOL1.close();
        POOL2.close();
        POOL3.close();
        ARENA.close();
    }



    /** {Y, Σ|terms|}[i][r] in float64 from Quant.dequantize'd weights and X rounded as ggml's vec_dot_type. */
    static double[][][] reference(QuantCase c) {
        double[][] y = new double[c.n()][c.rows()], abs = new double[c.n()][c.rows()];
        float[] w = new float[c.k()], x = new float[c.k()];
        double[] xs = new double[c.k()];
        short[] q = new short[256], bs = new short[16];
        for (int i = 0; i < c.n(); i++) {
            MemorySegment.copy(c.x(), F32, 4 * (c.xOff() + (long) i * c.ldx()), x, 0, c.k());
            for (int j = 0; j < c.k(); j++) {
                xs[j] = c.t() == DType.F16 ? Fp16.round(x[j]) : c.t() == DType.BF16 ? Bf16.round(x[j]) : x[j];
            }
            if (c.t() == DType.Q4_K || c.t() == DType.Q6_K) {
                for (int b = 0; b < c.k(); b += 256) {
                    float d = Q8_K.quantizeBlock(x, b, q, 0, bs, 0);
                    for (int j = 0; j < 256; j++) xs[b + j] = q[j] * (double) d;
                }
            } else if (c.t().isQuantized()) {
                for (int b = 0; b < c.k(); b += 32) {
                    float d = Fp16.decode(Q8_0.quantizeBlockActivations(x, b, q, 0));
                    for (int j = 0; j < 32; j++) xs[b + j] = q[j] * (double) d;
                }
            }
            for (int r = 0; r < c.rows(); r++) {
                Quant.dequantize(c.t(), c.w(), c.wOff() + r * c.t().byteSize(c.k()), w, 0, c.k());
                double s = 0, a = 0;
                for (int j = 0; j < c.k(); j++) {
                    s += w[j] * xs[j];
                    a += Math.abs(w[j] * xs[j]);
                }
                y[i][r] = s;
                abs[i][r] = a;
            }
        }
        return new double[][][] {y, abs};
    }

    /** Room for a float sum of {@code terms} terms (any order, each product rounded once) against float64. */
    static double tolerance(int terms, double absSum) {
        return (terms + 64) * 0x1p-23 * absSum + 1e-30;
    }

    static List<VectorSpecies<Float>> species() {
        return List.of(FloatVector.SPECIES_512, FloatVector.SPECIES_256, FloatVector.SPECIES_128);
    }

    static void assertBitIdentical(QuantCase c, MemorySegment expected, MemorySegment actual, String what) {
        for (int i = 0; i < c.n(); i++) {
            for (int r = 0; r < c.rows(); r++) {
                assertThat(Float.floatToRawIntBits(c.y(actual, i, r))).as("%s Y[%d][%d]", what, i, r)
                        .isEqualTo(Float.floatToRawIntBits(c.y(expected, i, r)));
            }
        }
    }

    // ------------------------------------------------------------------ decoders

    @ParameterizedTest
    @EnumSource(value = DType.class, mode = EnumSource.Mode.MATCH_NONE, names = ".*_R16") // row groups: RowGroupsTest
    void decodersMatchQuantDequantizeBitForBit(DType t) {
        int k = 768;
        QuantCase c = QuantCase.random(t, 3, k, 1, 21, true);
        float[] expected = new float[k], actual = new float[k + 7];
        byte[] blk = new byte[256]; // a reused block buffer (the K-quant codecs' scratch overload), stale bytes in it
        java.util.Arrays.fill(blk, (byte) 0x5a);
        for (int r = 0; r < c.rows(); r++) {
            long at = c.wOff() + r * t.byteSize(k);
            Quant.dequantize(t, c.w(), at, expected, 0, k);
            switch (t) {
                case Q8_0 -> PanelGemm.decodeQ8(c.w(), at, k, actual, 7);
                case Q4_0 -> PanelGemm.decodeQ4(c.w(), at, k, actual, 7);
                case Q4_K -> Q4_K.dequantize(c.w(), at, actual, 7, k, blk); // what PanelGemm calls
                case Q6_K -> Q6_K.dequantize(c.w(), at, actual, 7, k, blk);
                case BF16 -> PanelGemm.decodeBf16(c.w(), at, k, actual, 7);
                case F32, F16 -> { continue; } // decoded inline; covered by the products below
            }
            for (int j = 0; j < k; j++) {
                assertThat(Float.floatToRawIntBits(actual[7 + j])).as("%s row %d elem %d", t, r, j)
                        .isEqualTo(Float.floatToRawIntBits(expected[j]));
            }
        }
    }

    // ------------------------------------------------------------------ products

    /**
     * Awkward sizes with small blocks (KC 256, NC 2·NR, A block of 2 panels' worth) so that every loop runs
     * several times: N not a multiple of MR, rows not a multiple of NR, K over several KC blocks with a short last
     * one, several A blocks; odd offsets and strides; overwrite and accumulate.
     */
    @ParameterizedTest
    @EnumSource(value = DType.class, mode = EnumSource.Mode.MATCH_NONE, names = ".*_R16") // row groups: RowGroupsTest
    void matchesFloat64ReferenceOverAwkwardSizes(DType t) {
        int[] ks = t.blockSize() == 256 ? new int[] {256, 768} : t.isQuantized() ? new int[] {32, 608} : new int[] {7, 300};
        long seed = 1;
        for (VectorSpecies<Float> sp : species()) {
            int nr = sp.length() * 2, mr = sp.vectorBitSize() == 512 ? 8 : 4;
            PanelGemm small = new PanelGemm(sp, 256, 2 * nr, 2 * mr * 608);
            for (int k : ks) {
                for (int[] nRows : new int[][] {{1, 1}, {9, 2 * nr + 3}, {3 * mr + 1, nr - 1}, {5 * mr, 3 * nr}}) {
                    for (boolean accumulate : new boolean[] {false, true}) {
                        QuantCase c = QuantCase.random(t, nRows[1], k, nRows[0], seed++, seed % 2 == 0);
                        MemorySegment y = c.run(small, POOL2, accumulate);
                        double[][][] ref = reference(c);
                        double add = accumulate ? 0.75 : 0;
                        for (int i = 0; i < c.n(); i++) {
                            for (int r = 0; r < c.rows(); r++) {
                                double err = Math.abs(c.y(y, i, r) - (ref[0][i][r] + add));
                                assertThat(err).as("%s %s n=%d rows=%d k=%d acc=%b Y[%d][%d]", t, sp, c.n(), c.rows(), k,
                                        accumulate, i, r).isLessThanOrEqualTo(tolerance(k, ref[1][i][r] + add));
                            }
                        }
                        // nothing outside Y is touched: the gap columns of a strided Y keep their fill
                        if (c.ldy() > c.rows() && c.n() > 1) assertThat(Float.isNaN(c.y(y, 0, c.rows())) || accumulate).isTrue();
                    }
                }
            }
        }
    }

    /**
     * Against the small-N path on the model's shapes: the same rounded operands, only the summation differs.
     * Measured here (seed 3, N 40, K 1024): max |Δ| / Σ|terms| = 6.7e-8 (Q8_0), 7.6e-8 (Q4_0), 7.2e-8 (Q4_K),
     * 7.8e-8 (Q6_K), 1.6e-7 (F16), 1.0e-7 (BF16), 2.6e-7 (F32): a few float ulps of the terms.
     */
    @ParameterizedTest
    @EnumSource(value = DType.class, mode = EnumSource.Mode.MATCH_NONE, names = ".*_R16") // row groups: RowGroupsTest
    void closeToScalarQuantMatmul(DType t) {
        int k = 1024;
        QuantCase c = QuantCase.random(t, 70, k, 40, 3, true);
        MemorySegment panel = c.run(new PanelGemm(), POOL2, false);
        MemorySegment scalar = c.run(new ScalarQuantMatmul(), POOL2, false);
        double[][][] ref = reference(c);
        double worst = 0;
        for (int i = 0; i < c.n(); i++) {
            for (int r = 0; r < c.rows(); r++) {
                double rel = Math.abs(c.y(panel, i, r) - c.y(scalar, i, r)) / ref[1][i][r];
                worst = Math.max(worst, rel);
            }
        }
        assertThat(worst).as("%s max |panel - scalar| / Σ|terms|", t).isLessThan(1e-6);
    }

    // ------------------------------------------------------------------ determinism

    /** Bit-identical for 1, 2 and 3 threads, for other column splits, and for every vector width. */
    @ParameterizedTest
    @EnumSource(value = DType.class, mode = EnumSource.Mode.MATCH_NONE, names = ".*_R16") // row groups: RowGroupsTest
    void bitIdenticalOverThreadsSplitsAndWidths(DType t) {
        int k = t.blockSize() == 256 ? 768 : 544;
        QuantCase c = QuantCase.random(t, 200, k, 37, 9, true);
        MemorySegment expected = c.run(new PanelGemm(FloatVector.SPECIES_512), POOL1, true);
        for (VectorSpecies<Float> sp : species()) {
            for (PanelGemm g : List.of(new PanelGemm(sp), new PanelGemm(sp, PanelGemm.KC, 16, 1 << 12),
                    new PanelGemm(sp, PanelGemm.KC, 96, 1 << 21))) {
                for (WorkerPool pool : List.of(POOL1, POOL2, POOL3)) {
                    assertBitIdentical(c, expected, c.run(g, pool, true), g.name() + " threads " + pool.threads());
                }
            }
        }
        // A row's result does not depend on the other rows of X either (rows of A never mix).
        QuantCase first = new QuantCase(c.t(), c.rows(), c.k(), 1, c.w(), c.wOff(), c.x(), c.xOff(), c.ldx(), c.yOff(), c.ldy());
        MemorySegment one = first.run(new PanelGemm(), POOL2, true);
        for (int r = 0; r < c.rows(); r++) assertThat(first.y(one, 0, r)).isEqualTo(c.y(expected, 0, r));
    }

    // ------------------------------------------------------------------ dispatch

    /**
     * {@link SimdQuantMatmul} keeps its own kernels below {@link PanelGemm#MIN_N} rows (each row equals that row
     * computed alone, N = 1) and hands the product to the panel path from MIN_N on (bit-identical to it).
     */
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"Q8_0", "Q4_0", "Q6_K", "F16"})
    void thresholdBoundary(DType t) {
        int k = t.blockSize() == 256 ? 512 : 320;
        SimdQuantMatmul simd = new SimdQuantMatmul();
        PanelGemm panel = new PanelGemm();
        for (int n : new int[] {PanelGemm.minN - 1, PanelGemm.minN}) {
            QuantCase c = QuantCase.random(t, 45, k, n, 17 + n, false);
            MemorySegment y = c.run(simd, POOL2, false);
            if (n >= PanelGemm.minN) {
                assertBitIdentical(c, c.run(panel, POOL2, false), y, "n=" + n);
            } else {
                for (int i : new int[] {0, n / 2, n - 1}) {
                    QuantCase row = new QuantCase(c.t(), c.rows(), c.k(), 1, c.w(), c.wOff(), c.x(), c.xOff() + (long) i * c.ldx(), c.ldx(), 0, c.ldy());
                    MemorySegment alone = row.run(simd, POOL2, false);
                    for (int r = 0; r < c.rows(); r++) assertThat(c.y(y, i, r)).as("n=%d Y[%d][%d]", n, i, r).isEqualTo(row.y(alone, 0, r));
                }
            }
        }
    }

    // ------------------------------------------------------------------ errors

    @Test
    void badArgumentsGiveOneClearError() {
        PanelGemm g = new PanelGemm();
        MemorySegment w = ARENA.allocate(4096), x = ARENA.allocate(4096), y = ARENA.allocate(4096);
        assertThatThrownBy(() -> g.matmul(POOL2, DType.Q8_0, w, 0, 2, 48, x, 0, 48, 2, y, 0, 2, false))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("multiple of 32");
        assertThatThrownBy(() -> g.matmul(POOL2, DType.F32, w, 0, 2, 8, x, 0, 4, 2, y, 0, 2, false))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("stride");
        assertThatThrownBy(() -> g.matmul(POOL2, DType.F32, w, 0, 64, 64, x, 0, 64, 2, y, 0, 64, false))
                .isInstanceOf(IndexOutOfBoundsException.class).hasMessageContaining("W:");
        assertThatThrownBy(() -> new PanelGemm(FloatVector.SPECIES_512, 100, 64, 1 << 12))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("KC");
    }

    /** K = 0: Y is zeroed (or left as is when accumulating), as the other implementations do. */
    @Test
    void emptyK() {
        QuantCase c = QuantCase.random(DType.Q8_0, 5, 0, 3, 1, false);
        MemorySegment y = c.run(new PanelGemm(), POOL2, false);
        for (int i = 0; i < 3; i++) for (int r = 0; r < 5; r++) assertThat(c.y(y, i, r)).isZero();
        y = c.run(new PanelGemm(), POOL2, true);
        for (int i = 0; i < 3; i++) for (int r = 0; r < 5; r++) assertThat(c.y(y, i, r)).isEqualTo(0.75f);
    }
}
