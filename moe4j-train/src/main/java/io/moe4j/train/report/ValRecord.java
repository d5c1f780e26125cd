package io.moe4j.train.report;

/**
 * A validation pass in the run log.
 *
 * @param step after this many completed steps − 1 (the step index it followed)
 * @param loss mean cross-entropy per target token (nats)
 * @param bpb  bits per UTF-8 byte of the validation text: loss · tokens / (bytes · ln 2)
 */
public record ValRecord(int step, double loss, double bpb) {
}
