package io.moe4j.train.model;

import java.util.Locale;

/**
 * Wall time per phase of the model's forward and backward, accumulated until {@link #reset()} (a few
 * System.nanoTime calls per block; always on). The MoE layers keep their own finer {@link io.moe4j.moe.MoeProfile}.
 */
public final class ModelProfile {
    public enum Phase {
        EMBED, ATTN, FFN, MOE, HEAD, ATTN_BWD, FFN_BWD, MOE_BWD, HEAD_BWD, EMBED_BWD, GRAD_CHECK
    }

    private final long[] nanos = new long[Phase.values().length];

    void add(Phase p, long ns) { nanos[p.ordinal()] += ns; }

    public long nanos(Phase p) { return nanos[p.ordinal()]; }

    public long totalNanos() {
        long t = 0;
        for (long n : nanos) t += n;
        return t;
    }

    public void reset() { java.util.Arrays.fill(nanos, 0); }

    /** One line per phase with its share of the total: "ATTN 123.4 ms 21.0 %". */
    public String report() {
        StringBuilder sb = new StringBuilder();
        double total = Math.max(1, totalNanos());
        for (Phase p : Phase.values()) {
            long n = nanos[p.ordinal()];
            if (n == 0) continue;
            sb.append(String.format(Locale.ROOT, "%-10s %9.1f ms %5.1f %%%n", p, n / 1e6, 100 * n / total));
        }
        return sb.toString();
    }
}
