package io.moe4j.testutil;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Runs a PyTorch reference script from the test resources with Debian's {@code /usr/bin/python3} (the one that
 * has python3-torch; not a pyenv python first on PATH), exchanging JSON files.
 */
public final class TorchPeer {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String PYTHON = System.getProperty("moe4j.python", "/usr/bin/python3");
    private static Boolean available;

    private TorchPeer() {}

    /** True if python3 with torch can be run (checked once). */
    public static synchronized boolean available() {
        if (available == null) {
            try {
                Process p = new ProcessBuilder(PYTHON, "-c", "import torch").redirectErrorStream(true).start();
                available = p.waitFor(120, TimeUnit.SECONDS) && p.exitValue() == 0;
            } catch (IOException | InterruptedException e) {
                available = false;
            }
        }
        return available;
    }

    /** Runs resource script {@code torch/<script>} on {@code input}, returns its JSON output. */
    public static JsonNode run(String script, Map<String, Object> input, Path dir) throws IOException, InterruptedException {
        Path py = dir.resolve(script);
        try (InputStream in = TorchPeer.class.getResourceAsStream("/torch/" + script)) {
            if (in == null) throw new IOException("missing test resource torch/" + script);
            Files.copy(in, py);
        }
        Path inFile = dir.resolve("in.json"), outFile = dir.resolve("out.json");
        JSON.writeValue(inFile.toFile(), input);
        ProcessBuilder pb = new ProcessBuilder(PYTHON, py.toString(), inFile.toString(), outFile.toString())
                .redirectErrorStream(true);
        pb.environment().put("OMP_NUM_THREADS", "1");
        pb.environment().put("OPENBLAS_NUM_THREADS", "1");
        pb.environment().put("OMP_WAIT_POLICY", "PASSIVE");
        Process p = pb.start();
        String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(300, TimeUnit.SECONDS) || p.exitValue() != 0) {
            throw new IOException("torch reference " + script + " failed:\n" + log);
        }
        return JSON.readTree(outFile.toFile());
    }

    public static float[] floats(JsonNode arr) {
        float[] v = new float[arr.size()];
        for (int i = 0; i < v.length; i++) v[i] = (float) arr.get(i).asDouble();
        return v;
    }
}
