package io.moe4j.bench;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Runs a PyTorch benchmark script from this module's resources ({@code /torch/NAME}) the way PEERS.md says torch
 * is fastest here: Debian's /usr/bin/python3, {@code OMP_WAIT_POLICY=PASSIVE}, OpenBLAS and OpenMP thread counts
 * set before torch starts. The script prints one JSON object on stdout; {@link #times} reads its timing arrays.
 */
final class TorchBench {
    private TorchBench() {}

    /**
     * The script's stdout, or null when it could not run (torch missing, failed, timed out); the reason is added to
     * {@code notes}.
     */
    static String run(String script, List<String> args, int threads, int timeoutSeconds, List<String> notes) {
        try {
            Path py = Files.createTempFile("moe4j-bench-", ".py");
            try {
                try (InputStream in = TorchBench.class.getResourceAsStream("/torch/" + script)) {
                    if (in == null) throw new IOException("missing resource torch/" + script);
                    Files.copy(in, py, StandardCopyOption.REPLACE_EXISTING);
                }
                List<String> cmd = new ArrayList<>(List.of("/usr/bin/python3", py.toString()));
                cmd.addAll(args);
                ProcessBuilder pb = new ProcessBuilder(cmd);
                pb.environment().put("OMP_WAIT_POLICY", "PASSIVE");
                pb.environment().put("OPENBLAS_NUM_THREADS", "" + threads);
                pb.environment().put("OMP_NUM_THREADS", "" + threads);
                pb.redirectError(ProcessBuilder.Redirect.DISCARD);
                Process p = pb.start();
                String json = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                boolean done = p.waitFor(timeoutSeconds, TimeUnit.SECONDS);
                if (!done) p.destroyForcibly();
                if (!done || p.exitValue() != 0 || json.isBlank()) {
                    notes.add("PyTorch peer not available (install Debian's python3-torch); moe4j shown alone");
                    return null;
                }
                return json;
            } finally {
                Files.deleteIfExists(py);
            }
        } catch (IOException e) {
            notes.add("PyTorch peer could not run: " + e.getMessage());
            return null;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return null;
        }
    }

    /**
     * A PyTorch script started in serve mode (its last argument {@code serve}): it warms up, prints {@code ready},
     * then runs one call per {@link #time} request. Lets a benchmark alternate PyTorch's calls with its own, so that
     * a change in the machine's load hits both alike (a separate PyTorch run minutes later does not).
     */
    static final class Server implements AutoCloseable {
        private final Process process;
        private final Path script;
        private final java.io.BufferedReader out;
        private final java.io.Writer in;
        private double lastCpu = Double.NaN;

        private Server(Process process, Path script) {
            this.process = process;
            this.script = script;
            this.out = process.inputReader(StandardCharsets.UTF_8);
            this.in = process.outputWriter(StandardCharsets.UTF_8);
        }

        /** Starts the script and waits for its warm-up; null (reason in {@code notes}) when it cannot run. */
        static Server start(String script, List<String> args, int threads, List<String> notes) {
            Path py = null;
            try {
                py = Files.createTempFile("moe4j-bench-", ".py");
                try (InputStream res = TorchBench.class.getResourceAsStream("/torch/" + script)) {
                    if (res == null) throw new IOException("missing resource torch/" + script);
                    Files.copy(res, py, StandardCopyOption.REPLACE_EXISTING);
                }
                List<String> cmd = new ArrayList<>(List.of("/usr/bin/python3", py.toString()));
                cmd.addAll(args);
                cmd.add("serve");
                ProcessBuilder pb = new ProcessBuilder(cmd);
                pb.environment().put("OMP_WAIT_POLICY", "PASSIVE");
                pb.environment().put("OPENBLAS_NUM_THREADS", "" + threads);
                pb.environment().put("OMP_NUM_THREADS", "" + threads);
                pb.redirectError(ProcessBuilder.Redirect.DISCARD);
                Server s = new Server(pb.start(), py);
                String first = s.out.readLine();
                if (!"ready".equals(first)) {
                    s.close();
                    notes.add("PyTorch peer (lockstep) not available: " + (first == null ? "no output" : first));
                    return null;
                }
                return s;
            } catch (IOException e) {
                notes.add("PyTorch peer (lockstep) could not run: " + e.getMessage());
                if (py != null) {
                    try {
                        Files.deleteIfExists(py);
                    } catch (IOException ignored) {
                        // a leftover temp file is harmless
                    }
                }
                return null;
            }
        }

        /**
         * Runs one call of {@code name} (e.g. loop_fwdbwd) and returns PyTorch's own wall-clock timing of it, in
         * seconds; {@link #lastCpu} then holds the CPU seconds its threads used.
         */
        double time(String name) {
            try {
                in.write(name + "\n");
                in.flush();
                String line = out.readLine();
                if (line == null) throw new IllegalStateException("PyTorch peer exited during " + name);
                String[] parts = line.trim().split("\\s+");
                lastCpu = parts.length > 1 ? Double.parseDouble(parts[1]) : Double.NaN;
                return Double.parseDouble(parts[0]);
            } catch (IOException e) {
                throw new IllegalStateException("PyTorch peer failed during " + name + ": " + e.getMessage(), e);
            }
        }

        /** CPU seconds (all threads) of the last {@link #time} call. */
        double lastCpu() { return lastCpu; }

        @Override
        public void close() {
            try {
                in.write("\n");
                in.flush();
            } catch (IOException ignored) {
                // the process may already be gone
            }
            try {
                if (!process.waitFor(10, TimeUnit.SECONDS)) process.destroyForcibly();
            } catch (InterruptedException e) {
                process.destroyForcibly();
                Thread.currentThread().interrupt();
            }
            try {
                Files.deleteIfExists(script);
            } catch (IOException ignored) {
                // a leftover temp file is harmless
            }
        }
    }

    /** The numbers of the JSON array under {@code key}, sorted ascending. */
    static double[] times(String json, String key) {
        int i = json.indexOf('"' + key + '"');
        if (i < 0) throw new IllegalArgumentException("PyTorch peer output has no \"" + key + "\"");
        int a = json.indexOf('[', i), b = json.indexOf(']', a);
        String[] parts = json.substring(a + 1, b).split(",");
        double[] v = new double[parts.length];
        for (int j = 0; j < v.length; j++) v[j] = Double.parseDouble(parts[j].trim());
        Arrays.sort(v);
        return v;
    }

    static double min(String json, String key) { return times(json, key)[0]; }

    static double median(String json, String key) {
        double[] v = times(json, key);
        return v.length % 2 == 1 ? v[v.length / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
    }
}
