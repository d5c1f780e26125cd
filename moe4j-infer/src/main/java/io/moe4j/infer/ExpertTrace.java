package io.moe4j.infer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.io.Writer;

/**
 * Writes every routing decision as one JSON line, {@code {"slot":0,"pos":5,"layer":3,"experts":[7,2],"weights":[0.61,0.39]}}:
 * per token and MoE layer, the experts that ran (after skipping, best first) and their combine weights. The
 * writer is the caller's (buffer it; it is flushed, not closed, by {@link #flush}).
 */
public final class ExpertTrace implements ExpertObserver {
    private final Writer out;
    private final StringBuilder line = new StringBuilder(256);
    private long lines;

    public ExpertTrace(Writer out) {
        if (out == null) throw new NullPointerException("out");
        this.out = out;
    }

    @Override
    public void onRouting(int layer, int slot, int position, int[] experts, float[] weights, int count, int selected) {
        line.setLength(0);
        line.append("{\"slot\":").append(slot).append(",\"pos\":").append(position).append(",\"layer\":").append(layer)
                .append(",\"experts\":[");
        for (int i = 0; i < count; i++) line.append(i > 0 ? "," : "").append(experts[i]);
        line.append("],\"weights\":[");
        for (int i = 0; i < count; i++) line.append(i > 0 ? "," : "").append(weights[i]);   // finite: probabilities
        line.append("]}\n");
        try {
            out.append(line);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the expert trace: " + e.getMessage(), e);
        }
        lines++;
    }

    /** Lines written so far. */
    public long lines() { return lines; }

    public void flush() {
        try {
            out.flush();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the expert trace: " + e.getMessage(), e);
        }
    }
}
