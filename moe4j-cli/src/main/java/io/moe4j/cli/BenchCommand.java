package io.moe4j.cli;

import picocli.CommandLine.Command;

/** {@code moe4j bench ...}: side-by-side benchmarks. PLACEHOLDER in the skeleton commit. */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Benchmarks that run moe4j and the machine's references side by side.")
final class BenchCommand implements Runnable {
    @Override
    public void run() {
        throw new UserException("no benchmarks yet");
    }
}
