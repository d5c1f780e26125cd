package io.moe4j.train;

/** Training stopped after too many consecutive non-finite steps; the message names the last offender. */
public final class TrainingDivergedException extends RuntimeException {
    public TrainingDivergedException(String message) { super(message); }
}
