package io.moe4j.bench;

import io.moe4j.kernel.Kernels;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/**
 * What a benchmark result depends on, printed in its header: CPU model and SIMD flags (from /proc/cpuinfo on
 * Linux), cores, JVM, and the kernel path moe4j chose.
 *
 * <p>Non-goal: no CPU frequency, topology or cache sizes.
 */
public record Machine(String cpu, String simdFlags, int cores, String jvm,
                      String kernels, String kernelReason, int vectorBits, String gemm, String quant) {

    private static final Set<String> FLAGS = Set.of("avx", "avx2", "fma", "f16c", "avx512f", "avx512bw",
            "avx512_vnni", "avx512_bf16", "avx_vnni", "asimd", "sve");

    /** This machine, with the kernels from {@link Kernels#get()}. */
    public static Machine detect() {
        Kernels k = Kernels.get();
        return detect(k.gemm().name(), k.quant().name());
    }

    /** This machine, naming the GEMM and quantized-matmul kernels being measured. */
    public static Machine detect(String gemm, String quant) {
        Kernels k = Kernels.get();
        String cpu = System.getProperty("os.arch");
        String flags = "";
        try {
            List<String> lines = Files.readAllLines(Path.of("/proc/cpuinfo"));
            String model = field(lines, "model name");
            if (model != null) cpu = model;
            flags = field(lines, "flags");
            if (flags == null) flags = field(lines, "Features");
        } catch (IOException | SecurityException e) {
            // not Linux: keep os.arch and no flags
        }
        Set<String> simd = new TreeSet<>();
        if (flags != null) for (String f : flags.split("\\s+")) if (FLAGS.contains(f)) simd.add(f);
        return new Machine(cpu, simd.isEmpty() ? "unknown" : String.join(" ", simd),
                Runtime.getRuntime().availableProcessors(),
                System.getProperty("java.vm.name") + " " + System.getProperty("java.vm.version"),
                k.path(), k.reason(), k.vectorBits(), gemm, quant);
    }

    private static String field(List<String> lines, String name) {
        for (String l : lines) {
            int c = l.indexOf(':');
            if (c > 0 && l.substring(0, c).trim().equals(name)) return l.substring(c + 1).trim();
        }
        return null;
    }
}
