package io.moe4j.cli;

import java.io.FileNotFoundException;
import java.io.UncheckedIOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.NoSuchFileException;

/** Turns exceptions into the one line a user sees. */
final class UserErrors {
    private UserErrors() {}

    static String describe(Throwable ex) {
        Throwable t = ex instanceof UncheckedIOException u && u.getCause() != null ? u.getCause() : ex;
        if (t instanceof NoSuchFileException nf) return "no such file: " + nf.getFile();
        if (t instanceof AccessDeniedException ad) return "permission denied: " + ad.getFile();
        if (t instanceof FileNotFoundException fnf) return "file not found: " + fnf.getMessage();
        if (t instanceof OutOfMemoryError) {
            return "out of memory: " + t.getMessage() + " (raise the heap with MOE4J_JAVA_OPTS=-Xmx...)";
        }
        String msg = t.getMessage();
        return msg == null || msg.isBlank() ? t.getClass().getSimpleName() : msg;
    }
}
