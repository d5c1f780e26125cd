package io.moe4j.moe.variant;

import io.moe4j.nn.F32;

import java.lang.foreign.MemorySegment;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/**
 * Central finite differences against an analytic gradient, for any F32 buffer (a parameter's value, a layer input).
 * As in {@code MoeGradientCheckTest}: a coordinate where the loss is not smooth at the probe scale (a top-k decision
 * flips, a ReLU kink) shows up as two step sizes disagreeing and is skipped; {@link #assertMostlyChecked} then
 * demands that nearly all probed coordinates were smooth, so skipping cannot hide a wrong gradient.
 */
final class GradCheck {
    /** The scalar loss at the current buffer contents, in double. */
    interface Loss { double eval(); }

    private static final float H1 = 4e-3f, H2 = 2e-3f;
    private final String name;
    private final Loss loss;
    private int probed, checked;

    GradCheck(String name, Loss loss) {
        this.name = name;
        this.loss = loss;
    }

    /** Probes about {@code probes} coordinates spread over seg[off, off+n), analytic gradient {@code grad[0..n)}. */
    GradCheck probe(String what, MemorySegment seg, long off, int n, float[] grad, int probes) {
        int step = Math.max(1, n / probes);
        for (int i = 0; i < n; i += step) {
            probed++;
            long at = off + i;
            float v = F32.get(seg, at);
            double fd1 = diff(seg, at, v, H1), fd2 = diff(seg, at, v, H2);
            F32.set(seg, at, v);
            double scale = Math.max(1.0, Math.abs(fd2));
            if (Math.abs(fd1 - fd2) > 2e-3 * scale) continue; // not smooth at this scale
            checked++;
            assertThat((double) grad[i]).as("%s: %s[%d] (fd %s)", name, what, i, fd2).isCloseTo(fd2, within(3e-3 * scale));
        }
        return this;
    }

    private double diff(MemorySegment seg, long at, float v, float h) {
        F32.set(seg, at, v + h);
        double lp = loss.eval();
        F32.set(seg, at, v - h);
        double lm = loss.eval();
        return (lp - lm) / (2 * h);
    }

    void assertMostlyChecked() {
        assertThat(checked).as("%s: coordinates checked of %d probed", name, probed)
                .isGreaterThanOrEqualTo((int) Math.ceil(probed * 0.9));
    }
}
