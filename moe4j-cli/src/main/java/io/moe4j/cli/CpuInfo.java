package io.moe4j.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/** CPU model and SIMD flags from /proc/cpuinfo (Linux); "unknown" elsewhere. */
final class CpuInfo {
    private CpuInfo() {}

    private static final Set<String> INTERESTING = Set.of("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f",
            "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "avx_vnni", "asimd", "sve");

    static String modelName() {
        return field("model name").orElse(System.getProperty("os.arch"));
    }

    static String simdFlags() {
        String flags = field("flags").or(() -> field("Features")).orElse("");
        Set<String> out = new TreeSet<>();
        for (String f : flags.split("\\s+")) if (INTERESTING.contains(f)) out.add(f);
        return out.isEmpty() ? "unknown" : String.join(" ", out);
    }

    private static java.util.Optional<String> field(String name) {
        try {
            List<String> lines = Files.readAllLines(Path.of("/proc/cpuinfo"));
            for (String l : lines) {
                int c = l.indexOf(':');
                if (c > 0 && l.substring(0, c).trim().equals(name)) return java.util.Optional.of(l.substring(c + 1).trim());
            }
        } catch (IOException | SecurityException ignored) {
            // not Linux: fall back
        }
        return java.util.Optional.empty();
    }
}
