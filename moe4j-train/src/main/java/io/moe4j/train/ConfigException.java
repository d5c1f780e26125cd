package io.moe4j.train;

/** A run configuration is invalid; the message names the field (and the file when there is one). */
public final class ConfigException extends IllegalArgumentException {
    public ConfigException(String message) { super(message); }
}
