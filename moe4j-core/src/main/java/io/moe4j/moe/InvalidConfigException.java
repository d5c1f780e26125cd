package io.moe4j.moe;

/** A configuration value is invalid; the message names the field. */
public final class InvalidConfigException extends IllegalArgumentException {
    public InvalidConfigException(String message) { super(message); }
}
