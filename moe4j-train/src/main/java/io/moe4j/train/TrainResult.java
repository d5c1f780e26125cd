package io.moe4j.train;

import java.nio.file.Path;

/**
 * What a finished run reports.
 *
 * @param name          run name
 * @param steps         steps completed
 * @param trainLoss     mean training loss over the last 10% of steps (at least the last one)
 * @param valLoss       final validation loss (nats per token)
 * @param bitsPerByte   final validation bits per byte
 * @param tokensPerSec  median training tokens per second over this process's steps (warm-up and validation excluded)
 * @param seconds       wall-clock seconds of this process's steps (validation and checkpoints included)
 * @param params        trainable parameters
 * @param activeParams  parameters used per token (routed experts counted by the measured experts per token / E)
 * @param meanImbalance mean over the last 10% of steps of the layers' mean max/mean load (1 for dense)
 * @param dropped       mean dropped fraction over the same steps
 * @param activeExperts mean experts computed per token over the same steps (0 for dense)
 * @param runDir        where log, checkpoints and report are
 * @param checkpoint    the last checkpoint written
 */
public record TrainResult(String name, int steps, double trainLoss, double valLoss, double bitsPerByte,
                          double tokensPerSec, double seconds, long params, long activeParams,
                          double meanImbalance, double dropped, double activeExperts, Path runDir, Path checkpoint) {
}
