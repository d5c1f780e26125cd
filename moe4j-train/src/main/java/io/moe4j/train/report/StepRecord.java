package io.moe4j.train.report;

import java.util.List;

/**
 * One optimiser step in the run log.
 *
 * @param step         0-based step index
 * @param loss         mean cross-entropy over the step's micro-batches (nats per token)
 * @param aux          mean auxiliary loss (coefficients included)
 * @param lr           learning rate applied (schedule × rollback backoff)
 * @param gradNorm     global gradient norm before clipping
 * @param tokensPerSec training tokens per second of this step (wall clock; the only non-reproducible field)
 * @param tokens       training tokens seen so far, this step included
 * @param layers       per MoE layer
 */
public record StepRecord(int step, double loss, double aux, double lr, double gradNorm, double tokensPerSec,
                         long tokens, List<LayerRecord> layers) {

    /** Mean imbalance (max/mean) over layers, 1 for a dense model. */
    public double meanImbalance() {
        return layers.isEmpty() ? 1.0 : layers.stream().mapToDouble(LayerRecord::imbalance).average().orElse(1.0);
    }
}
