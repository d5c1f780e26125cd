package io.moe4j.train.optim;

import io.moe4j.nn.F32;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/** The Vector API optimizer loops against the scalar reference: same bits over awkward lengths and offsets. */
class OptimKernelsTest {
    private static final int[] LENGTHS = {0, 1, 3, 7, 8, 9, 13, 16, 17, 31, 33, 100, 1000, 4099};
    private static final OptimKernels SCALAR = OptimKernels.scalar(), SIMD = OptimKernels.simd();

    @Test
    void adamwIsBitIdenticalToScalar() {
        try (Arena arena = Arena.ofConfined()) {
            SplittableRandom rng = new SplittableRandom(3);
            for (int n : LENGTHS) {
                for (int from : new int[]{0, 5}) {
                    int len = from + n;
                    float[] w = values(rng, len), g = values(rng, len), m = values(rng, len), v = values(rng, len);
                    for (int i = 0; i < len; i++) v[i] = Math.abs(v[i]); // second moments are ≥ 0
                    if (len > 2) g[1] = 0f;
                    MemorySegment[] a = segments(arena, w, g, m, v), b = segments(arena, w, g, m, v);
                    SCALAR.adamw(a[0], a[1], a[2], a[3], from, len, n % 2 == 0 ? 1f : 0.37f, 0.999f, 0.9f, 0.1f, 0.95f, 0.05f, 0.3f, 1e-8f, 0.0137f);
                    SIMD.adamw(b[0], b[1], b[2], b[3], from, len, n % 2 == 0 ? 1f : 0.37f, 0.999f, 0.9f, 0.1f, 0.95f, 0.05f, 0.3f, 1e-8f, 0.0137f);
                    for (int t = 0; t < 4; t++) {
                        assertThat(F32.toArray(b[t], 0, len)).as("n=%d from=%d operand %d", n, from, t)
                                .isEqualTo(F32.toArray(a[t], 0, len));
                    }
                    // untouched before `from`, updated after it (so the comparison is not vacuous)
                    if (from > 0) assertThat(F32.get(b[0], from - 1)).isEqualTo(w[from - 1]);
                    float gs = n % 2 == 0 ? 1f : 0.37f;
                    if (n > 0) assertThat(F32.get(b[2], len - 1)).isEqualTo(m[len - 1] * 0.9f + g[len - 1] * gs * 0.1f);
                }
            }
        }
    }

    @Test
    void sumSquaresIsBitIdenticalToScalarAndIsTheSum() {
        try (Arena arena = Arena.ofConfined()) {
            SplittableRandom rng = new SplittableRandom(4);
            for (int n : LENGTHS) {
                for (int from : new int[]{0, 3}) {
                    float[] g = values(rng, from + n);
                    MemorySegment s = segments(arena, g)[0];
                    double ref = SCALAR.sumSquares(s, from, from + n), simd = SIMD.sumSquares(s, from, from + n);
                    assertThat(Double.doubleToRawLongBits(simd)).as("n=%d from=%d", n, from)
                            .isEqualTo(Double.doubleToRawLongBits(ref));
                    double naive = 0;
                    for (int i = from; i < from + n; i++) naive += (double) g[i] * g[i];
                    assertThat(simd).isCloseTo(naive, within(1e-12 * Math.max(1, naive)));
                }
            }
            // non-finite gradients propagate
            MemorySegment s = segments(arena, new float[]{1, 2, Float.NaN, 4, 5, 6, 7, 8, 9})[0];
            assertThat(SIMD.sumSquares(s, 0, 9)).isNaN();
        }
    }

    @Test
    void scaleIsBitIdenticalToScalar() {
        try (Arena arena = Arena.ofConfined()) {
            SplittableRandom rng = new SplittableRandom(5);
            for (int n : LENGTHS) {
                float[] g = values(rng, n + 2);
                MemorySegment a = segments(arena, g)[0], b = segments(arena, g)[0];
                SCALAR.scale(a, 1, n + 1, 0.3f);
                SIMD.scale(b, 1, n + 1, 0.3f);
                float[] got = F32.toArray(b, 0, n + 2);
                assertThat(got).isEqualTo(F32.toArray(a, 0, n + 2));
                assertThat(got[0]).isEqualTo(g[0]);
                assertThat(got[n + 1]).isEqualTo(g[n + 1]);
                if (n > 0) assertThat(got[n]).isEqualTo(g[n] * 0.3f);
            }
        }
    }

    /** The whole optimizer with each kernel: several parameters (chunks, ragged tails), decay and groups, 3 steps. */
    @Test
    void adamwStepsAndClippingAreBitIdenticalAcrossKernels() {
        assertThat(run(SIMD)).isEqualTo(run(SCALAR));
    }

    /** Clipping inside the AdamW pass gives the same bits as clipping the gradients first. */
    @Test
    void clipInsideStepEqualsClipThenStep() {
        assertThat(run(OptimKernels.get(), true)).isEqualTo(run(OptimKernels.get(), false));
    }

    private static float[] run(OptimKernels kernels) { return run(kernels, false); }

    private static float[] run(OptimKernels kernels, boolean clipInStep) {
        try (Arena arena = Arena.ofShared(); WorkerPool pool = new WorkerPool(2)) {
            SplittableRandom rng = new SplittableRandom(9);
            List<Param> ps = List.of(new Param(arena, "layers.0.moe.experts.up", 3, 40_001).initNormal(rng, 0.5),
                    new Param(arena, "layers.0.attn_norm", 13).initNormal(rng, 0.5),
                    new Param(arena, "head", 7, 9).initNormal(rng, 0.5));
            AdamW opt = new AdamW(ps, new AdamWConfig(0.9, 0.95, 1e-6, 0.1,
                    List.of(new AdamWConfig.LrRule("layers.*.experts.*", 0.25))), arena, pool, kernels);
            for (int s = 0; s < 3; s++) {
                for (Param p : ps) {
                    for (long i = 0; i < p.numel(); i++) F32.set(p.gradData(), i, (float) Param.gaussian(rng));
                }
                if (clipInStep) {
                    float f = GradClip.factor(1.0, GradClip.globalNorm(ps, pool));
                    assertThat(f).isLessThan(1f); // the gradients are clipped: the test compares something
                    opt.step(1e-3 * (s + 1), f);
                } else {
                    GradClip.clip(ps, 1.0, pool);
                    opt.step(1e-3 * (s + 1));
                }
            }
            List<Float> all = new ArrayList<>();
            for (int i = 0; i < ps.size(); i++) {
                for (float x : ps.get(i).toArray()) all.add(x);
                for (float x : F32.toArray(opt.moment2(i), 0, (int) ps.get(i).numel())) all.add(x);
            }
            float[] out = new float[all.size()];
            for (int i = 0; i < out.length; i++) out[i] = all.get(i);
            return out;
        }
    }

    private static float[] values(SplittableRandom rng, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) (rng.nextGaussian() * Math.pow(10, rng.nextInt(-6, 3)));
        return v;
    }

    private static MemorySegment[] segments(Arena arena, float[]... arrays) {
        MemorySegment[] s = new MemorySegment[arrays.length];
        for (int i = 0; i < arrays.length; i++) {
            s[i] = F32.alloc(arena, arrays[i].length);
            F32.copyIn(arrays[i], s[i], 0);
        }
        return s;
    }
}
