package io.moe4j.bench;

import java.io.PrintStream;

/**
 * The "what is running now" line on stderr. On a terminal it rewrites one line in place; otherwise (logs,
 * tests) it prints one line per step. Non-goal: no time estimates.
 */
final class Progress {
    private final PrintStream err;
    private final boolean terminal;
    private final int total;
    private int done;
    private boolean dirty;

    Progress(PrintStream err, int total) {
        this.err = err;
        this.total = total;
        java.io.Console c = System.console();
        this.terminal = err == System.err && c != null && c.isTerminal();
    }

    /** Announces the next step. */
    void step(String what) {
        done++;
        String line = "bench [" + done + "/" + total + "] " + what;
        if (terminal) {
            err.print("\r\033[K" + line);
            dirty = true;
        } else {
            err.println(line);
        }
        err.flush();
    }

    /** Clears the in-place line before something else is printed. */
    void clear() {
        if (terminal && dirty) {
            err.print("\r\033[K");
            err.flush();
            dirty = false;
        }
    }
}
