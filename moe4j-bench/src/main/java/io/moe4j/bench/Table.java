package io.moe4j.bench;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;

/**
 * A plain-text table with aligned columns: text columns left-aligned, the others right-aligned.
 * Non-goals: no wrapping, no borders, no Unicode width handling.
 */
final class Table {
    private final String[] headers;
    private final boolean[] left;
    private final List<String[]> rows = new ArrayList<>();

    /** Headers; a header starting with '<' marks a left-aligned column (the '<' is not printed). */
    Table(String... headers) {
        this.headers = new String[headers.length];
        this.left = new boolean[headers.length];
        for (int i = 0; i < headers.length; i++) {
            left[i] = headers[i].startsWith("<");
            this.headers[i] = left[i] ? headers[i].substring(1) : headers[i];
        }
    }

    void add(String... cells) {
        if (cells.length != headers.length) throw new IllegalArgumentException("expected " + headers.length + " cells");
        rows.add(cells.clone());
    }

    void print(PrintStream out) {
        int[] w = new int[headers.length];
        for (int i = 0; i < w.length; i++) w[i] = headers[i].length();
        for (String[] r : rows) for (int i = 0; i < w.length; i++) w[i] = Math.max(w[i], r[i].length());
        line(out, headers, w);
        for (String[] r : rows) line(out, r, w);
    }

    private void line(PrintStream out, String[] cells, int[] w) {
        StringBuilder sb = new StringBuilder("  ");
        for (int i = 0; i < cells.length; i++) {
            if (i > 0) sb.append("  ");
            String pad = " ".repeat(w[i] - cells[i].length());
            sb.append(left[i] ? cells[i] + pad : pad + cells[i]);
        }
        out.println(sb.toString().stripTrailing());
    }
}
