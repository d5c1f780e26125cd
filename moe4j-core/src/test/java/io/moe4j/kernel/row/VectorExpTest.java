package io.moe4j.kernel.row;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The SIMD kernels' exp: accurate to a few ulp of Math.exp, and bit-equal to the same operations done one lane at a
 * time with Math.fma — i.e. built only from operations whose result cannot depend on the JIT (the Vector API's EXP
 * is SVML compiled and Math.exp interpreted, which made training reruns differ in the last bit).
 */
class VectorExpTest {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

    /** The same arithmetic, lane by lane. */
    private static float scalarExp(float x) {
        if (x < -87.33654f) return 0f;
        x = Math.min(Math.max(x, -87.33654f), 88.0f);
        float t = x * 1.44269504088896341f + 12582912f;
        float n = t - 12582912f;
        float r = Math.fma(n, -0.693359375f, x);
        r = Math.fma(n, 2.12194440e-4f, r);
        float p = Math.fma(1.9875691500e-4f, r, 1.3981999507e-3f);
        p = Math.fma(p, r, 8.3334519073e-3f);
        p = Math.fma(p, r, 4.1665795894e-2f);
        p = Math.fma(p, r, 1.6666665459e-1f);
        p = Math.fma(p, r, 5.0000001201e-1f);
        float y = Math.fma(p, r * r, r) + 1f;
        int bits = Float.floatToRawIntBits(t);
        return y * Float.intBitsToFloat((bits - (0x4B400000 - 127)) << 23);
    }

    @Test
    void accurateAndBitEqualToTheLaneByLaneArithmetic() {
        SplittableRandom rng = new SplittableRandom(1);
        float[] x = new float[S.length()], y = new float[S.length()];
        float worstUlp = 0;
        for (int iter = 0; iter < 20000; iter++) {
            for (int i = 0; i < x.length; i++) x[i] = (float) (rng.nextDouble() * 175 - 87);
            if (iter == 0) { x[0] = 0; x[1 % x.length] = -87.3f; x[2 % x.length] = 87.9f; x[3 % x.length] = 1e-8f; }
            VectorRowKernels.exp(FloatVector.fromArray(S, x, 0)).intoArray(y, 0);
            for (int i = 0; i < x.length; i++) {
                assertThat(Float.floatToRawIntBits(y[i])).as("exp(%s)", x[i]).isEqualTo(Float.floatToRawIntBits(scalarExp(x[i])));
                double ref = Math.exp(x[i]);
                worstUlp = Math.max(worstUlp, (float) (Math.abs(y[i] - ref) / Math.ulp((float) ref)));
            }
        }
        assertThat(worstUlp).as("worst error in ulp").isLessThan(3f);
        VectorRowKernels.exp(FloatVector.broadcast(S, -1000f)).intoArray(y, 0);
        assertThat(y[0]).isZero();
        VectorRowKernels.exp(FloatVector.broadcast(S, Float.NEGATIVE_INFINITY)).intoArray(y, 0);
        assertThat(y[0]).isZero();
        VectorRowKernels.exp(FloatVector.broadcast(S, Float.NaN)).intoArray(y, 0);
        assertThat(y[0]).isNaN();
    }
}
