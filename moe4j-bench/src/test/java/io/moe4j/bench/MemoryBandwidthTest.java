package io.moe4j.bench;

import io.moe4j.parallel.WorkerPool;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

class MemoryBandwidthTest {

    @Test
    void vectorSumMatchesScalarSumOverAwkwardRanges() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment s = arena.allocate(4 * 4099, 64);
            RandomData.floats(s, 0, 4099, 7);
            for (int[] r : new int[][]{{0, 1}, {0, 13}, {4, 4098}, {0, 4099}, {17, 1000}}) {
                double ref = 0;
                for (int i = r[0]; i < r[1]; i++) ref += s.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i);
                assertThat((double) MemoryBandwidth.sum(s, 4L * r[0], 4L * r[1])).isCloseTo(ref, within(1e-3));
            }
        }
    }

    @Test
    void threadsSplitTheBufferWithoutChangingTheSum() {
        try (MemoryBandwidth mb = new MemoryBandwidth(1 << 20); WorkerPool one = new WorkerPool(1);
             WorkerPool two = new WorkerPool(2)) {
            assertThat(mb.sumOnce(two)).isCloseTo(mb.sumOnce(one), within(Math.abs(mb.sumOnce(one)) * 1e-4f));
            assertThat(mb.measure(two, new Stats.Plan(0, 3, 10)).runs()).isEqualTo(3);
        }
    }
}
