package io.moe4j.train.optim;

/**
 * Learning rate per optimiser step: linear warm-up from peak/warmup to peak over {@code warmupSteps}, then cosine
 * decay from peak to {@code minLr} at {@code totalSteps} (held at minLr after that).
 *
 * <pre>
 *   step &lt; W:  lr = peak · (step + 1) / W
 *   else:      p = min(1, (step − W) / max(1, total − W)),  lr = min + ½ (peak − min) (1 + cos(π p))
 * </pre>
 * {@code step} is the 0-based index of the step about to be taken, so step 0 never runs at lr = 0 (a wasted step).
 *
 * @param peakLr      learning rate at the end of warm-up
 * @param minLr       floor of the cosine decay
 * @param warmupSteps steps of linear warm-up (0 = none)
 * @param totalSteps  steps of the whole run
 */
public record LrSchedule(double peakLr, double minLr, int warmupSteps, int totalSteps) {

    public LrSchedule {
        if (!(peakLr > 0) || !Double.isFinite(peakLr)) throw new IllegalArgumentException("train.lr must be > 0, got " + peakLr);
        if (!(minLr >= 0) || minLr > peakLr) {
            throw new IllegalArgumentException("train.minLr must be in [0, train.lr = " + peakLr + "], got " + minLr);
        }
        if (warmupSteps < 0) throw new IllegalArgumentException("train.warmupSteps must be >= 0, got " + warmupSteps);
        if (totalSteps < 1) throw new IllegalArgumentException("train.steps must be >= 1, got " + totalSteps);
    }

    public double lr(int step) {
        if (step < warmupSteps) return peakLr * (step + 1) / warmupSteps;
        double p = Math.min(1.0, (step - warmupSteps) / (double) Math.max(1, totalSteps - warmupSteps));
        return minLr + 0.5 * (peakLr - minLr) * (1 + Math.cos(Math.PI * p));
    }
}
