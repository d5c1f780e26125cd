package io.moe4j.parallel;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A fixed pool of worker threads with one operation: a parallel for-loop over task indices.
 *
 * <p>Why not ForkJoinPool or an ExecutorService: kernels call {@link #parallelFor} thousands of times per second
 * (every matmul of every decoded token), so the hand-off must cost microseconds, and the set of threads must be
 * fixed so that per-worker scratch buffers can be indexed by worker number. Workers spin briefly after a job
 * (the next job usually follows at once), then park.
 *
 * <p>Determinism contract: the pool decides only <em>which thread</em> runs a task, never how the work is split.
 * Callers split work into tasks whose results do not depend on the thread, so results are bit-identical
 * whatever the thread count.
 *
 * <p>The calling thread takes part as worker 0. A {@code parallelFor} issued from inside a task runs inline on
 * the calling worker (no nested parallelism). Calls from several outside threads are serialised.
 */
public final class WorkerPool implements AutoCloseable {

    /** A loop body: {@code task} in {@code [0, n)}, {@code worker} in {@code [0, threads())}. */
    @FunctionalInterface
    public interface Body {
        void run(int task, int worker);
    }

    private static final int SPIN_ITERATIONS = 20_000;
    /**
     * While spinning, every this many iterations the thread yields its core (sched_yield) instead of pausing. On an
     * idle machine a yield returns at once; on an overloaded one it hands the core to a runnable thread — often
     * the descheduled worker this thread is waiting for — instead of burning the time slice (OpenBLAS's waits
     * yield the same way). Pure PAUSE spinning made the submitter hold a core for ~0.5 ms per hand-off while its
     * worker waited to be scheduled.
     */
    private static final int YIELD_EVERY = 64;
    private static volatile WorkerPool common;

    private final int threads;
    private final Thread[] workers;
    private final ReentrantLock submitLock = new ReentrantLock();
    private final ThreadLocal<Boolean> insideTask = ThreadLocal.withInitial(() -> Boolean.FALSE);

    // Job state. Task claims are tagged with the job's generation: `claim` holds (generation << 32 | next task),
    // so a worker that wakes up late — after its job has finished and maybe after newer jobs started — can never
    // claim a task of a job it did not read. The submitter waits only for the job's tasks to complete, never for
    // workers to wake up: on a busy machine a descheduled worker costs nothing, the caller runs its tasks.
    private final Body[] bodies = new Body[2];   // body of generation g at [g & 1]
    private final int[] taskCounts = new int[2]; // task count of generation g at [g & 1]
    private final AtomicLong claim = new AtomicLong();
    private final AtomicInteger completed = new AtomicInteger();
    private final AtomicReference<Throwable> failure = new AtomicReference<>();
    private volatile int generation;
    private volatile boolean closed;
    private volatile Thread submitter;

    /** A pool of {@code threads} threads in total (the caller counts as one). */
    public WorkerPool(int threads) {
        if (threads < 1) throw new IllegalArgumentException("threads must be >= 1, got " + threads);
        this.threads = threads;
        this.workers = new Thread[threads - 1];
        for (int i = 0; i < workers.length; i++) {
            int worker = i + 1;
            Thread t = new Thread(() -> workerLoop(worker), "moe4j-worker-" + worker);
            t.setDaemon(true);
            workers[i] = t;
            t.start();
        }
    }

    /**
     * The shared pool: {@code -Dmoe4j.threads=N} threads, or one per available processor.
     */
    public static WorkerPool common() {
        WorkerPool p = common;
        if (p == null) {
            synchronized (WorkerPool.class) {
                p = common;
                if (p == null) {
                    common = p = new WorkerPool(defaultThreads());
                }
            }
        }
        return p;
    }

    /** Threads the common pool uses: {@code moe4j.threads} if set, else the number of available processors. */
    public static int defaultThreads() {
        String prop = System.getProperty("moe4j.threads");
        if (prop != null && !prop.isBlank()) {
            try {
                int n = Integer.parseInt(prop.trim());
                if (n >= 1) return n;
            } catch (NumberFormatException ignored) {
                // fall through to the default
            }
            throw new IllegalArgumentException("moe4j.threads must be a positive integer, got '" + prop + "'");
        }
        return Runtime.getRuntime().availableProcessors();
    }

    public int threads() { return threads; }

    /**
     * Runs {@code body.run(task, worker)} for every task in {@code [0, n)} and returns when all have finished.
     * Exceptions thrown by tasks are rethrown here (the first one; remaining tasks are skipped).
     */
    public void parallelFor(int n, Body body) {
        if (n <= 0) return;
        if (closed) throw new IllegalStateException("worker pool is closed");
        if (threads == 1 || n == 1 || insideTask.get()) {
            runInline(n, body);
            return;
        }
        submitLock.lock();
        try {
            int g = generation + 1;
            bodies[g & 1] = body;
            taskCounts[g & 1] = n;
            failure.set(null);
            completed.set(0);
            claim.set((long) g << 32);
            submitter = Thread.currentThread();
            generation = g; // publishes the job (volatile write after the plain writes above)
            for (Thread w : workers) LockSupport.unpark(w);

            insideTask.set(Boolean.TRUE);
            try {
                drain(g, 0);
            } finally {
                insideTask.set(Boolean.FALSE);
            }
            int spins = 0;
            while (completed.get() != n) {
                if (++spins < SPIN_ITERATIONS) pause(spins);
                else LockSupport.parkNanos(this, 20_000);
            }
            bodies[g & 1] = null;
            Throwable t = failure.get();
            if (t != null) {
                if (t instanceof RuntimeException re) throw re;
                if (t instanceof Error e) throw e;
                throw new RuntimeException(t);
            }
        } finally {
            submitLock.unlock();
        }
    }

    /** Convenience: splits {@code [0, n)} into {@code chunks} equal contiguous ranges, fixed independent of thread count. */
    public void parallelRanges(int n, int chunk, RangeBody body) {
        if (chunk < 1) throw new IllegalArgumentException("chunk must be >= 1");
        int tasks = (n + chunk - 1) / chunk;
        parallelFor(tasks, (task, worker) -> body.run(task * chunk, Math.min(n, task * chunk + chunk), worker));
    }

    @FunctionalInterface
    public interface RangeBody {
        void run(int from, int to, int worker);
    }

    private void runInline(int n, Body body) {
        boolean outer = !insideTask.get();
        if (outer) insideTask.set(Boolean.TRUE);
        try {
            for (int i = 0; i < n; i++) body.run(i, 0);
        } finally {
            if (outer) insideTask.set(Boolean.FALSE);
        }
    }

    /** Claims and runs tasks of generation g until none is left (or the job is no longer g). */
    private void drain(int g, int worker) {
        while (true) {
            long c = claim.get();
            if ((int) (c >>> 32) != g) return;          // a newer job: ours is finished
            int task = (int) c;
            int n = taskCounts[g & 1];
            if (task >= n) return;
            if (!claim.compareAndSet(c, c + 1)) continue;
            // The claim succeeded, so job g is still running (it cannot finish before this task completes) and
            // its body and count in slot g & 1 are still the ones its submitter wrote.
            if (failure.get() == null) {
                try {
                    bodies[g & 1].run(task, worker);
                } catch (Throwable t) {
                    failure.compareAndSet(null, t);
                }
            }
            if (completed.incrementAndGet() == n) {
                Thread s = submitter;
                if (s != null && s != Thread.currentThread()) LockSupport.unpark(s);
            }
        }
    }

    private void workerLoop(int worker) {
        insideTask.set(Boolean.TRUE);
        int seen = 0;
        while (true) {
            int spins = 0;
            int g;
            while ((g = generation) == seen) {
                if (closed) return;
                if (++spins < SPIN_ITERATIONS) pause(spins);
                else LockSupport.park(this);
            }
            seen = g;
            drain(g, worker);
        }
    }

    private static void pause(int spins) {
        if (spins % YIELD_EVERY == 0) Thread.yield();
        else Thread.onSpinWait();
    }

    @Override
    public void close() {
        if (this == common) return; // the shared pool lives as long as the JVM
        closed = true;
        for (Thread w : workers) LockSupport.unpark(w);
    }
}
