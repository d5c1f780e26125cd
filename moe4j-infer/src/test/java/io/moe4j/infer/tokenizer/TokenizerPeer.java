package io.moe4j.infer.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import io.moe4j.testutil.LlamaPeer;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * llama.cpp's tokenizer as a test peer: runs the resource script {@code tokenizer/tokenize.mjs} in node on a GGUF
 * and a batch of texts (one model load per batch). Availability and the node binary are {@link LlamaPeer}'s.
 */
final class TokenizerPeer {
    private static final ObjectMapper JSON = new ObjectMapper();

    private TokenizerPeer() {}

    record Case(String text, boolean special) {}

    record Result(int[] ids, String text) {}

    static List<Result> tokenize(Path model, List<Case> cases, Path dir) throws IOException, InterruptedException {
        LlamaPeer.assumeAvailable();
        Path script = dir.resolve("tokenize.mjs");
        if (!Files.exists(script)) {
            try (InputStream in = TokenizerPeer.class.getResourceAsStream("/tokenizer/tokenize.mjs")) {
                if (in == null) throw new IOException("missing test resource tokenizer/tokenize.mjs");
                Files.copy(in, script);
            }
        }
        ArrayNode arr = JSON.createArrayNode();
        for (Case c : cases) arr.addObject().put("text", c.text()).put("special", c.special());
        Path in = Files.createTempFile(dir, "cases-", ".json"), out = Files.createTempFile(dir, "ids-", ".json");
        JSON.writeValue(in.toFile(), arr);
        Process p = new ProcessBuilder(System.getProperty("moe4j.node", "node"), script.toString(), nodeModules().toString(),
                model.toAbsolutePath().toString(), in.toString(), out.toString()).redirectErrorStream(true).start();
        String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IOException("llama.cpp tokenizer peer timed out on " + model + ":\n" + log);
        }
        if (p.exitValue() != 0) throw new IOException("llama.cpp tokenizer peer failed on " + model + " (exit " + p.exitValue() + "):\n" + log);
        List<Result> results = new ArrayList<>();
        for (JsonNode c : JSON.readTree(out.toFile()).get("cases")) {
            int[] ids = new int[c.get("ids").size()];
            for (int i = 0; i < ids.length; i++) ids[i] = c.get("ids").get(i).asInt();
            results.add(new Result(ids, c.get("text").asText()));
        }
        return results;
    }

    /** {@code -Dmoe4j.llama.nodeModules}, else {@code peers/node/node_modules} in the nearest ancestor (as LlamaPeer). */
    private static Path nodeModules() {
        String explicit = System.getProperty("moe4j.llama.nodeModules");
        if (explicit != null) return Path.of(explicit).toAbsolutePath();
        for (Path d = Path.of("").toAbsolutePath(); d != null; d = d.getParent()) {
            Path p = d.resolve("peers").resolve("node").resolve("node_modules");
            if (Files.isDirectory(p.resolve("node-llama-cpp"))) return p;
        }
        throw new IllegalStateException("no peers/node/node_modules although LlamaPeer found one");
    }
}
