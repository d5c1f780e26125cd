package io.moe4j.train.ui;

import io.moe4j.train.TrainResult;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The comparison table printed at the end of a run, a demo or an experiment: aligned plain text for the
 * terminal, or Markdown for files.
 */
public final class SummaryTable {
    private SummaryTable() {}

    static final String[] HEADER = {"run", "steps", "params", "active", "train loss", "val loss", "bits/byte",
            "tokens/s", "imbalance", "dropped", "experts/tok"};

    static List<String[]> rows(List<TrainResult> results) {
        List<String[]> rows = new ArrayList<>();
        for (TrainResult r : results) {
            rows.add(new String[]{r.name(), String.valueOf(r.steps()), count(r.params()), count(r.activeParams()),
                    fmt(r.trainLoss(), "%.4f"), fmt(r.valLoss(), "%.4f"), fmt(r.bitsPerByte(), "%.4f"),
                    fmt(r.tokensPerSec(), "%,.0f"), moe(r, r.meanImbalance(), "%.3f"), moe(r, 100 * r.dropped(), "%.2f%%"),
                    moe(r, r.activeExperts(), "%.2f")});
        }
        return rows;
    }

    /** Aligned columns, text left, numbers right. */
    public static String plain(List<TrainResult> results) {
        List<String[]> rows = rows(results);
        int[] w = new int[HEADER.length];
        for (int c = 0; c < w.length; c++) {
            w[c] = HEADER[c].length();
            for (String[] r : rows) w[c] = Math.max(w[c], r[c].length());
        }
        StringBuilder b = new StringBuilder();
        line(b, HEADER, w);
        StringBuilder rule = new StringBuilder();
        for (int c = 0; c < w.length; c++) rule.append(c == 0 ? "" : "  ").append("-".repeat(w[c]));
        b.append(rule).append('\n');
        for (String[] r : rows) line(b, r, w);
        return b.toString();
    }

    private static void line(StringBuilder b, String[] cells, int[] w) {
        for (int c = 0; c < cells.length; c++) {
            if (c > 0) b.append("  ");
            String pad = " ".repeat(w[c] - cells[c].length());
            b.append(c == 0 ? cells[c] + pad : pad + cells[c]);
        }
        b.append('\n');
    }

    /** A GitHub-flavoured Markdown table. */
    public static String markdown(List<TrainResult> results) {
        StringBuilder b = new StringBuilder("| ").append(String.join(" | ", HEADER)).append(" |\n|");
        for (int c = 0; c < HEADER.length; c++) b.append(c == 0 ? "---|" : "---:|");
        b.append('\n');
        for (String[] r : rows(results)) b.append("| ").append(String.join(" | ", r)).append(" |\n");
        return b.toString();
    }

    static String count(long n) {
        if (n >= 1_000_000) return String.format(Locale.ROOT, "%.2fM", n / 1e6);
        if (n >= 10_000) return String.format(Locale.ROOT, "%.1fk", n / 1e3);
        return String.valueOf(n);
    }

    static String fmt(double v, String f) { return Double.isFinite(v) ? String.format(Locale.ROOT, f, v) : "–"; }

    /** MoE-only columns (imbalance, dropped, experts per token): "–" for a dense run. */
    static String moe(TrainResult r, double v, String f) { return r.activeExperts() > 0 ? fmt(v, f) : "–"; }
}
