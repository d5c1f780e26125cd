package io.moe4j.gguf;

import java.io.IOException;

/**
 * A GGUF file is malformed or uses something this reader refuses (v1, big-endian, a retired tensor type).
 * The message names the file, the byte offset where the problem was found and what was wrong, so a user can
 * tell a truncated download from a converter bug.
 */
public final class GgufFormatException extends IOException {
    private final String file;
    private final long offset;
    private final String problem;

    public GgufFormatException(String file, long offset, String problem) {
        super(file + ": at byte " + offset + ": " + problem);
        this.file = file;
        this.offset = offset;
        this.problem = problem;
    }

    /** The file name as given to the reader. */
    public String file() { return file; }

    /** Byte offset in the file where the problem was detected. */
    public long offset() { return offset; }

    /** What was wrong, without the file name and offset. */
    public String problem() { return problem; }
}
