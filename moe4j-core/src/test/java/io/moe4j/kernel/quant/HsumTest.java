package io.moe4j.kernel.quant;

import io.moe4j.kernel.Lanes;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;

/** The quant kernels' horizontal sum gives Lanes.sum's bits at every vector width (so results did not move). */
class HsumTest {
    @Test
    void sameBitsAsLanesSum() {
        SplittableRandom r = new SplittableRandom(3);
        for (VectorSpecies<Float> sp : java.util.List.of(FloatVector.SPECIES_128, FloatVector.SPECIES_256, FloatVector.SPECIES_512)) {
            float[] a = new float[sp.length()];
            for (int t = 0; t < 1000; t++) {
                for (int i = 0; i < a.length; i++) a[i] = (float) ((r.nextDouble() - 0.5) * Math.pow(10, r.nextInt(-8, 8)));
                if (t == 0) java.util.Arrays.fill(a, -0f);
                FloatVector v = FloatVector.fromArray(sp, a, 0);
                assertThat(Float.floatToRawIntBits(SimdDots.hsum(v))).isEqualTo(Float.floatToRawIntBits(Lanes.sum(v)));
            }
        }
    }
}
