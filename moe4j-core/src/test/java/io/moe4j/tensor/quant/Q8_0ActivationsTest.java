package io.moe4j.tensor.quant;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/** The x86-backend activation quantizer differs from ggml's reference exactly where llama.cpp's does. */
class Q8_0ActivationsTest {
    @Test
    void roundsHalfToEvenWithMultiplier127OverAmax() {
        float[] x = new float[32];
        x[0] = 127f;      // amax = 127: d = 1, both multipliers are 1
        x[1] = 2.5f;      // tie: reference roundf → 3, x86 round-to-nearest-even → 2
        x[2] = -3.5f;     // tie: → −4 both ways (even is −4)
        x[3] = 0.5f;      // tie: → 1 (roundf) vs 0 (even)
        short[] ref = new short[32], act = new short[32];
        short dRef = Q8_0.quantizeBlock(x, 0, ref, 0), dAct = Q8_0.quantizeBlockActivations(x, 0, act, 0);
        assertThat(dAct).isEqualTo(dRef);
        assertThat(new short[]{ref[0], ref[1], ref[2], ref[3]}).containsExactly((short) 127, (short) 3, (short) -4, (short) 1);
        assertThat(new short[]{act[0], act[1], act[2], act[3]}).containsExactly((short) 127, (short) 2, (short) -4, (short) 0);
        // elsewhere the two never differ by more than one step
        java.util.SplittableRandom r = new java.util.SplittableRandom(2);
        for (int it = 0; it < 1000; it++) {
            for (int i = 0; i < 32; i++) x[i] = (float) r.nextGaussian();
            Q8_0.quantizeBlock(x, 0, ref, 0);
            Q8_0.quantizeBlockActivations(x, 0, act, 0);
            for (int i = 0; i < 32; i++) assertThat(Math.abs(ref[i] - act[i])).isLessThanOrEqualTo(1);
        }
    }
}
