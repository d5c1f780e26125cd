package io.moe4j.kernel.row;

import io.moe4j.nn.F32;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

/** The exact GELU against values from Python's math.erf, its derivative against finite differences in double. */
class ErfGeluTest {

    /** x, 0.5·x·(1 + math.erf(x/√2)) printed by CPython 3 (libm erf, correctly rounded to ~1 ulp). */
    private static final double[][] PYTHON = {
            {-4.0, -0.00012668496733247991}, {-3.0, -0.00404969409489031}, {-1.0, -0.15865525393145707},
            {-0.5, -0.15426876936299344}, {0.0, 0.0}, {0.5, 0.34573123063700656}, {1.0, 0.8413447460685429},
            {2.0, 1.9544997361036416}, {3.0, 2.99595030590511}, {5.0, 4.999998566742141}};

    @Test
    void matchesPythonErfToFloatPrecision() {
        for (double[] c : PYTHON) {
            double got = ErfGelu.gelu((float) c[0]);
            assertThat(got).as("gelu(%s)", c[0]).isCloseTo(c[1], within(2e-7 * Math.max(1, Math.abs(c[1]))));
        }
    }

    @Test
    void differsFromTheTanhApproximation() {
        // The reason the type exists: at x = -3 the tanh form is off by ~3e-4 relative to erf.
        float x = -3f;
        assertThat(Math.abs(ErfGelu.gelu(x) - ScalarRowOps.gelu(x))).isGreaterThan(1e-5f);
    }

    @Test
    void gradientMatchesFiniteDifferencesOfTheCdfForm() {
        for (double x = -6; x <= 6; x += 0.37) {
            double h = 1e-4;
            double fd = ((x + h) * ErfGelu.cdf(x + h) - (x - h) * ErfGelu.cdf(x - h)) / (2 * h);
            assertThat((double) ErfGelu.geluGrad((float) x)).as("gelu'(%s)", x).isCloseTo(fd, within(2e-6));
        }
    }

    @Test
    void rowFormsApplyElementwiseAndBackwardAccumulates() {
        Arena arena = Arena.ofAuto();
        int n = 13;
        MemorySegment x = F32.alloc(arena, n + 2), out = F32.alloc(arena, n + 2);
        MemorySegment dout = F32.alloc(arena, n), dx = F32.alloc(arena, n);
        for (int i = 0; i < n; i++) {
            F32.set(x, i + 2, -3f + 0.5f * i);
            F32.set(dout, i, 0.25f * (i - 6));
            F32.set(dx, i, 1f);
        }
        ErfGelu.forward(n, x, 2, out, 1);
        ErfGelu.backward(n, x, 2, dout, 0, dx, 0);
        for (int i = 0; i < n; i++) {
            float xi = -3f + 0.5f * i;
            assertThat(F32.get(out, i + 1)).isEqualTo(ErfGelu.gelu(xi));
            assertThat(F32.get(dx, i)).isEqualTo(1f + 0.25f * (i - 6) * ErfGelu.geluGrad(xi));
        }
        assertThatThrownBy(() -> ErfGelu.forward(n, x, 3, out, 0)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("x");
    }
}
