package io.moe4j.train.optim;

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
 * Runs a PyTorch reference script from this module's test resources with Debian's /usr/bin/python3 (the copy of
 * moe4j-core's TorchPeer: test classes of core are not visible here).
 */
final class TorchScripts {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String PYTHON = System.getProperty("moe4j.python", "/usr/bin/python3");
    private static Boolean available;

    private TorchScripts() {}

    static synchronized boolean available() {
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

    static JsonNode run(String script, Map<String, Object> input, Path dir) throws IOException, InterruptedException {
        Path py = dir.resolve(script);
        try (InputStream in = TorchScripts.class.getResourceAsStream("/torch/" + script)) {
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
}
