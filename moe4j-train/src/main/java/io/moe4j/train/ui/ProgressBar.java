package io.moe4j.train.ui;

import io.moe4j.train.TrainConfig;
import io.moe4j.train.Trainer;
import io.moe4j.train.report.StepRecord;
import io.moe4j.train.report.ValRecord;

import java.io.PrintStream;
import java.util.Locale;
import java.util.function.LongSupplier;

/**
 * What the user sees while training. On a terminal: one line redrawn in place after every step —
 * <pre>  tiny  [██████▍        ]  120/300  40%  12.3k tok/s  loss 3.214  aux 0.0123  imb 1.32  ETA 0:41</pre>
 * with validations and events printed above it. Not on a terminal (logs, CI): the same fields as plain lines every
 * {@code logEvery} steps and at the last step, so a log file is not flooded with carriage returns.
 */
public final class ProgressBar implements Trainer.Listener {
    private static final int BAR = 20;
    private static final String[] PARTIAL = {"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"};

    private final PrintStream out;
    private final boolean tty;
    private final int logEvery;
    private final LongSupplier nanoTime;
    private String name = "";
    private int firstStep;
    private long startNanos;
    private boolean dirty;
    private double rate = Double.NaN;          // tokens/s, exponential moving average over recent steps

    public ProgressBar(PrintStream out, boolean tty, int logEvery, LongSupplier nanoTime) {
        this.out = out;
        this.tty = tty;
        this.logEvery = Math.max(1, logEvery);
        this.nanoTime = nanoTime;
    }

    /** On stderr, redrawn in place when stderr is a terminal. */
    public static ProgressBar stderr(int logEvery) {
        java.io.Console c = System.console();
        return new ProgressBar(System.err, c != null && c.isTerminal(), logEvery, System::nanoTime);
    }

    @Override
    public void onStart(TrainConfig config, int fromStep, int totalSteps) {
        name = config.name();
        firstStep = fromStep;
        startNanos = nanoTime.getAsLong();
        println(String.format(Locale.ROOT, "%s: training %s, steps %d..%d", name, config.describe(), fromStep + 1, totalSteps));
    }

    @Override
    public void onStep(StepRecord s, int totalSteps) {
        // one step's rate jumps with GC, validation and the machine's other load; smooth it over ~5 steps
        rate = Double.isNaN(rate) ? s.tokensPerSec() : 0.8 * rate + 0.2 * s.tokensPerSec();
        int done = s.step() + 1;
        String line = line(s, totalSteps);
        if (tty) {
            out.print("\r\033[K" + line);
            out.flush();
            dirty = true;
        } else if (done % logEvery == 0 || done == totalSteps || done == firstStep + 1) {
            out.println(line);
        }
    }

    /** The status line of a step (no bar when not on a terminal). */
    String line(StepRecord s, int total) {
        int done = s.step() + 1;
        double frac = total > 0 ? done / (double) total : 1;
        double elapsed = (nanoTime.getAsLong() - startNanos) / 1e9;
        int stepsHere = done - firstStep;
        double eta = stepsHere > 0 ? elapsed / stepsHere * (total - done) : Double.NaN;
        StringBuilder b = new StringBuilder();
        b.append(name).append("  ");
        if (tty) b.append('[').append(bar(frac)).append("]  ");
        b.append(String.format(Locale.ROOT, "%" + String.valueOf(total).length() + "d/%d %3.0f%%", done, total, 100 * frac));
        b.append("  ").append(rate(Double.isNaN(rate) ? s.tokensPerSec() : rate)).append(" tok/s");
        b.append(String.format(Locale.ROOT, "  loss %.4f", s.loss()));
        if (!s.layers().isEmpty()) {
            b.append(String.format(Locale.ROOT, "  aux %.4f  imb %.2f", s.aux(), s.meanImbalance()));
        }
        b.append(String.format(Locale.ROOT, "  lr %.2e", s.lr()));
        b.append("  ETA ").append(duration(eta));
        return b.toString();
    }

    @Override
    public void onValidation(ValRecord v) {
        println(String.format(Locale.ROOT, "%s: validation after step %d: loss %.4f, %.4f bits/byte", name, v.step() + 1,
                v.loss(), v.bpb()));
    }

    @Override
    public void onEvent(String message) { println(name + ": " + message); }

    @Override
    public void onEnd() {
        if (tty && dirty) {
            out.println();
            dirty = false;
        }
        out.flush();
    }

    private void println(String s) {
        if (tty && dirty) out.print("\r\033[K");
        out.println(s);
        out.flush();
        dirty = false;
    }

    static String bar(double frac) {
        double cells = Math.max(0, Math.min(1, frac)) * BAR;
        int full = (int) cells;
        StringBuilder b = new StringBuilder("█".repeat(full));
        if (full < BAR) {
            b.append(PARTIAL[(int) ((cells - full) * 8)]);
            b.append(" ".repeat(BAR - full - (PARTIAL[(int) ((cells - full) * 8)].isEmpty() ? 0 : 1)));
        }
        return b.toString();
    }

    static String rate(double v) {
        if (!Double.isFinite(v)) return "–";
        if (v >= 1e6) return String.format(Locale.ROOT, "%.2fM", v / 1e6);
        if (v >= 1e3) return String.format(Locale.ROOT, "%.1fk", v / 1e3);
        return String.format(Locale.ROOT, "%.0f", v);
    }

    /** "1:02:03", "4:05", or "–" when unknown. */
    static String duration(double seconds) {
        if (!Double.isFinite(seconds) || seconds < 0) return "–";
        long s = Math.round(seconds);
        return s >= 3600 ? String.format(Locale.ROOT, "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
                : String.format(Locale.ROOT, "%d:%02d", s / 60, s % 60);
    }
}
