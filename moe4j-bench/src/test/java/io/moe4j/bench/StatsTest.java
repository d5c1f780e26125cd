package io.moe4j.bench;

import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicInteger;

import static org.assertj.core.api.Assertions.assertThat;

class StatsTest {

    @Test
    void minAndMedianOfSortedTimings() {
        Stats odd = new Stats(new long[]{30, 10, 20}, 1);
        assertThat(odd.minNanos()).isEqualTo(10);
        assertThat(odd.medianNanos()).isEqualTo(20);
        Stats even = new Stats(new long[]{40, 10, 20, 30}, 1);
        assertThat(even.medianNanos()).isEqualTo(25);
        assertThat(even.best(1e9)).isEqualTo(1e9 / 10e-9);
    }

    @Test
    void warmsUpThenTimesRepeatCalls() {
        AtomicInteger calls = new AtomicInteger();
        Stats s = Stats.measure(calls::incrementAndGet, new Stats.Plan(0, 7, 60));
        assertThat(s.runs()).isEqualTo(7);
        assertThat(s.warmupCalls()).isGreaterThanOrEqualTo(1);
        assertThat(calls.get()).isEqualTo(7 + s.warmupCalls());
    }

    @Test
    void stopsEarlyWhenOverBudget() {
        Stats s = Stats.measure(() -> sleep(30), new Stats.Plan(0, 100, 0.05));
        assertThat(s.runs()).isBetween(1, 3);
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
