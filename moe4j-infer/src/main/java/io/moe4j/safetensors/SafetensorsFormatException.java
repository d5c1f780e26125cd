package io.moe4j.safetensors;

import java.io.IOException;

/** A file that is not well-formed safetensors; the message names the file and what is wrong. */
public final class SafetensorsFormatException extends IOException {
    public SafetensorsFormatException(String file, String message) {
        super(file + ": " + message);
    }
}
