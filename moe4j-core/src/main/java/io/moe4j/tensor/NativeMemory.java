package io.moe4j.tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.Locale;

/**
 * Large off-heap buffers for weights copied at load time (repacked experts), straight from {@code mmap(2)} on Linux
 * with transparent huge pages requested ({@code madvise(MADV_HUGEPAGE)}), else from the arena.
 *
 * <p><b>Why.</b> Fresh memory is expensive on a virtual machine: every first touch of a 4 KB page faults into the
 * guest kernel (and often into the host). Measured on the 2-vCPU KVM guests moe4j is developed on: repacking a
 * 7.4 GB model into {@code Arena.allocate} memory took ~30 s, half of it in {@code clear_page_erms} (perf) — the
 * arena also zero-fills, touching every page once before the copy touches it again. An anonymous mapping is
 * zero already (no second pass), and with 2 MB pages it takes 512 times fewer faults. Huge pages also mean fewer
 * TLB misses when the kernels stream the weights.
 *
 * <p>The mapping is unmapped when {@code arena} closes. Anywhere this is not available (other OS, no native
 * access) it falls back to {@code arena.allocate(bytes, 64)}.
 */
public final class NativeMemory {
    private static final long HUGE = 2L << 20;
    private static final int PROT_READ_WRITE = 0x1 | 0x2, MAP_PRIVATE_ANONYMOUS = 0x02 | 0x20, MADV_HUGEPAGE = 14, MADV_DONTNEED = 4;
    private static final MethodHandle MMAP, MUNMAP, MADVISE;

    static {
        MethodHandle mmap = null, munmap = null, madvise = null;
        if (System.getProperty("os.name", "").toLowerCase(Locale.ROOT).contains("linux")
                && !"false".equalsIgnoreCase(System.getProperty("moe4j.mmapAlloc"))) {
            try {
                Linker linker = Linker.nativeLinker();
                SymbolLookup libc = linker.defaultLookup();
                mmap = linker.downcallHandle(libc.find("mmap").orElseThrow(), FunctionDescriptor.of(ValueLayout.ADDRESS,
                        ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG));
                munmap = linker.downcallHandle(libc.find("munmap").orElseThrow(),
                        FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
                madvise = linker.downcallHandle(libc.find("madvise").orElseThrow(),
                        FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT));
            } catch (RuntimeException | Error e) { // no native access or no libc symbols: the arena fallback
                mmap = munmap = madvise = null;
            }
        }
        MMAP = mmap;
        MUNMAP = munmap;
        MADVISE = madvise;
    }

    private NativeMemory() {}

    /**
     * {@code bytes} of zeroed memory, 2 MB aligned when mapped (64 bytes otherwise), freed with {@code arena}.
     *
     * @throws OutOfMemoryError if neither the mapping nor the arena can provide it
     */
    public static MemorySegment allocate(Arena arena, long bytes) {
        if (bytes <= 0) return arena.allocate(Math.max(bytes, 0), 64);
        if (MMAP != null && bytes >= HUGE) {
            long len = bytes + HUGE; // room to align the start to a huge page
            try {
                MemorySegment base = (MemorySegment) MMAP.invokeExact(MemorySegment.NULL, len, PROT_READ_WRITE, MAP_PRIVATE_ANONYMOUS, -1, 0L);
                long addr = base.address();
                if (addr != -1L && addr != 0L) {
                    long start = (addr + HUGE - 1) / HUGE * HUGE;
                    int ignored = (int) MADVISE.invokeExact(MemorySegment.ofAddress(start), bytes, MADV_HUGEPAGE);
                    return MemorySegment.ofAddress(start).reinterpret(bytes, arena, s -> unmap(addr, len));
                }
            } catch (Throwable e) {
                // fall through to the arena
            }
        }
        return arena.allocate(bytes, 64);
    }

    /**
     * {@code madvise(address, length, MADV_DONTNEED)} on a page-aligned range of a read-only file mapping: its pages
     * stop counting towards the process's resident memory (they come back from the file if read again). For mapped
     * weights that were copied elsewhere. Best effort: does nothing where madvise is not available.
     */
    public static void releaseMapped(long address, long length) {
        if (MADVISE == null || length <= 0) return;
        try {
            int ignored = (int) MADVISE.invokeExact(MemorySegment.ofAddress(address), length, MADV_DONTNEED);
        } catch (Throwable e) {
            // best effort
        }
    }

    private static void unmap(long addr, long len) {
        try {
            int ignored = (int) MUNMAP.invokeExact(MemorySegment.ofAddress(addr), len);
        } catch (Throwable e) {
            // nothing more to do at close
        }
    }
}
