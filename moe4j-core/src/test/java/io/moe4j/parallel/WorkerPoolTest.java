package io.moe4j.parallel;

import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class WorkerPoolTest {

    @Test
    void everyTaskRunsExactlyOnce() {
        for (int threads : new int[]{1, 2, 3, 5}) {
            try (WorkerPool pool = new WorkerPool(threads)) {
                for (int n : new int[]{0, 1, 2, 7, 1000}) {
                    AtomicIntegerArray hits = new AtomicIntegerArray(Math.max(n, 1));
                    pool.parallelFor(n, (task, worker) -> {
                        assertThat(worker).isBetween(0, threads - 1);
                        hits.incrementAndGet(task);
                    });
                    for (int i = 0; i < n; i++) assertThat(hits.get(i)).as("task %d of %d, %d threads", i, n, threads).isEqualTo(1);
                }
            }
        }
    }

    @Test
    void manySmallJobsBackToBack() {
        try (WorkerPool pool = new WorkerPool(2)) {
            AtomicInteger sum = new AtomicInteger();
            for (int rep = 0; rep < 20_000; rep++) pool.parallelFor(4, (t, w) -> sum.addAndGet(t));
            assertThat(sum.get()).isEqualTo(20_000 * 6);
        }
    }

    /** Back-to-back jobs of varying sizes: a late worker must never run a task of a finished job twice or late. */
    @Test
    void lateWorkersNeverRunStaleTasks() {
        for (int threads : new int[]{2, 3}) {
            try (WorkerPool pool = new WorkerPool(threads)) {
                java.util.SplittableRandom rng = new java.util.SplittableRandom(threads);
                for (int job = 0; job < 30_000; job++) {
                    int n = 2 + rng.nextInt(6);
                    int stamp = job;
                    AtomicIntegerArray seen = new AtomicIntegerArray(n);
                    pool.parallelFor(n, (t, w) -> {
                        assertThat(seen.getAndSet(t, stamp + 1)).isZero();
                        if ((t & 1) == 0) Thread.onSpinWait();
                    });
                    for (int i = 0; i < n; i++) assertThat(seen.get(i)).isEqualTo(stamp + 1);
                }
            }
        }
    }

    @Test
    void workersActuallyRunInParallel() {
        try (WorkerPool pool = new WorkerPool(2)) {
            AtomicIntegerArray byWorker = new AtomicIntegerArray(2);
            // tasks long enough that the second thread must pick some up
            pool.parallelFor(64, (t, w) -> {
                long end = System.nanoTime() + 200_000;
                while (System.nanoTime() < end) Thread.onSpinWait();
                byWorker.incrementAndGet(w);
            });
            assertThat(byWorker.get(0) + byWorker.get(1)).isEqualTo(64);
            assertThat(byWorker.get(1)).isPositive();
        }
    }

    @Test
    void nestedCallsRunInline() {
        try (WorkerPool pool = new WorkerPool(2)) {
            AtomicInteger count = new AtomicInteger();
            pool.parallelFor(4, (t, w) -> pool.parallelFor(3, (t2, w2) -> {
                assertThat(w2).isEqualTo(0);
                count.incrementAndGet();
            }));
            assertThat(count.get()).isEqualTo(12);
        }
    }

    @Test
    void exceptionsPropagateAndPoolStaysUsable() {
        try (WorkerPool pool = new WorkerPool(2)) {
            assertThatThrownBy(() -> pool.parallelFor(100, (t, w) -> {
                if (t == 37) throw new IllegalStateException("boom at 37");
            })).isInstanceOf(IllegalStateException.class).hasMessage("boom at 37");
            AtomicInteger ok = new AtomicInteger();
            pool.parallelFor(10, (t, w) -> ok.incrementAndGet());
            assertThat(ok.get()).isEqualTo(10);
        }
    }

    @Test
    void rangesCoverTheInterval() {
        try (WorkerPool pool = new WorkerPool(3)) {
            AtomicIntegerArray hits = new AtomicIntegerArray(103);
            pool.parallelRanges(103, 10, (from, to, w) -> {
                for (int i = from; i < to; i++) hits.incrementAndGet(i);
            });
            for (int i = 0; i < 103; i++) assertThat(hits.get(i)).isEqualTo(1);
        }
    }

    @Test
    void rejectsBadThreadCounts() {
        assertThatThrownBy(() -> new WorkerPool(0)).hasMessageContaining("threads");
    }
}
