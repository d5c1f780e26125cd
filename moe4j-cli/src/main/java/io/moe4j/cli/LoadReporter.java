package io.moe4j.cli;

import io.moe4j.infer.Model;

import java.io.PrintStream;
import java.util.Locale;

/**
 * Tells the user what loading a model is doing when it takes a while: on a terminal, one line rewritten in place
 * ({@code loading m.gguf: 42% of 7.4 GB, repacking Q8_0/Q4_0 experts for AVX-512}), at most every 200 ms;
 * elsewhere nothing until the end. Then one summary line with the time, if loading took more than a second.
 */
final class LoadReporter implements Model.LoadProgress {
    private final PrintStream err;
    private final String name;
    private final boolean repack, live;
    private final long start = System.nanoTime();
    private long lastPrint;
    private boolean printed;

    LoadReporter(PrintStream err, String name, boolean repack) {
        this.err = err;
        this.name = name;
        this.repack = repack;
        this.live = System.console() != null;
    }

    @Override
    public void loaded(long bytesDone, long bytesTotal) {
        long now = System.nanoTime();
        if (!live || now - start < 500_000_000L || now - lastPrint < 200_000_000L) return;
        lastPrint = now;
        printed = true;
        err.printf(Locale.ROOT, "\rloading %s: %3d%% of %.1f GB%s", name, bytesTotal == 0 ? 100 : (int) (100 * bytesDone / bytesTotal),
                bytesTotal / 1e9, repack ? ", repacking Q8_0/Q4_0 weights into 16-row groups (--no-repack skips this)" : "");
        err.flush();
    }

    /** After loading: ends the live line and says how long it took (if it was long enough to notice). */
    void done(long repackedBytes) {
        double s = (System.nanoTime() - start) / 1e9;
        if (printed) err.print("\r\033[K");
        if (s >= 1) {
            err.printf(Locale.ROOT, "loaded %s in %.1f s%s%n", name, s, repackedBytes > 0
                    ? String.format(Locale.ROOT, " (%.1f GB repacked for faster matmuls; --no-repack loads faster, runs slower)", repackedBytes / 1e9) : "");
        }
        err.flush();
    }
}
