package io.moe4j.infer;

/**
 * A GGUF file that is well-formed but cannot be run as a model: an unsupported architecture or tensor type, a
 * missing metadata key or tensor, a tensor of the wrong shape. The message names the file and the key or tensor,
 * so a command-line tool can print it as the one line a user sees.
 */
public final class ModelFormatException extends IllegalArgumentException {
    public ModelFormatException(String message) {
        super(message);
    }
}
