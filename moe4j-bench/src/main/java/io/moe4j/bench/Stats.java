package io.moe4j.bench;

import java.util.Arrays;

/**
 * Wall-clock timings of one measured operation, and the loop that takes them: warm up (JIT compilation, page-in),
 * then time {@code repeat} calls one by one. Throughput is reported from the fastest call (best) and the median
 * call; the mean is not used because a shared machine's noise only ever makes calls slower.
 *
 * <p>Non-goals: no statistics beyond min and median, no outlier rejection, no dead-code elimination guard (the
 * operations measured here write to memory the caller owns, which the JIT cannot discard). For microbenchmarks
 * use the JMH harnesses in {@code io.moe4j.bench.jmh}.
 *
 * @param nanos the timed calls, sorted ascending (never empty)
 * @param warmupCalls how many untimed calls preceded them
 */
public record Stats(long[] nanos, int warmupCalls) {

    public Stats {
        if (nanos.length == 0) throw new IllegalArgumentException("no timings");
        nanos = nanos.clone();
        Arrays.sort(nanos);
    }

    /** How the measuring loop runs. */
    public record Plan(double warmupSeconds, int repeat, double budgetSeconds) {
        public Plan {
            if (repeat < 1) throw new IllegalArgumentException("repeat must be >= 1, got " + repeat);
            if (!(warmupSeconds >= 0)) throw new IllegalArgumentException("warm-up must be >= 0 s, got " + warmupSeconds);
            if (!(budgetSeconds > 0)) throw new IllegalArgumentException("budget must be > 0 s, got " + budgetSeconds);
        }
    }

    /**
     * Calls {@code op} untimed until {@code warmupSeconds} have passed (at least once), then times it up to
     * {@code repeat} times. If the timed calls together exceed {@code budgetSeconds}, it stops early (after at
     * least one timed call) so that a slow fallback kernel cannot stall the whole run; {@link #runs()} tells how
     * many calls were timed.
     */
    public static Stats measure(Runnable op, Plan plan) {
        long warmupNanos = (long) (plan.warmupSeconds() * 1e9);
        long budgetNanos = (long) (plan.budgetSeconds() * 1e9);
        int warm = 0;
        long start = System.nanoTime();
        do {
            op.run();
            warm++;
        } while (System.nanoTime() - start < warmupNanos && System.nanoTime() - start < budgetNanos);

        long[] t = new long[plan.repeat()];
        int n = 0;
        long spent = 0;
        while (n < t.length) {
            long t0 = System.nanoTime();
            op.run();
            long dt = System.nanoTime() - t0;
            t[n++] = dt;
            spent += dt;
            if (spent > budgetNanos) break;
        }
        return new Stats(Arrays.copyOf(t, n), warm);
    }

    public int runs() { return nanos.length; }

    public long minNanos() { return nanos[0]; }

    /** The median call (the mean of the two middle ones for an even count). */
    public double medianNanos() {
        int n = nanos.length;
        return n % 2 == 1 ? nanos[n / 2] : (nanos[n / 2 - 1] + nanos[n / 2]) / 2.0;
    }

    /** {@code work} units per second at the fastest call. */
    public double best(double work) { return work / (minNanos() * 1e-9); }

    /** {@code work} units per second at the median call. */
    public double median(double work) { return work / (medianNanos() * 1e-9); }

    @Override
    public boolean equals(Object o) { return o instanceof Stats s && Arrays.equals(nanos, s.nanos) && warmupCalls == s.warmupCalls; }

    @Override
    public int hashCode() { return 31 * Arrays.hashCode(nanos) + warmupCalls; }

    @Override
    public String toString() { return "Stats" + Arrays.toString(nanos) + " after " + warmupCalls + " warm-up calls"; }
}
