package io.moe4j.cli;

import io.moe4j.kernel.Kernels;
import io.moe4j.parallel.WorkerPool;
import picocli.CommandLine.Command;

import java.lang.management.ManagementFactory;
import java.util.Locale;

/** {@code moe4j info}: the JVM, the kernel path in use and why, vector width, cores and memory. */
@Command(name = "info", mixinStandardHelpOptions = true,
        description = "Show the JVM, the SIMD path in use and why, vector width, cores and memory.")
final class InfoCommand implements Runnable {

    @Override
    public void run() {
        Kernels k = Kernels.get();
        Runtime rt = Runtime.getRuntime();
        long physical = physicalMemory();
        System.out.printf(Locale.ROOT, "moe4j       %s%n", new Main.Version().getVersion()[0]);
        System.out.printf(Locale.ROOT, "JVM         %s %s (%s)%n", System.getProperty("java.vm.name"),
                System.getProperty("java.vm.version"), System.getProperty("java.home"));
        System.out.printf(Locale.ROOT, "OS / CPU    %s %s, %s%n", System.getProperty("os.name"),
                System.getProperty("os.arch"), CpuInfo.modelName());
        System.out.printf(Locale.ROOT, "CPU flags   %s%n", CpuInfo.simdFlags());
        System.out.printf(Locale.ROOT, "cores       %d available; worker threads %d (-Dmoe4j.threads to change)%n",
                rt.availableProcessors(), WorkerPool.defaultThreads());
        System.out.printf(Locale.ROOT, "kernels     %s — %s%n", k.path(), k.reason());
        if (k.vectorBits() > 0) {
            System.out.printf(Locale.ROOT, "vector      %d bits = %d floats per vector%n", k.vectorBits(), k.vectorBits() / 32);
        }
        System.out.printf(Locale.ROOT, "memory      heap max %s; physical %s%n", bytes(rt.maxMemory()),
                physical > 0 ? bytes(physical) : "unknown");
    }

    private static long physicalMemory() {
        if (ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os) {
            return os.getTotalMemorySize();
        }
        return -1;
    }

    static String bytes(long b) {
        if (b >= 1L << 30) return String.format(Locale.ROOT, "%.1f GiB", b / (double) (1L << 30));
        if (b >= 1L << 20) return String.format(Locale.ROOT, "%.1f MiB", b / (double) (1L << 20));
        return b + " B";
    }
}
