package io.moe4j.train.model;

/**
 * Losses of one forward pass over a batch.
 *
 * @param ce     mean next-token cross-entropy over the targets (nats per token)
 * @param aux    sum over MoE layers of the auxiliary losses already scaled by their coefficients
 *               (balance, z-loss, router-specific such as ReMoE L1 or top-p entropy)
 * @param tokens number of target tokens the mean is over
 */
public record LossBreakdown(double ce, double aux, int tokens) {
    /** What the optimiser minimises. */
    public double total() { return ce + aux; }
}
