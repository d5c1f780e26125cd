package io.moe4j.train.data;

/**
 * A corpus the pipeline cannot use: no sources, a path that matches nothing, an unreadable file, no text at all, an
 * empty validation split. The message names the source, file or option at fault, so the CLI prints it as is.
 */
public class CorpusException extends IllegalArgumentException {

    public CorpusException(String message) {
        super(message);
    }

    public CorpusException(String message, Throwable cause) {
        super(message, cause);
    }
}
