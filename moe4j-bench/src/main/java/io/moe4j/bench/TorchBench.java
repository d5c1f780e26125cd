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
