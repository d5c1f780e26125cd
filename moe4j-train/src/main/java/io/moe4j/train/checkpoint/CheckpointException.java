package io.moe4j.train.checkpoint;

import java.nio.file.Path;

/** A checkpoint cannot be used: the message names the file and what is wrong with it. */
public final class CheckpointException extends RuntimeException {
    private final Path file;

    public CheckpointException(Path file, String problem) {
        super("checkpoint " + file + ": " + problem);
        this.file = file;
    }

    public CheckpointException(Path file, String problem, Throwable cause) {
        super("checkpoint " + file + ": " + problem, cause);
        this.file = file;
    }

    public Path file() { return file; }
}
