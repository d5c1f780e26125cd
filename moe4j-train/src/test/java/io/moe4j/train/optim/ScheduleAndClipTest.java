package io.moe4j.train.optim;

import io.moe4j.nn.F32;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

class ScheduleAndClipTest {

    @Test
    void warmupThenCosineToMin() {
        LrSchedule s = new LrSchedule(1e-3, 1e-4, 10, 110);
        assertThat(s.lr(0)).isCloseTo(1e-4, within(1e-12));
        assertThat(s.lr(4)).isCloseTo(5e-4, within(1e-12));
        assertThat(s.lr(9)).isCloseTo(1e-3, within(1e-12));
        assertThat(s.lr(10)).isCloseTo(1e-3, within(1e-12));
        assertThat(s.lr(60)).isCloseTo(1e-4 + 0.5 * 9e-4, within(1e-12)); // halfway: cos(π/2) = 0
        assertThat(s.lr(110)).isCloseTo(1e-4, within(1e-12));
        assertThat(s.lr(500)).isCloseTo(1e-4, within(1e-12));
        for (int i = 10; i < 110; i++) assertThat(s.lr(i + 1)).isLessThanOrEqualTo(s.lr(i));
    }

    @Test
    void badScheduleNamesField() {
        assertThatThrownBy(() -> new LrSchedule(1e-3, 2e-3, 0, 10)).hasMessageContaining("train.minLr");
        assertThatThrownBy(() -> new LrSchedule(0, 0, 0, 10)).hasMessageContaining("train.lr");
        assertThatThrownBy(() -> new LrSchedule(1e-3, 0, 0, 0)).hasMessageContaining("train.steps");
    }

    @Test
    void clipReturnsPreClipNormAndScalesToMax() {
        try (Arena arena = Arena.ofShared(); WorkerPool pool = new WorkerPool(2)) {
            Param a = new Param(arena, "a", 2), b = new Param(arena, "b", 1, 1);
            F32.copyIn(new float[]{3f, 0f}, a.gradData(), 0);
            F32.copyIn(new float[]{4f}, b.gradData(), 0);
            double norm = GradClip.clip(List.of(a, b), 1.0, pool);
            assertThat(norm).isCloseTo(5.0, within(1e-12));
            assertThat(a.gradToArray()[0]).isCloseTo(0.6f, within(1e-6f));
            assertThat(b.gradToArray()[0]).isCloseTo(0.8f, within(1e-6f));
            assertThat(GradClip.globalNorm(List.of(a, b), pool)).isCloseTo(1.0, within(1e-5));
            // under the limit: untouched
            assertThat(GradClip.clip(List.of(a, b), 10.0, pool)).isCloseTo(1.0, within(1e-5));
            assertThat(b.gradToArray()[0]).isCloseTo(0.8f, within(1e-6f));
            F32.set(a.gradData(), 1, Float.NaN);
            assertThat(GradClip.clip(List.of(a, b), 1.0, pool)).isNaN();
        }
    }
}
