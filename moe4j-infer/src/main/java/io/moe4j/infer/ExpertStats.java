package io.moe4j.infer;

import java.util.Locale;

/**
 * Per-layer expert usage over a run, as an {@link ExpertObserver}: how many token assignments each expert got,
 * how many experts ran per token on average (fewer than top-k when skipping), and the load imbalance
 * (the busiest expert's share over the uniform share, 1 = perfectly balanced).
 */
public final class ExpertStats implements ExpertObserver {
    private final int experts;
    private final long[][] counts;   // (layers, E) assignments per expert
    private final long[] tokens;     // (layers) tokens routed
    private final long[] selected;   // (layers) assignments before skipping

    public ExpertStats(int layers, int experts) {
        if (layers < 1 || experts < 1) throw new IllegalArgumentException("need layers, experts >= 1, got " + layers + ", " + experts);
        this.experts = experts;
        this.counts = new long[layers][experts];
        this.tokens = new long[layers];
        this.selected = new long[layers];
    }

    @Override
    public void onRouting(int layer, int slot, int position, int[] ids, float[] weights, int count, int sel) {
        tokens[layer]++;
        selected[layer] += sel;
        for (int i = 0; i < count; i++) counts[layer][ids[i]]++;
    }

    /** Assignments of expert {@code e} in {@code layer}. */
    public long count(int layer, int e) { return counts[layer][e]; }

    /** Tokens routed through {@code layer}. */
    public long tokens(int layer) { return tokens[layer]; }

    /** Assignments in {@code layer} (after skipping). */
    public long assignments(int layer) {
        long s = 0;
        for (long c : counts[layer]) s += c;
        return s;
    }

    /** One line per MoE layer: tokens, experts per token, skipped share, imbalance, the most used experts. */
    public String summary() {
        StringBuilder sb = new StringBuilder("expert usage per layer (tokens, experts/token, skipped, max/uniform load, top experts by share):\n");
        for (int l = 0; l < counts.length; l++) {
            if (tokens[l] == 0) continue;
            long a = assignments(l);
            long max = 0;
            for (long c : counts[l]) max = Math.max(max, c);
            double imbalance = a == 0 ? 0 : max / ((double) a / experts);
            sb.append(String.format(Locale.ROOT, "  layer %3d: %7d tokens  %5.2f/token  skipped %5.1f%%  imbalance %5.2f  top:",
                    l, tokens[l], (double) a / tokens[l], selected[l] == 0 ? 0 : 100.0 * (selected[l] - a) / selected[l], imbalance));
            boolean[] used = new boolean[experts];
            for (int r = 0; r < Math.min(4, experts); r++) {
                int best = -1;
                for (int e = 0; e < experts; e++) if (!used[e] && (best < 0 || counts[l][e] > counts[l][best])) best = e;
                used[best] = true;
                if (counts[l][best] == 0) break;
                sb.append(String.format(Locale.ROOT, " %d (%.1f%%)", best, 100.0 * counts[l][best] / a));
            }
            sb.append('\n');
        }
        return sb.toString();
    }
}
