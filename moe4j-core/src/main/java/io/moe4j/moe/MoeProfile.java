package io.moe4j.moe;

/**
 * Wall-clock time spent in each phase of a {@link MoeLayer}, accumulated over calls until {@link #reset()}.
 * Benchmarks and progress reports read it to say where the time goes (router, dispatch, expert GEMMs, combine,
 * shared experts; forward and backward). Costs two {@code System.nanoTime()} calls per phase.
 */
public final class MoeProfile {
    public enum Phase { ROUTER, DISPATCH, EXPERTS, COMBINE, SHARED, COMBINE_BWD, EXPERTS_BWD, ROUTER_BWD, SHARED_BWD }

    private final long[] nanos = new long[Phase.values().length];
    private final long[] calls = new long[Phase.values().length];

    void add(Phase p, long ns) {
        nanos[p.ordinal()] += ns;
        calls[p.ordinal()]++;
    }

    public long nanos(Phase p) { return nanos[p.ordinal()]; }
    public long calls(Phase p) { return calls[p.ordinal()]; }

    public void reset() {
        java.util.Arrays.fill(nanos, 0);
        java.util.Arrays.fill(calls, 0);
    }

    /** Mean milliseconds per call of each phase that ran, with its share of the total. */
    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder();
        long total = 0;
        for (long n : nanos) total += n;
        for (Phase p : Phase.values()) {
            int i = p.ordinal();
            if (calls[i] == 0) continue;
            sb.append(String.format(java.util.Locale.ROOT, "%s %.2f ms (%.0f%%)  ", p.name().toLowerCase(java.util.Locale.ROOT),
                    nanos[i] / 1e6 / calls[i], total > 0 ? 100.0 * nanos[i] / total : 0));
        }
        return sb.toString().trim();
    }
}
