package io.moe4j.kernel.row;

import io.moe4j.kernel.Lanes;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

import static io.moe4j.kernel.row.ScalarRowOps.GELU_K0;
import static io.moe4j.kernel.row.ScalarRowOps.GELU_K1;

/**
 * The Vector API loops behind {@link SimdRowOps}, without argument checks (the caller has validated).
 *
 * <p>Why an abstract class with one tiny subclass per width: C2 only compiles Vector API calls to vector
 * instructions when the species is a compile-time constant. A species read from an instance field is not, and
 * measured 10× slower (dot, n = 4096: 2.9 µs vs 0.28 µs). Here every kernel starts with
 * {@code species()}, which each subclass answers with its own {@code static final}; a JVM that uses one width
 * (production) sees a monomorphic call, inlines it and gets the constant. A JVM that mixes widths (the tests) stays
 * correct but runs the slow path.
 *
 * <p>Loop shape (STYLE.md habit 7): vector body — unrolled with 4 accumulators where the loop reduces — then the
 * scalar tail through {@link ScalarRowOps}' range methods. Results match the scalar reference exactly for
 * element-wise arithmetic (same operations in the same order, {@code fma} where the reference uses
 * {@link Math#fma}); reductions differ by their summation order; exp is {@link #exp}, a polynomial that gives the
 * same bits compiled or interpreted (the Vector API's EXP does not), and GELU uses the identity
 * 0.5·(1 + tanh u) = σ(2u) because exp measured ~1.7× cheaper than TANH.
 *
 * <p>Non-goals: masked tails (scalar tails are as fast at these lengths and keep one code path on AVX2, where
 * masked loads are emulated).
 */
abstract class VectorRowKernels {
    private static final ByteOrder BO = ByteOrder.nativeOrder();

    abstract VectorSpecies<Float> species();

    static VectorRowKernels forSpecies(VectorSpecies<Float> species) {
        if (species == null || species.elementType() != float.class) {
            throw new IllegalArgumentException("need a float species, got " + species);
        }
        // Through factory methods, not `new`: returning a `new V128()` as a VectorRowKernels makes the verifier
        // load V128 (to check the subtype) even when only V512 is ever built. With every subclass loaded, C2 cannot
        // bind species() by class hierarchy analysis, and when a kernel is compiled without a receiver profile
        // (-XX:Tier3DelayOn skips the profiling tier) every Vector API call in it stays generic: no intrinsics,
        // all vectors boxed (JFR: swigluBackward allocating ~100 MB/s, PrintInlining: "species: no static
        // binding"). With one subclass loaded, species() folds to a constant in every compile.
        return switch (species.vectorBitSize()) {
            case 128 -> V128.create();
            case 256 -> V256.create();
            case 512 -> V512.create();
            default -> AnyWidth.create(species); // e.g. ARM SVE widths: correct, not tuned
        };
    }

    private static final class V128 extends VectorRowKernels {
        private static final VectorSpecies<Float> S = FloatVector.SPECIES_128;
        static VectorRowKernels create() { return new V128(); }
        @Override VectorSpecies<Float> species() { return S; }
    }

    private static final class V256 extends VectorRowKernels {
        private static final VectorSpecies<Float> S = FloatVector.SPECIES_256;
        static VectorRowKernels create() { return new V256(); }
        @Override VectorSpecies<Float> species() { return S; }
    }

    private static final class V512 extends VectorRowKernels {
        private static final VectorSpecies<Float> S = FloatVector.SPECIES_512;
        static VectorRowKernels create() { return new V512(); }
        @Override VectorSpecies<Float> species() { return S; }
    }

    private static final class AnyWidth extends VectorRowKernels {
        private final VectorSpecies<Float> s;
        AnyWidth(VectorSpecies<Float> s) { this.s = s; }
        static VectorRowKernels create(VectorSpecies<Float> s) { return new AnyWidth(s); }
        @Override VectorSpecies<Float> species() { return s; }
    }

    private static FloatVector load(VectorSpecies<Float> s, MemorySegment m, long off, int i) {
        return FloatVector.fromMemorySegment(s, m, (off + i) * Float.BYTES, BO);
    }

    private static void store(FloatVector v, MemorySegment m, long off, int i) {
        v.intoMemorySegment(m, (off + i) * Float.BYTES, BO);
    }

    private static FloatVector sigmoid(FloatVector x) {
        return x.broadcast(1f).div(exp(x.neg()).add(1f));
    }

    private static final float EXP_HI = 88.0f, EXP_LO = -87.33654f;
    private static final float LOG2E = 1.44269504088896341f, LN2_HI = 0.693359375f, LN2_LO = -2.12194440e-4f;
    private static final float ROUND = 12582912f;   // 1.5·2²³: x + ROUND − ROUND rounds x to an integer
    private static final int ROUND_BITS = 0x4B400000;

    /**
     * e^x for x in [−87.3, 88] (0 below, e^88 ≈ 1.7e38 above):
     * n = round(x·log₂e), r = x − n·ln2 (two-part ln2), e^r by Cephes' degree-6 polynomial (≈ 1 ulp), times 2ⁿ
     * built in the exponent bits.
     *
     * <p>Why not {@code lanewise(VectorOperators.EXP)}: compiled it is SVML, interpreted it is Math.exp per lane, and
     * the two differ in the last bit — so a run's results depended on when the JIT compiled its caller, breaking
     * bit-identical reruns and resumes of training. This uses only mul/add/fma and integer bit operations, which
     * give the same bits in every execution mode.
     */
    static FloatVector exp(FloatVector x) {
        VectorMask<Float> under = x.lt(EXP_LO);   // e^x below the smallest normal: exactly 0 (masked logits = −∞)
        x = x.max(EXP_LO).min(EXP_HI);
        FloatVector t = x.mul(LOG2E).add(ROUND);
        FloatVector n = t.sub(ROUND);
        FloatVector r = n.fma(n.broadcast(-LN2_HI), x);
        r = n.fma(n.broadcast(-LN2_LO), r);
        FloatVector p = r.broadcast(1.9875691500e-4f).fma(r, r.broadcast(1.3981999507e-3f));
        p = p.fma(r, r.broadcast(8.3334519073e-3f));
        p = p.fma(r, r.broadcast(4.1665795894e-2f));
        p = p.fma(r, r.broadcast(1.6666665459e-1f));
        p = p.fma(r, r.broadcast(5.0000001201e-1f));
        FloatVector y = p.fma(r.mul(r), r).add(1f);
        jdk.incubator.vector.IntVector bits = (jdk.incubator.vector.IntVector) t.reinterpretAsInts();
        jdk.incubator.vector.IntVector scale = bits.sub(ROUND_BITS - 127).lanewise(VectorOperators.LSHL, 23);
        return y.mul((FloatVector) scale.reinterpretAsFloats()).blend(0f, under);
    }

    /** 0.5·(1 + tanh u) for the tanh-GELU u = √(2/π)·(x + 0.044715·x³), computed as σ(2u). */
    private static FloatVector geluGate(FloatVector x) {
        FloatVector u2 = x.mul(x).mul(x).mul(GELU_K1).add(x).mul(2f * GELU_K0);
        return sigmoid(u2);
    }

    /** d gelu / dx = σ + 2·x·σ·(1 − σ)·√(2/π)·(1 + 3·0.044715·x²) with σ = σ(2u). */
    private static FloatVector geluGrad(FloatVector x) {
        return geluGrad(x, geluGate(x));
    }

    /** {@link #geluGrad(FloatVector)} given sg = geluGate(x), when the caller needs the gate too. */
    private static FloatVector geluGrad(FloatVector x, FloatVector sg) {
        FloatVector du = x.mul(x).mul(3f * GELU_K1).add(1f).mul(2f * GELU_K0);
        return x.mul(sg).mul(sg.neg().add(1f)).mul(du).add(sg);
    }

    private static FloatVector siluGrad(FloatVector x) {
        FloatVector sg = sigmoid(x);
        return sg.mul(x.mul(sg.neg().add(1f)).add(1f));
    }

    // ---------------------------------------------------------------- BLAS-1

    void axpy(int n, float a, MemorySegment x, long xOff, MemorySegment y, long yOff) {
        VectorSpecies<Float> s = species();
        FloatVector va = FloatVector.broadcast(s, a);
        int i = 0;
        for (int up = s.loopBound(n); i < up; i += s.length()) {
            store(load(s, x, xOff, i).fma(va, load(s, y, yOff, i)), y, yOff, i);
        }
        ScalarRowOps.axpyRange(i, n, a, x, xOff, y, yOff);
    }

    float dot(int n, MemorySegment x, long xOff, MemorySegment y, long yOff) {
        VectorSpecies<Float> s = species();
        int len = s.length(), i = 0;
        FloatVector a0 = FloatVector.zero(s), a1 = a0, a2 = a0, a3 = a0;
        for (int up = n - 4 * len; i <= up; i += 4 * len) {
            a0 = load(s, x, xOff, i).fma(load(s, y, yOff, i), a0);
            a1 = load(s, x, xOff, i + len).fma(load(s, y, yOff, i + len), a1);
            a2 = load(s, x, xOff, i + 2 * len).fma(load(s, y, yOff, i + 2 * len), a2);
            a3 = load(s, x, xOff, i + 3 * len).fma(load(s, y, yOff, i + 3 * len), a3);
        }
        for (int up = s.loopBound(n); i < up; i += len) a0 = load(s, x, xOff, i).fma(load(s, y, yOff, i), a0);
        return Lanes.sum(a0.add(a1).add(a2.add(a3))) + ScalarRowOps.dotRange(i, n, x, xOff, y, yOff);
    }

    void scale(int n, float a, MemorySegment x, long xOff) {
        VectorSpecies<Float> s = species();
        int i = 0;
        for (int up = s.loopBound(n); i < up; i += s.length()) store(load(s, x, xOff, i).mul(a), x, xOff, i);
        ScalarRowOps.scaleRange(i, n, a, x, xOff);
    }

    void add(int n, MemorySegment x, long xOff, MemorySegment y, long yOff, MemorySegment out, long outOff) {
        VectorSpecies<Float> s = species();
        int i = 0;
        for (int up = s.loopBound(n); i < up; i += s.length()) {
            store(load(s, x, xOff, i).add(load(s, y, yOff, i)), out, outOff, i);
        }
        ScalarRowOps.addRange(i, n, x, xOff, y, yOff, out, outOff);
    }

    /** out = a·x (a scaled copy; out may alias x). */
    void scaleInto(int n, float a, MemorySegment x, long xOff, MemorySegment out, long outOff) {
        VectorSpecies<Float> s = species();
        int i = 0;
        for (int up = s.loopBound(n); i < up; i += s.length()) store(load(s, x, xOff, i).mul(a), out, outOff, i);
        for (; i < n; i++) ScalarRowOps.set(out, outOff, i, a * ScalarRowOps.get(x, xOff, i));
    }

    // ---------------------------------------------------------------- normalisation

    /** F32 partial sums (4·lanes of them), unlike the reference's double: within 1e-6 relative at any n tested. */
    float rmsnorm(int n, MemorySegment x, long xOff, MemorySegment w, long wOff, float eps, MemorySegment out, long outOff) {
        VectorSpecies<Float> s = species();
        int len = s.length(), i = 0;
        FloatVector a0 = FloatVector.zero(s), a1 = a0, a2 = a0, a3 = a0;
        for (int up = n - 4 * len; i <= up; i += 4 * len) {
            FloatVector v0 = load(s, x, xOff, i), v1 = load(s, x, xOff, i + len);
            FloatVector v2 = load(s, x, xOff, i + 2 * len), v3 = load(s, x, xOff, i + 3 * len);
            a0 = v0.fma(v0, a0);
            a1 = v1.fma(v1, a1);
            a2 = v2.fma(v2, a2);
            a3 = v3.fma(v3, a3);
        }
        for (int up = s.loopBound(n); i < up; i += len) {
            FloatVector v = load(s, x, xOff, i);
            a0 = v.fma(v, a0);
        }
        double ss = Lanes.sum(a0.add(a1).add(a2.add(a3))) + ScalarRowOps.sumSquaresRange(i, n, x, xOff);
        float rstd = ScalarRowOps.rstd(ss, n, eps);
        i = 0;
        for (int up = s.loopBound(n); i < up; i += len) {
            store(load(s, x, xOff, i).mul(rstd).mul(load(s, w, wOff, i)), out, outOff, i);
        }
        ScalarRowOps.rmsnormApplyRange(i, n, x, xOff, w, wOff, rstd, out, outOff);
        return rstd;
    }

    void rmsnormBackward(int n, MemorySegment dout, long doutOff, MemorySegment x, long xOff,
                         MemorySegment w, long wOff, float rstd, MemorySegment dx, long dxOff, MemorySegment dw, long dwOff) {
        VectorSpecies<Float> s = species();
        int len = s.length(), i = 0;
        FloatVector a0 = FloatVector.zero(s), a1 = a0;
        for (int up = n - 2 * len; i <= up; i += 2 * len) {
            a0 = load(s, x, xOff, i).mul(load(s, w, wOff, i)).fma(load(s, dout, doutOff, i), a0);
            a1 = load(s, x, xOff, i + len).mul(load(s, w, wOff, i + len)).fma(load(s, dout, doutOff, i + len), a1);
        }
        for (int up = s.loopBound(n); i < up; i += len) {
            a0 = load(s, x, xOff, i).mul(load(s, w, wOff, i)).fma(load(s, dout, doutOff, i), a0);
        }
        double xwd = Lanes.sum(a0.add(a1)) + ScalarRowOps.sumXwdRange(i, n, dout, doutOff, x, xOff, w, wOff);
        float k = ScalarRowOps.rmsnormBackwardK(xwd, n, rstd);
        i = 0;
        for (int up = s.loopBound(n); i < up; i += len) {
            FloatVector d = load(s, dout, doutOff, i), xv = load(s, x, xOff, i), wv = load(s, w, wOff, i);
            store(wv.mul(d).sub(xv.mul(k)).mul(rstd).add(load(s, dx, dxOff, i)), dx, dxOff, i);
            store(d.mul(xv).mul(rstd).add(load(s, dw, dwOff, i)), dw, dwOff, i);
        }
        ScalarRowOps.rmsnormBackwardRange(i, n, dout, doutOff, x, xOff, w, wOff, rstd, k, dx, dxOff, dw, dwOff);
    }

    // ---------------------------------------------------------------- softmax

    void softmax(int n, MemorySegment x, long xOff) {
        VectorSpecies<Float> s = species();
        int len = s.length(), i = 0;
        FloatVector m = FloatVector.broadcast(s, Float.NEGATIVE_INFINITY);
        for (int up = s.loopBound(n); i < up; i += len) m = m.max(load(s, x, xOff, i));
        float max = ScalarRowOps.maxRange(i, n, x, xOff, m.reduceLanes(VectorOperators.MAX));
        FloatVector acc = FloatVector.zero(s);
        i = 0;
        for (int up = s.loopBound(n); i < up; i += len) {
            FloatVector e = exp(load(s, x, xOff, i).sub(max));
            store(e, x, xOff, i);
            acc = acc.add(e);
        }
        float sum = Lanes.sum(acc) + ScalarRowOps.expShiftRange(i, n, x, xOff, max);
        ScalarRowOps.softmaxCheckSum(sum, max);
        scale(n, 1f / sum, x, xOff);
    }

    void softmaxBackward(int n, MemorySegment y, long yOff, MemorySegment dy, long dyOff, MemorySegment dx, long dxOff) {
        VectorSpecies<Float> s = species();
        float dyy = dot(n, dy, dyOff, y, yOff);
        int i = 0;
        for (int up = s.loopBound(n); i < up; i += s.length()) {
            store(load(s, y, yOff, i).mul(load(s, dy, dyOff, i).sub(dyy)), dx, dxOff, i);
        }
        ScalarRowOps.softmaxBackwardRange(i, n, y, yOff, dy, dyOff, dyy, dx, dxOff);
    }

    // ---------------------------------------------------------------- activations

    void silu(int n, MemorySegment x, long xOff, MemorySegment out, long outOff) {
        VectorSpecies<Float> s = species();
        int i = 0;
        for (int up = s.loopBound(n); i < up; i += s.length()) {
            FloatVector v = load(s, x, xOff, i);
            store(v.mul(sigmoid(v)), out, outOff, i);
        }
        ScalarRowOps.siluRange(i, n, x, xOff, out, outOff);
    }

    void siluBackward(int n, MemorySegment x, long xOff, MemorySegment dout, long doutOff, MemorySegment dx, long dxOff) {
        VectorSpecies<Float> s = species();
        int i = 0;
        for (int up = s.loopBound(n); i < up; i += s.length()) {
            FloatVector g = load(s, dout, doutOff, i).mul(siluGrad(load(s, x, xOff, i)));
            store(load(s, dx, dxOff, i).add(g), dx, dxOff, i);
        }
        ScalarRowOps.siluBackwardRange(i, n, x, xOff, dout, doutOff, dx, dxOff);
    }

    void swiglu(int n, MemorySegment gate, long gateOff, MemorySegment up, long upOff, MemorySegment out, long outOff) {
        VectorSpecies<Float> s = species();
        int i = 0;
        for (int bound = s.loopBound(n); i < bound; i += s.length()) {
            FloatVector g = load(s, gate, gateOff, i);
            store(g.mul(sigmoid(g)).mul(load(s, up, upOff, i)), out, outOff, i);
        }
        ScalarRowOps.swigluRange(i, n, gate, gateOff, up, upOff, out, outOff);
    }

    /** Gate values per chunk of {@link #swigluBackward}. */
    private static final int SG_CHUNK = 256;

    /**
     * Two loops per chunk of 256 values, each in its own method: the sigmoids into a small array, then the
     * gradient products. In one loop body, exp plus the products exceeded C2's node budget for a compile
     * (PrintInlining: "NodeCountInliningCutoff" at the stores), the stores were then called instead of inlined
     * and every vector of the loop was boxed (JFR: ~100 MB/s of garbage in a training run). Same bits: the
     * sigmoids round-trip through float exactly. Inputs of a chunk are read before its outputs are written, so
     * the gradients may still overwrite the inputs element by element.
     */
    void swigluBackward(int n, MemorySegment gate, long gateOff, MemorySegment up, long upOff, MemorySegment dout, long doutOff,
                        MemorySegment dgate, long dgateOff, MemorySegment dup, long dupOff) {
        int bound = species().loopBound(n);
        float[] sg = bound > 0 ? new float[Math.min(bound, SG_CHUNK)] : null;
        for (int c0 = 0; c0 < bound; c0 += SG_CHUNK) {
            int c1 = Math.min(bound, c0 + SG_CHUNK);
            sigmoidChunk(c0, c1, gate, gateOff, sg);
            swigluBackwardChunk(c0, c1, gate, gateOff, up, upOff, dout, doutOff, dgate, dgateOff, dup, dupOff, sg);
        }
        ScalarRowOps.swigluBackwardRange(bound, n, gate, gateOff, up, upOff, dout, doutOff, dgate, dgateOff, dup, dupOff);
    }

    /** sg[i − from] = σ(gate[i]) for i in [from, to), a whole number of vectors. */
    void sigmoidChunk(int from, int to, MemorySegment gate, long gateOff, float[] sg) {
        VectorSpecies<Float> s = species();
        for (int i = from; i < to; i += s.length()) sigmoid(load(s, gate, gateOff, i)).intoArray(sg, i - from);
    }

    void swigluBackwardChunk(int from, int to, MemorySegment gate, long gateOff, MemorySegment up, long upOff,
                             MemorySegment dout, long doutOff, MemorySegment dgate, long dgateOff, MemorySegment dup,
                             long dupOff, float[] sgs) {
        VectorSpecies<Float> s = species();
        for (int i = from; i < to; i += s.length()) {
            FloatVector g = load(s, gate, gateOff, i), u = load(s, up, upOff, i), d = load(s, dout, doutOff, i);
            FloatVector sg = FloatVector.fromArray(s, sgs, i - from);
            FloatVector grad = sg.mul(g.mul(sg.neg().add(1f)).add(1f));
            store(d.mul(u).mul(grad), dgate, dgateOff, i);
            store(d.mul(g.mul(sg)), dup, dupOff, i);
        }
    }

    void gelu(int n, MemorySegment x, long xOff, MemorySegment out, long outOff) {
        VectorSpecies<Float> s = species();
        int i = 0;
        for (int up = s.loopBound(n); i < up; i += s.length()) {
            FloatVector v = load(s, x, xOff, i);
            store(v.mul(geluGate(v)), out, outOff, i);
        }
        ScalarRowOps.geluRange(i, n, x, xOff, out, outOff);
    }

    void geluBackward(int n, MemorySegment x, long xOff, MemorySegment dout, long doutOff, MemorySegment dx, long dxOff) {
        VectorSpecies<Float> s = species();
        int i = 0;
        for (int up = s.loopBound(n); i < up; i += s.length()) {
            FloatVector g = load(s, dout, doutOff, i).mul(geluGrad(load(s, x, xOff, i)));
            store(load(s, dx, dxOff, i).add(g), dx, dxOff, i);
        }
        ScalarRowOps.geluBackwardRange(i, n, x, xOff, dout, doutOff, dx, dxOff);
    }

    void geglu(int n, MemorySegment gate, long gateOff, MemorySegment up, long upOff, MemorySegment out, long outOff) {
        VectorSpecies<Float> s = species();
        int i = 0;
        for (int bound = s.loopBound(n); i < bound; i += s.length()) {
            FloatVector g = load(s, gate, gateOff, i);
            store(g.mul(geluGate(g)).mul(load(s, up, upOff, i)), out, outOff, i);
        }
        ScalarRowOps.gegluRange(i, n, gate, gateOff, up, upOff, out, outOff);
    }

    void gegluBackward(int n, MemorySegment gate, long gateOff, MemorySegment up, long upOff, MemorySegment dout, long doutOff,
                       MemorySegment dgate, long dgateOff, MemorySegment dup, long dupOff) {
        VectorSpecies<Float> s = species();
        int i = 0;
        for (int bound = s.loopBound(n); i < bound; i += s.length()) {
            FloatVector g = load(s, gate, gateOff, i), u = load(s, up, upOff, i), d = load(s, dout, doutOff, i);
            FloatVector sg = geluGate(g);
            store(d.mul(u).mul(geluGrad(g, sg)), dgate, dgateOff, i);
            store(d.mul(g.mul(sg)), dup, dupOff, i);
        }
        ScalarRowOps.gegluBackwardRange(i, n, gate, gateOff, up, upOff, dout, doutOff, dgate, dgateOff, dup, dupOff);
    }

    void relu(int n, MemorySegment x, long xOff, MemorySegment out, long outOff) {
        VectorSpecies<Float> s = species();
        int i = 0;
        for (int up = s.loopBound(n); i < up; i += s.length()) store(load(s, x, xOff, i).max(0f), out, outOff, i);
        ScalarRowOps.reluRange(i, n, x, xOff, out, outOff);
    }

    void reluBackward(int n, MemorySegment x, long xOff, MemorySegment dout, long doutOff, MemorySegment dx, long dxOff) {
        VectorSpecies<Float> s = species();
        int i = 0;
        for (int up = s.loopBound(n); i < up; i += s.length()) {
            VectorMask<Float> pos = load(s, x, xOff, i).compare(VectorOperators.GT, 0f);
            store(load(s, dx, dxOff, i).add(load(s, dout, doutOff, i), pos), dx, dxOff, i);
        }
        ScalarRowOps.reluBackwardRange(i, n, x, xOff, dout, doutOff, dx, dxOff);
    }

    // ---------------------------------------------------------------- rotary position embedding

    /**
     * NEOX pairs (i, i + rotDim/2) are two contiguous runs, so they vectorise directly (32 heads × 128: 0.5 µs vs
     * 2.7 µs scalar). Adjacent pairs (2i, 2i+1) stay scalar: a version with a pair-swap shuffle and index-map
     * (gather) loads of duplicated cos/sin measured slower than the scalar loop (3.6 µs vs 2.3 µs, AVX-512), and
     * RoPE is O(heads·headDim) per token, negligible next to the projections around it.
     */
    void rope(int nHeads, int headDim, int rotDim, MemorySegment x, long xOff,
              float[] cos, float[] sin, int tab, boolean neox, boolean inverse) {
        VectorSpecies<Float> s = species();
        int half = rotDim / 2;
        int bound = neox ? s.loopBound(half) : 0;
        for (int h = 0; h < nHeads; h++) {
            long base = xOff + (long) h * headDim;
            int i = 0;
            for (; i < bound; i += s.length()) {
                FloatVector c = FloatVector.fromArray(s, cos, tab + i);
                FloatVector sn = FloatVector.fromArray(s, sin, tab + i);
                if (inverse) sn = sn.neg();
                FloatVector a = load(s, x, base, i), b = load(s, x, base, half + i);
                store(a.mul(c).sub(b.mul(sn)), x, base, i);
                store(a.mul(sn).add(b.mul(c)), x, base, half + i);
            }
            ScalarRowOps.ropeHead(i, half, rotDim, x, base, cos, sin, tab, neox, inverse);
        }
    }

    // ---------------------------------------------------------------- gather / scatter

    /** A bulk copy per row: MemorySegment.copy is already a vectorised memmove. */
    void gatherRows(int count, int d, MemorySegment src, long srcOff, int ldSrc, int[] rows, int rowsOff,
                    MemorySegment dst, long dstOff, int ldDst) {
        for (int i = 0; i < count; i++) {
            long from = (srcOff + (long) rows[rowsOff + i] * ldSrc) * Float.BYTES;
            long to = (dstOff + (long) i * ldDst) * Float.BYTES;
            MemorySegment.copy(src, from, dst, to, (long) d * Float.BYTES);
        }
    }

    void scatterAddRows(int count, int d, MemorySegment src, long srcOff, int ldSrc, int[] rows, int rowsOff,
                        float[] weights, int weightsOff, MemorySegment dst, long dstOff, int ldDst) {
        for (int i = 0; i < count; i++) {
            long from = srcOff + (long) i * ldSrc, to = dstOff + (long) rows[rowsOff + i] * ldDst;
            if (weights == null) {
                add(d, dst, to, src, from, dst, to);
            } else {
                axpy(d, weights[weightsOff + i], src, from, dst, to);
            }
        }
    }

    void scatterAddRowsBackward(int count, int d, MemorySegment dDst, long dDstOff, int ldDDst, int[] rows, int rowsOff,
                                float[] weights, int weightsOff, MemorySegment src, long srcOff, int ldSrc,
                                MemorySegment dSrc, long dSrcOff, int ldDSrc, float[] dWeights, int dWeightsOff) {
        for (int i = 0; i < count; i++) {
            long g = dDstOff + (long) rows[rowsOff + i] * ldDDst, t = dSrcOff + (long) i * ldDSrc;
            if (dWeights != null) dWeights[dWeightsOff + i] += dot(d, dDst, g, src, srcOff + (long) i * ldSrc);
            scaleInto(d, weights == null ? 1f : weights[weightsOff + i], dDst, g, dSrc, t);
        }
    }
}
