package io.moe4j.kernel.quant;

import io.moe4j.parallel.WorkerPool;
import io.moe4j.tensor.DType;
import io.moe4j.tensor.quant.Bf16;
import io.moe4j.tensor.quant.Fp16;
import io.moe4j.tensor.quant.Q8_0;
import io.moe4j.tensor.quant.Q8_K;
import io.moe4j.tensor.quant.Quant;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorSpecies;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

/**
 * The quantized matmul at three levels: scalar against a float64 reference (exact where all scales are powers of
 * two), SIMD against scalar over awkward sizes, strides and widths, and determinism over thread counts and N.
 */
class QuantMatmulTest {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final Arena ARENA = Arena.ofShared();
    private static final WorkerPool POOL2 = new WorkerPool(2);
    private static final ScalarQuantMatmul SCALAR = new ScalarQuantMatmul();

    @AfterAll
    static void close() {
        POOL2.close();
        ARENA.close();
    }



    // ------------------------------------------------------------------ float64 reference

    /** Y[i][r] in float64 from dequantized weights and activations rounded as the kernels round them. */
    static double[][] reference(QuantCase c, boolean absolute) {
        double[][] y = new double[c.n()][c.rows()];
        float[] w = new float[c.k()];
        float[] x = new float[c.k()];
        short[] xq = new short[32];
        for (int i = 0; i < c.n(); i++) {
            MemorySegment.copy(c.x(), F32, 4 * (c.xOff() + (long) i * c.ldx()), x, 0, c.k());
            double[] xs = new double[c.k()];
            for (int j = 0; j < c.k(); j++) {
                xs[j] = switch (c.t()) {
                    case F32 -> x[j];
                    case F16 -> Fp16.round(x[j]);
                    case BF16 -> Bf16.round(x[j]);
                    case Q8_0, Q4_0, Q4_K, Q6_K, Q8_0_R16, Q4_0_R16 -> 0;
                };
            }
            if (Activations.isKQuant(c.t())) {
                short[] q = new short[256], bs = new short[16];
                for (int b = 0; b < c.k() / 256; b++) {
                    float d = Q8_K.quantizeBlock(x, 256 * b, q, 0, bs, 0);
                    for (int j = 0; j < 256; j++) xs[256 * b + j] = q[j] * (double) d;
                }
            } else if (c.t().isQuantized()) {
                for (int b = 0; b < c.k() / 32; b++) {
                    float d = Fp16.decode(Q8_0.quantizeBlockActivations(x, 32 * b, xq, 0));
                    for (int j = 0; j < 32; j++) xs[32 * b + j] = xq[j] * (double) d;
                }
            }
            for (int r = 0; r < c.rows(); r++) {
                Quant.dequantize(c.t(), c.w(), c.wOff() + r * c.t().byteSize(c.k()), w, 0, c.k());
                double s = 0;
                for (int j = 0; j < c.k(); j++) s += absolute ? Math.abs(w[j] * xs[j]) : w[j] * xs[j];
                y[i][r] = s;
            }
        }
        return y;
    }

    /** Room for two float sums of {@code terms} terms (any order) to differ: relative to Σ|terms|. */
    static double tolerance(int terms, double absSum) {
        return (terms + 64) * 0x1p-23 * absSum + 1e-30;
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, mode = EnumSource.Mode.MATCH_NONE, names = ".*_R16") // row groups: RowGroupsTest
    void scalarMatchesFloat64Reference(DType t) {
        QuantCase c = QuantCase.random(t, 13, t.blockSize() == 256 ? 512 : t.isQuantized() ? 96 : 37, 3, 11, true);
        MemorySegment y = c.run(SCALAR, POOL2, false);
        double[][] ref = reference(c, false), abs = reference(c, true);
        for (int i = 0; i < c.n(); i++) {
            for (int r = 0; r < c.rows(); r++) {
                assertThat((double) c.y(y, i, r)).isCloseTo(ref[i][r], within(tolerance(c.k(), abs[i][r])));
            }
        }
    }

    /** With every block scale 1.0, all sums are small integers: the integer path must be exact. */
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"Q8_0", "Q4_0"})
    void integerPathIsExactWithUnitScales(DType t) {
        int rows = 9, k = 128, n = 5;
        SplittableRandom rnd = new SplittableRandom(5);
        int wMax = t == DType.Q8_0 ? 127 : 8;
        MemorySegment w = ARENA.allocate(t.byteSize((long) rows * k));
        float[] row = new float[k];
        for (int r = 0; r < rows; r++) {
            for (int j = 0; j < k; j++) row[j] = rnd.nextInt(-wMax + 1, wMax);
            for (int b = 0; b < k / 32; b++) row[32 * b + rnd.nextInt(32)] = t == DType.Q8_0 ? 127 : -8; // d = 1
            Quant.quantize(t, row, 0, w, r * t.byteSize(k), k);
        }
        MemorySegment x = ARENA.allocate(4L * n * k);
        for (int i = 0; i < n * k; i++) x.setAtIndex(F32, i, rnd.nextInt(-126, 127));
        for (int i = 0; i < n * k; i += 32) x.setAtIndex(F32, i + rnd.nextInt(32), -127); // d_x = 1
        QuantCase c = new QuantCase(t, rows, k, n, w, 0, x, 0, k, 0, rows);
        double[][] ref = reference(c, false);
        for (QuantMatmul q : List.of(SCALAR, new SimdQuantMatmul())) {
            MemorySegment y = c.run(q, POOL2, false);
            for (int i = 0; i < n; i++) {
                for (int r = 0; r < rows; r++) assertThat(c.y(y, i, r)).as(q.name()).isEqualTo((float) ref[i][r]);
            }
        }
    }

    // ------------------------------------------------------------------ SIMD vs scalar

    /**
     * Q4_0 blocks at the nibble extremes (all 0 = −8, all 15 = +7, alternating) against activations at ±127, with
     * unit scales: the SIMD kernel's packed multiply (offset folded into a per-lane correction, lower halves
     * rounded out) must give the exact integers. Then the same blocks under extreme fp16 scales (max, subnormal).
     */
    @Test
    void q4ExtremeNibblesAndScales() {
        int rows = 8, k = 128, n = 5, nb = k / 32;
        byte[] patterns = {0x00, (byte) 0xFF, (byte) 0xF0, 0x0F, (byte) 0x8F};
        MemorySegment w = ARENA.allocate(18L * rows * nb);
        MemorySegment x = ARENA.allocate(4L * n * k);
        float[] xs = {127, -127, 127, -127, 1};
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < k; j++) x.setAtIndex(F32, (long) i * k + j, i < 2 ? xs[i] : (j % 3 == 0 ? -127 : xs[i]) * ((j & 4) == 0 ? 1 : -1));
            x.setAtIndex(F32, (long) i * k, -127); // every block's d_x = 1
            for (int b = 0; b < nb; b++) x.setAtIndex(F32, (long) i * k + 32L * b, -127);
        }
        for (short scale : new short[] {Float.floatToFloat16(1f), (short) 0x7BFF, (short) 0x0001, Float.floatToFloat16(-3f)}) {
            for (int r = 0; r < rows; r++) {
                for (int b = 0; b < nb; b++) {
                    long o = 18L * (r * nb + b);
                    w.set(ValueLayout.JAVA_SHORT_UNALIGNED, o, scale);
                    for (int j = 0; j < 16; j++) w.set(ValueLayout.JAVA_BYTE, o + 2 + j, patterns[(r + b + (j & 1)) % patterns.length]);
                }
            }
            QuantCase c = new QuantCase(DType.Q4_0, rows, k, n, w, 0, x, 0, k, 0, rows);
            MemorySegment expected = c.run(SCALAR, POOL2, false);
            double[][] ref = reference(c, false), abs = reference(c, true);
            for (VectorSpecies<Float> sp : species()) {
                SimdQuantMatmul simd = new SimdQuantMatmul(sp);
                MemorySegment y = c.run(simd, POOL2, false);
                for (int i = 0; i < n; i++) {
                    for (int r = 0; r < rows; r++) {
                        String what = simd.name() + " scale 0x" + Integer.toHexString(scale & 0xffff) + " i=" + i + " r=" + r;
                        if (scale == Float.floatToFloat16(1f)) {
                            assertThat(c.y(y, i, r)).as(what).isEqualTo((float) ref[i][r]);
                        } else {
                            assertThat(c.y(y, i, r)).as(what)
                                    .isCloseTo(c.y(expected, i, r), within((float) tolerance(nb, abs[i][r])));
                        }
                    }
                }
            }
        }
    }

    static List<VectorSpecies<Float>> species() {
        List<VectorSpecies<Float>> s = new ArrayList<>(List.of(FloatVector.SPECIES_PREFERRED));
        if (FloatVector.SPECIES_PREFERRED.vectorBitSize() >= 512) s.add(FloatVector.SPECIES_256);
        s.add(FloatVector.SPECIES_128);
        return s;
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, mode = EnumSource.Mode.MATCH_NONE, names = ".*_R16") // row groups: RowGroupsTest
    void simdMatchesScalarOnAwkwardShapes(DType t) {
        int[][] shapes = t.blockSize() == 256
                ? new int[][] {{1, 256, 1}, {7, 512, 3}, {13, 768, 8}, {33, 4352, 3}, {255, 256, 8}, {255, 768, 1}}
                : t.isQuantized()
                ? new int[][] {{1, 32, 1}, {7, 64, 3}, {13, 96, 8}, {31, 4128, 1}, {33, 4128, 3}, {255, 32, 8}, {4098, 32, 3}}
                : new int[][] {{1, 1, 1}, {7, 33, 3}, {13, 96, 8}, {31, 4129, 1}, {33, 250, 3}, {255, 17, 8}, {4098, 32, 3}};
        long seed = 100;
        for (int[] s : shapes) {
            for (boolean odd : new boolean[] {false, true}) {
                QuantCase c = QuantCase.random(t, s[0], s[1], s[2], seed++, odd);
                boolean accumulate = odd;
                MemorySegment expected = c.run(SCALAR, POOL2, accumulate);
                double[][] abs = reference(c, true);
                int terms = t.isQuantized() ? c.k() / 32 : c.k();
                // K-quants: Q4_K's scale and min terms are summed separately and can cancel, so their partial
                // sums may exceed Σ|w·x| by the min term (bounded by a few times it for these weights)
                double slack = t == DType.Q4_K ? 8 : 1;
                for (VectorSpecies<Float> sp : species()) {
                    SimdQuantMatmul simd = new SimdQuantMatmul(sp);
                    MemorySegment y = c.run(simd, POOL2, accumulate);
                    for (int i = 0; i < c.n(); i++) {
                        for (int r = 0; r < c.rows(); r++) {
                            assertThat(c.y(y, i, r)).as("%s %s rows=%d k=%d n=%d i=%d r=%d", simd.name(), t, c.rows(), c.k(), c.n(), i, r)
                                    .isCloseTo(c.y(expected, i, r), within((float) (slack * tolerance(terms, abs[i][r]))));
                        }
                    }
                }
            }
        }
    }

    /**
     * Every activation-row count the tile kernels split differently (N = 1..9: one-row path, two- and four-row
     * tiles, odd rows left over), odd block counts, offsets and strides, accumulate or not, at every width: SIMD
     * against scalar, and N = 1 bits against the same row inside the batch.
     */
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"Q8_0", "Q4_0"})
    void simdMatchesScalarForEveryBatchSize(DType t) {
        for (int n = 1; n <= 9; n++) {
            QuantCase c = QuantCase.random(t, 19, 160, n, 300 + n, n % 2 == 1);
            boolean accumulate = n % 3 == 0;
            MemorySegment expected = c.run(SCALAR, POOL2, accumulate);
            double[][] abs = reference(c, true);
            for (VectorSpecies<Float> sp : species()) {
                SimdQuantMatmul simd = new SimdQuantMatmul(sp);
                MemorySegment y = c.run(simd, POOL2, accumulate);
                for (int i = 0; i < n; i++) {
                    for (int r = 0; r < c.rows(); r++) {
                        assertThat(c.y(y, i, r)).as("%s %s n=%d i=%d r=%d", simd.name(), t, n, i, r)
                                .isCloseTo(c.y(expected, i, r), within((float) tolerance(c.k() / 32, abs[i][r])));
                    }
                }
                if (accumulate) continue;
                MemorySegment one = ARENA.allocate(4L * c.rows());
                simd.matvec(POOL2, t, c.w(), c.wOff(), c.rows(), c.k(), c.x(), c.xOff() + (long) (n - 1) * c.ldx(), one, 0);
                for (int r = 0; r < c.rows(); r++) {
                    assertThat(one.getAtIndex(F32, r)).as("%s n=%d last row alone, r=%d", simd.name(), n, r).isEqualTo(c.y(y, n - 1, r));
                }
            }
        }
    }

    /**
     * K-quant super-blocks with unit fp16 factors, small sub-block scales / mins and activations whose Q8_K scale
     * is exactly 1 (largest magnitude −127 → iscale = 1): every partial sum is an integer below 2^24, so scalar and
     * SIMD (all widths) must both give the exact result, which the float64 reference computes from the decoder.
     */
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"Q4_K", "Q6_K"})
    void kQuantIntegerPathIsExact(DType t) {
        int rows = 11, k = 512, n = 5, nb = k / 256, bpb = t.bytesPerBlock();
        SplittableRandom rnd = new SplittableRandom(31);
        MemorySegment w = ARENA.allocate((long) rows * nb * bpb);
        for (long o = 0; o < w.byteSize(); o++) w.set(ValueLayout.JAVA_BYTE, o, (byte) rnd.nextInt());
        short one = Float.floatToFloat16(1f);
        for (int blk = 0; blk < rows * nb; blk++) {
            long o = (long) blk * bpb;
            if (t == DType.Q4_K) {
                w.set(ValueLayout.JAVA_SHORT_UNALIGNED, o, one);
                w.set(ValueLayout.JAVA_SHORT_UNALIGNED, o + 2, one);
                for (int j = 0; j < 12; j++) w.set(ValueLayout.JAVA_BYTE, o + 4 + j, (byte) (rnd.nextInt(4) | rnd.nextInt(4) << 4)); // scales, mins ≤ 3
            } else {
                w.set(ValueLayout.JAVA_SHORT_UNALIGNED, o + 208, one);
                for (int j = 0; j < 16; j++) w.set(ValueLayout.JAVA_BYTE, o + 192 + j, (byte) rnd.nextInt(-4, 5));
            }
        }
        MemorySegment x = ARENA.allocate(4L * n * k);
        for (int i = 0; i < n * k; i++) x.setAtIndex(F32, i, rnd.nextInt(-100, 101));
        for (int i = 0; i < n * k; i += 256) x.setAtIndex(F32, i + rnd.nextInt(256), -127);
        QuantCase c = new QuantCase(t, rows, k, n, w, 0, x, 0, k, 0, rows);
        double[][] ref = reference(c, false);
        List<QuantMatmul> kernels = new ArrayList<>(List.of(SCALAR));
        for (VectorSpecies<Float> sp : species()) kernels.add(new SimdQuantMatmul(sp));
        for (QuantMatmul q : kernels) {
            MemorySegment y = c.run(q, POOL2, false);
            for (int i = 0; i < n; i++) {
                for (int r = 0; r < rows; r++) assertThat(c.y(y, i, r)).as("%s i=%d r=%d", q.name(), i, r).isEqualTo((float) ref[i][r]);
            }
        }
    }

    @Test
    void kQuantRejectsPartialSuperBlocks() {
        MemorySegment w = ARENA.allocate(210 * 4), x = ARENA.allocate(4 * 1024), y = ARENA.allocate(4 * 4);
        for (QuantMatmul q : List.of(SCALAR, new SimdQuantMatmul())) {
            for (DType t : new DType[] {DType.Q4_K, DType.Q6_K}) {
                assertThatThrownBy(() -> q.matmul(POOL2, t, w, 0, 1, 288, x, 0, 288, 1, y, 0, 1, false))
                        .isInstanceOf(IllegalArgumentException.class)
                        .hasMessageContaining(t + " weights store whole blocks of 256 values; K = 288 is not a multiple of 256");
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, mode = EnumSource.Mode.MATCH_NONE, names = ".*_R16") // row groups: RowGroupsTest
    void resultsDoNotDependOnThreadsOrBatchSize(DType t) {
        for (VectorSpecies<Float> sp : species()) resultsDoNotDependOnThreadsOrBatchSize(t, new SimdQuantMatmul(sp));
    }

    private void resultsDoNotDependOnThreadsOrBatchSize(DType t, SimdQuantMatmul simd) {
        QuantCase c = QuantCase.random(t, 203, t.blockSize() == 256 ? 512 : 96, 6, 77, true);
        MemorySegment y1;
        try (WorkerPool p1 = new WorkerPool(1); WorkerPool p3 = new WorkerPool(3)) {
            y1 = c.run(simd, p1, false);
            MemorySegment y2 = c.run(simd, POOL2, false), y3 = c.run(simd, p3, false);
            assertThat(y2.mismatch(y1)).isEqualTo(-1);
            assertThat(y3.mismatch(y1)).isEqualTo(-1);
            MemorySegment s1 = c.run(SCALAR, p1, false), s3 = c.run(SCALAR, p3, false);
            assertThat(s3.mismatch(s1)).isEqualTo(-1);
        }
        // each activation row alone (N = 1) gives the same bits as inside the batch of 6 (four-row tile + two)
        for (int i = 0; i < c.n(); i++) {
            MemorySegment y = ARENA.allocate(4L * c.rows());
            simd.matvec(POOL2, t, c.w(), c.wOff(), c.rows(), c.k(), c.x(), c.xOff() + (long) i * c.ldx(), y, 0);
            for (int r = 0; r < c.rows(); r++) assertThat(y.getAtIndex(F32, r)).as("%s i=%d r=%d", simd.name(), i, r).isEqualTo(c.y(y1, i, r));
        }
    }

    /**
     * matmulPair (gate and up of an expert: one conversion of X, one parallel pass) gives the bits of two matmul
     * calls, for every format, N = 1..9 (tiles of 4 and 2 and single rows; beyond the fused limit too), odd offsets
     * and strides, accumulate or not, 1 and 3 threads.
     */
    @ParameterizedTest
    @EnumSource(value = DType.class, mode = EnumSource.Mode.MATCH_NONE, names = ".*_R16") // row groups: RowGroupsTest
    void pairEqualsTwoMatmuls(DType t) {
        int k = t.blockSize() == 256 ? 512 : t.isQuantized() ? 96 : 37, rows = 37;
        try (WorkerPool p3 = new WorkerPool(3)) {
            for (int n : new int[] {1, 2, 3, 4, 5, 8, 9, SimdQuantMatmul.PAIR_MAX_N + 1}) {
                QuantCase c1 = QuantCase.random(t, rows, k, n, 500 + n, true), c2 = QuantCase.random(t, rows, k, n, 900 + n, true);
                for (QuantMatmul q : List.of(new SimdQuantMatmul(), SCALAR)) {
                    for (WorkerPool pool : List.of(POOL2, p3)) {
                        boolean acc = n % 2 == 1;
                        MemorySegment e1 = c1.run(q, pool, acc);
                        QuantCase c2x = new QuantCase(t, rows, k, n, c2.w(), c2.wOff(), c1.x(), c1.xOff(), c1.ldx(), c1.yOff(), c1.ldy());
                        MemorySegment e2 = c2x.run(q, pool, acc);
                        MemorySegment y1 = c1.newY(acc ? 0.75f : Float.NaN), y2 = c1.newY(acc ? 0.75f : Float.NaN);
                        q.matmulPair(pool, t, c1.w(), c1.wOff(), c2.w(), c2.wOff(), rows, k, c1.x(), c1.xOff(), c1.ldx(), n,
                                y1, c1.yOff(), y2, c1.yOff(), c1.ldy(), acc);
                        assertThat(y1.mismatch(e1)).as("%s %s n=%d gate", q.name(), t, n).isEqualTo(-1);
                        assertThat(y2.mismatch(e2)).as("%s %s n=%d up", q.name(), t, n).isEqualTo(-1);
                    }
                }
            }
        }
    }

    /**
     * The SIMD F16 decode of all 65536 halves, at every width: the fast decode (times 2^-112) exact for every
     * finite half, the fixed-up decode bit-identical to {@link Float#float16ToFloat} for infinity and NaN too.
     */
    @Test
    void halfToFloatMatchesJavaForAllBitPatterns() {
        MemorySegment h = ARENA.allocate(2L * 65536);
        for (int i = 0; i < 65536; i++) h.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, (short) i);
        for (VectorSpecies<Float> sp : species()) {
            SimdDots dots = SimdDots.forBits(sp.vectorBitSize());
            int lanes = dots.pairLanes();
            float[] lo = new float[lanes], hi = new float[lanes], loFix = new float[lanes], hiFix = new float[lanes];
            for (int i = 0; i < 65536; i += 2 * lanes) {
                IntVector v = IntVector.fromMemorySegment(dots.hi(), h, 2L * i, ByteOrder.LITTLE_ENDIAN);
                dots.f16Lo(v).intoArray(lo, 0);
                dots.f16Hi(v).intoArray(hi, 0);
                dots.f16Fix(dots.f16Lo(v)).intoArray(loFix, 0);
                dots.f16Fix(dots.f16Hi(v)).intoArray(hiFix, 0);
                for (int l = 0; l < lanes; l++) {
                    for (int odd = 0; odd < 2; odd++) {
                        short half = (short) (i + 2 * l + odd);
                        float expected = Float.float16ToFloat(half);
                        String what = String.format("%s half 0x%04x", dots.getClass().getSimpleName(), half & 0xffff);
                        int fixed = Float.floatToRawIntBits((odd == 0 ? loFix : hiFix)[l]);
                        int fast = Float.floatToRawIntBits((odd == 0 ? lo : hi)[l]);
                        if (Float.isFinite(expected)) {
                            int scaled = Float.floatToRawIntBits(expected * 0x1p-112f);
                            assertThat(fast).as(what).isEqualTo(scaled);
                            assertThat(fixed).as(what).isEqualTo(scaled);
                        } else {
                            assertThat(fixed).as(what).isEqualTo(Float.floatToRawIntBits(expected));
                        }
                    }
                }
            }
        }
    }

    /**
     * F16 rows with an infinite or NaN weight (in a vector group or in the scalar tail) take the exact path: the
     * results are the scalar reference's infinities and NaNs; the other rows are unaffected.
     */
    @Test
    void f16InfinityAndNaNWeights() {
        int rows = 8, k = 77, n = 2;
        QuantCase c = QuantCase.random(DType.F16, rows, k, n, 3, false);
        short[] specials = {0x7c00, (short) 0xfc00, 0x7e00, 0x7c01, (short) 0xfd00};
        int[] cols = {0, 5, 31, 63, 76};                       // group starts, odd lanes, the 13-element tail
        for (int r = 1; r < rows; r++) {
            int col = cols[r % cols.length];
            c.w().set(ValueLayout.JAVA_SHORT_UNALIGNED, c.wOff() + r * DType.F16.byteSize(k) + 2L * col, specials[r % specials.length]);
        }
        c.w().set(ValueLayout.JAVA_SHORT_UNALIGNED, c.wOff() + 7 * DType.F16.byteSize(k) + 2L * 40, (short) 0x7c00); // a NaN and an infinity in one row
        MemorySegment expected = c.run(SCALAR, POOL2, false);
        for (VectorSpecies<Float> sp : species()) {
            SimdQuantMatmul simd = new SimdQuantMatmul(sp);
            MemorySegment y = c.run(simd, POOL2, false);
            for (int i = 0; i < n; i++) {
                for (int r = 0; r < rows; r++) {
                    float e = c.y(expected, i, r), a = c.y(y, i, r);
                    String what = simd.name() + " i=" + i + " r=" + r;
                    if (r == 0) assertThat(Float.isFinite(a)).as(what).isTrue();
                    else if (Float.isNaN(e)) assertThat(a).as(what).isNaN();
                    else assertThat(a).as(what).isEqualTo(e);
                }
            }
        }
    }

    /** The pair layout: groups of 2L (L even elements, then L odd), the tail in order. */
    @Test
    void pairLayout() {
        float[] src = new float[11], dst = new float[13];
        for (int j = 0; j < 11; j++) src[j] = j;
        Activations.toPairLayout(src, dst, 2, 11, 2);
        assertThat(dst).containsExactly(0, 0, 0, 2, 1, 3, 4, 6, 5, 7, 8, 9, 10);
    }

    // ------------------------------------------------------------------ bad input

    @Test
    void rejectsBadShapesWithClearMessages() {
        MemorySegment w = ARENA.allocate(34 * 4), x = ARENA.allocate(4 * 64), y = ARENA.allocate(4 * 4);
        for (QuantMatmul q : List.of(SCALAR, new SimdQuantMatmul())) {
            assertThatThrownBy(() -> q.matmul(POOL2, DType.Q8_0, w, 0, 1, 33, x, 0, 33, 1, y, 0, 1, false))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("K = 33 is not a multiple of 32");
            assertThatThrownBy(() -> q.matmul(POOL2, DType.Q8_0, w, 0, 5, 32, x, 0, 32, 1, y, 0, 5, false))
                    .isInstanceOf(IndexOutOfBoundsException.class).hasMessageContaining("W: 5 rows");
            assertThatThrownBy(() -> q.matmul(POOL2, DType.Q4_0, w, 0, 2, 32, x, 40, 32, 1, y, 0, 2, false))
                    .isInstanceOf(IndexOutOfBoundsException.class).hasMessageContaining("X:");
            assertThatThrownBy(() -> q.matmul(POOL2, DType.F32, w, 0, 2, 16, x, 0, 16, 3, y, 0, 2, false))
                    .isInstanceOf(IndexOutOfBoundsException.class).hasMessageContaining("Y:");
            assertThatThrownBy(() -> q.matmul(POOL2, DType.F16, w, 0, 2, 16, x, 0, 8, 1, y, 0, 2, false))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("row stride 8 < columns 16");
        }
    }
}
