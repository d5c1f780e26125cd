package io.moe4j.bench;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The system OpenBLAS, called through FFM: {@code cblas_sgemm} as the reference for moe4j's GEMM, and its thread
 * count. Loaded from {@code -Dmoe4j.openblas=PATH} if given, else Debian's {@code libopenblas.so.0}
 * (package {@code libopenblas0-pthread}); {@code -Dmoe4j.openblas=none} disables it.
 *
 * <p>Non-goals: no other BLAS routines, no column-major calls, no fallback to the reference {@code libblas.so.3}
 * (it has no thread control and is not a meaningful speed reference). Segments must be native (off-heap).
 */
public final class OpenBlas {
    /** CBLAS enum values. */
    public static final int ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112;

    /** Where to look, in order (after {@code -Dmoe4j.openblas}). */
    public static final List<String> CANDIDATES = List.of(
            "libopenblas.so.0",
            "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
            "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0");

    /** The line to print when it is missing. */
    public static final String NOT_FOUND = "OpenBLAS not found (apt-get install libopenblas0-pthread)";

    private static final ValueLayout I = ValueLayout.JAVA_INT;
    private static final ValueLayout F = ValueLayout.JAVA_FLOAT;
    private static final ValueLayout P = ValueLayout.ADDRESS;

    private final String library;
    private final MethodHandle sgemm;
    private final MethodHandle setThreads;
    private final MethodHandle getConfig;  // may be null

    private OpenBlas(String library, SymbolLookup lookup) {
        Linker linker = Linker.nativeLinker();
        this.library = library;
        this.sgemm = linker.downcallHandle(lookup.findOrThrow("cblas_sgemm"),
                FunctionDescriptor.ofVoid(I, I, I, I, I, I, F, P, I, P, I, F, P, I));
        this.setThreads = linker.downcallHandle(lookup.findOrThrow("openblas_set_num_threads"),
                FunctionDescriptor.ofVoid(I));
        this.getConfig = lookup.find("openblas_get_config")
                .map(s -> linker.downcallHandle(s, FunctionDescriptor.of(P)))
                .orElse(null);
    }

    private static volatile Optional<OpenBlas> loaded;

    /** The system OpenBLAS, or empty when no candidate library loads (looked up once per JVM). */
    public static Optional<OpenBlas> load() {
        Optional<OpenBlas> o = loaded;
        if (o == null) {
            synchronized (OpenBlas.class) {
                o = loaded;
                if (o == null) loaded = o = tryLoad();
            }
        }
        return o;
    }

    private static Optional<OpenBlas> tryLoad() {
        List<String> names = new ArrayList<>();
        String prop = System.getProperty("moe4j.openblas");
        if (prop != null && prop.trim().equals("none")) return Optional.empty();
        if (prop != null && !prop.isBlank()) names.add(prop.trim());
        names.addAll(CANDIDATES);
        for (String name : names) {
            try {
                SymbolLookup lookup = SymbolLookup.libraryLookup(name, Arena.global());
                if (lookup.find("cblas_sgemm").isPresent() && lookup.find("openblas_set_num_threads").isPresent()) {
                    return Optional.of(new OpenBlas(name, lookup));
                }
            } catch (IllegalArgumentException e) {
                // not loadable under this name: try the next one
            }
        }
        return Optional.empty();
    }

    /** The name or path the library was loaded from. */
    public String library() { return library; }

    /** OpenBLAS's build description, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Zen MAX_THREADS=64". */
    public String config() {
        if (getConfig == null) return "OpenBLAS (version unknown)";
        try {
            MemorySegment s = (MemorySegment) getConfig.invokeExact();
            return s.reinterpret(4096).getString(0).trim();
        } catch (Throwable t) {
            return "OpenBLAS (version unknown)";
        }
    }

    /** Sets the number of threads OpenBLAS uses for the following calls. */
    public void setThreads(int threads) {
        try {
            setThreads.invokeExact(threads);
        } catch (Throwable t) {
            throw new IllegalStateException("openblas_set_num_threads failed", t);
        }
    }

    /**
     * Row-major {@code C = alpha·op(A)·op(B) + beta·C}, with the same argument conventions as
     * {@link io.moe4j.kernel.gemm.Gemm#sgemm} (offsets and leading dimensions count floats).
     */
    public void sgemm(boolean transA, boolean transB, int m, int n, int k, float alpha,
                      MemorySegment a, long aOff, int lda, MemorySegment b, long bOff, int ldb,
                      float beta, MemorySegment c, long cOff, int ldc) {
        // Native code does not bounds-check: do it here, so a wrong call throws instead of crashing the JVM.
        check("A", a, aOff, transA ? k : m, transA ? m : k, lda);
        check("B", b, bOff, transB ? n : k, transB ? k : n, ldb);
        check("C", c, cOff, m, n, ldc);
        MemorySegment pa = aOff == 0 ? a : a.asSlice(aOff * Float.BYTES);
        MemorySegment pb = bOff == 0 ? b : b.asSlice(bOff * Float.BYTES);
        MemorySegment pc = cOff == 0 ? c : c.asSlice(cOff * Float.BYTES);
        try {
            sgemm.invokeExact(ROW_MAJOR, transA ? TRANS : NO_TRANS, transB ? TRANS : NO_TRANS, m, n, k,
                    alpha, pa, lda, pb, ldb, beta, pc, ldc);
        } catch (Throwable t) {
            throw new IllegalStateException("cblas_sgemm failed", t);
        }
    }

    private static void check(String name, MemorySegment s, long off, int rows, int cols, int ld) {
        if (rows < 0 || cols < 0 || ld < Math.max(1, cols) || off < 0) {
            throw new IllegalArgumentException(name + ": bad shape " + rows + "x" + cols + " ld " + ld + " offset " + off);
        }
        if (!s.isNative()) throw new IllegalArgumentException(name + " must be a native (off-heap) segment");
        long needFloats = rows == 0 || cols == 0 ? 0 : off + (long) (rows - 1) * ld + cols;
        if (needFloats * Float.BYTES > s.byteSize()) {
            throw new IllegalArgumentException(name + " needs " + needFloats * Float.BYTES + " bytes, segment has " + s.byteSize());
        }
    }
}
