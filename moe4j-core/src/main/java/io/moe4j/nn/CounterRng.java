package io.moe4j.nn;

/**
 * A counter-based random stream: value i of draw n is a pure function of (seed, n, i) (SplitMix64 finaliser), so
 * the whole state is two longs — checkpointable, so a resumed run draws the same noise as an uninterrupted one —
 * and parallel consumers can draw element i without sharing a generator.
 */
public final class CounterRng {
    private final long seed;
    private long draw;

    public CounterRng(long seed) { this.seed = seed; }

    public long seed() { return seed; }
    /** Draws started so far (part of the state to checkpoint). */
    public long draws() { return draw; }
    public void setDraws(long n) { draw = n; }

    /** Starts a new draw; returns its number, to pass to {@link #uniform}/{@link #gaussian}. */
    public long next() { return draw++; }

    /** Uniform in [0, 1) for element i of draw n. */
    public double uniform(long n, long i) {
        long z = mix(seed ^ mix(n * 0x9E3779B97F4A7C15L + i));
        return (z >>> 11) * 0x1.0p-53;
    }

    /** Standard normal for element i of draw n (Box–Muller on two uniforms). */
    public double gaussian(long n, long i) {
        double u1 = uniform(n, 2 * i), u2 = uniform(n, 2 * i + 1);
        if (u1 < 1e-300) u1 = 1e-300;
        return Math.sqrt(-2.0 * Math.log(u1)) * Math.cos(2.0 * Math.PI * u2);
    }

    /** Standard Gumbel for element i of draw n. */
    public double gumbel(long n, long i) {
        double u = uniform(n, i);
        if (u < 1e-300) u = 1e-300;
        return -Math.log(-Math.log(u));
    }

    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
