package io.moe4j.kernel;

import io.moe4j.kernel.gemm.Gemm;
import io.moe4j.kernel.gemm.ScalarGemm;
import io.moe4j.kernel.quant.QuantMatmul;
import io.moe4j.kernel.quant.ScalarQuantMatmul;
import io.moe4j.kernel.row.RowOps;
import io.moe4j.kernel.row.ScalarRowOps;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.Locale;

/**
 * The kernel provider: one set of compute kernels (GEMM, quantized matmul, row ops), chosen once per JVM.
 *
 * <p>Two implementations exist for every kernel: a plain scalar reference (readable, the ground truth of tests)
 * and a Vector API implementation (the fast path). {@link #get()} picks the Vector API path when it can run well
 * and logs which path runs and why. {@code -Dmoe4j.kernels=scalar} forces the scalar path
 * ({@code simd} forces the vector path and fails if it cannot load; {@code auto} is the default).
 *
 * <p>The SIMD classes are loaded reflectively so that a JVM without {@code jdk.incubator.vector} never links them
 * (pattern from Lucene's VectorizationProvider).
 */
public final class Kernels {
    private static final Logger LOG = LoggerFactory.getLogger(Kernels.class);
    public static final String PROPERTY = "moe4j.kernels";

    private static volatile Kernels chosen;
    private static volatile Kernels scalar;

    private final String path;
    private final String reason;
    private final int vectorBits;
    private final Gemm gemm;
    private final QuantMatmul quant;
    private final RowOps rows;

    private Kernels(String path, String reason, int vectorBits, Gemm gemm, QuantMatmul quant, RowOps rows) {
        this.path = path;
        this.reason = reason;
        this.vectorBits = vectorBits;
        this.gemm = gemm;
        this.quant = quant;
        this.rows = rows;
    }

    /** The kernels this JVM uses, chosen on first call. */
    public static Kernels get() {
        Kernels k = chosen;
        if (k == null) {
            synchronized (Kernels.class) {
                k = chosen;
                if (k == null) {
                    chosen = k = choose();
                    LOG.info("kernels: {} ({})", k.path, k.reason);
                }
            }
        }
        return k;
    }

    /** The scalar reference kernels (always available). */
    public static Kernels scalar() {
        Kernels k = scalar;
        if (k == null) {
            scalar = k = new Kernels("scalar", "reference implementation", 0,
                    new ScalarGemm(), new ScalarQuantMatmul(), new ScalarRowOps());
        }
        return k;
    }

    /**
     * The Vector API kernels, or an exception saying why they cannot run here. Tests use this to compare both
     * paths in one JVM.
     */
    public static Kernels simd() {
        String why = simdUnavailableReason();
        if (why != null) throw new IllegalStateException("SIMD kernels unavailable: " + why);
        return loadSimd("Vector API");
    }

    private static Kernels choose() {
        String mode = System.getProperty(PROPERTY, "auto").trim().toLowerCase(Locale.ROOT);
        switch (mode) {
            case "scalar" -> {
                Kernels s = scalar();
                return new Kernels("scalar", PROPERTY + "=scalar was requested", 0, s.gemm, s.quant, s.rows);
            }
            case "simd" -> {
                return simd();
            }
            case "auto" -> {
                String why = simdUnavailableReason();
                if (why != null) {
                    Kernels s = scalar();
                    LOG.warn("Vector API kernels not used: {}", why);
                    return new Kernels("scalar", "fallback: " + why, 0, s.gemm, s.quant, s.rows);
                }
                return loadSimd("Vector API available");
            }
            default -> throw new IllegalArgumentException(PROPERTY + " must be auto, scalar or simd, got '" + mode + "'");
        }
    }

    /** Null when the Vector API path can run well, else the reason it cannot. */
    static String simdUnavailableReason() {
        if (ModuleLayer.boot().findModule("jdk.incubator.vector").isEmpty()) {
            return "module jdk.incubator.vector is not loaded (start the JVM with --add-modules=jdk.incubator.vector)";
        }
        String vmInfo = System.getProperty("java.vm.info", "");
        if (vmInfo.contains("interpreted mode")) {
            return "the JVM runs in interpreted mode (-Xint), where the Vector API is far slower than scalar code";
        }
        int bits = SimdProbe.preferredBits();
        if (bits < 128) {
            return "the CPU's preferred vector width is " + bits + " bits";
        }
        return null;
    }

    private static Kernels loadSimd(String reason) {
        try {
            Gemm g = (Gemm) Class.forName("io.moe4j.kernel.gemm.SimdGemm").getDeclaredConstructor().newInstance();
            QuantMatmul q = (QuantMatmul) Class.forName("io.moe4j.kernel.quant.SimdQuantMatmul").getDeclaredConstructor().newInstance();
            RowOps r = (RowOps) Class.forName("io.moe4j.kernel.row.SimdRowOps").getDeclaredConstructor().newInstance();
            int bits = SimdProbe.preferredBits();
            return new Kernels("simd", reason + ", " + bits + "-bit vectors", bits, g, q, r);
        } catch (ReflectiveOperationException | LinkageError e) {
            throw new IllegalStateException("cannot load the Vector API kernels: " + e, e);
        }
    }

    /** "simd" or "scalar". */
    public String path() { return path; }
    /** Why this path was chosen, for {@code moe4j info} and logs. */
    public String reason() { return reason; }
    /** Vector width in bits on the SIMD path, 0 on the scalar path. */
    public int vectorBits() { return vectorBits; }
    public Gemm gemm() { return gemm; }
    public QuantMatmul quant() { return quant; }
    public RowOps rows() { return rows; }

    @Override
    public String toString() { return path + " (" + reason + ")"; }
}
