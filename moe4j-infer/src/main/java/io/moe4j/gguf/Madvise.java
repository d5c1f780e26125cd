package io.moe4j.gguf;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * {@code madvise(2)} through the FFM API, for dropping pages of the mapped file that moe4j has copied elsewhere.
 * Linux only ({@code MADV_DONTNEED} = 4); anywhere else, or without native access, it does nothing: the pages
 * then simply stay resident until the file is closed.
 */
final class Madvise {
    private static final int MADV_DONTNEED = 4;
    private static final MethodHandle MADVISE = find();

    private Madvise() {}

    private static MethodHandle find() {
        if (!System.getProperty("os.name", "").toLowerCase(java.util.Locale.ROOT).contains("linux")) return null;
        try {
            Linker linker = Linker.nativeLinker();
            return linker.defaultLookup().find("madvise").map(a -> linker.downcallHandle(a,
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT))).orElse(null);
        } catch (RuntimeException | Error e) { // no native access: keep the pages
            return null;
        }
    }

    /** madvise(address, length, MADV_DONTNEED) on page-aligned {@code address}; failures are ignored. */
    static void dontNeed(long address, long length) {
        if (MADVISE == null) return;
        try {
            int rc = (int) MADVISE.invokeExact(MemorySegment.ofAddress(address), length, MADV_DONTNEED);
            assert rc == 0 || rc == -1;
        } catch (Throwable e) {
            // best effort
        }
    }
}
