package io.moe4j.cli;

/** A mistake the user can fix (missing file, bad value): printed as one line, no stack trace. */
public final class UserException extends RuntimeException {
    private final int exitCode;

    public UserException(String message) { this(message, 1); }

    public UserException(String message, int exitCode) {
        super(message);
        this.exitCode = exitCode;
    }

    public int exitCode() { return exitCode; }
}
