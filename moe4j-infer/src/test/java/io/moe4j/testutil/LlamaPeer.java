package io.moe4j.testutil;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Runs llama.cpp as a test peer (never a runtime dependency): the prebuilt CPU build of node-llama-cpp that
 * {@code dev/setup-peers} installs into {@code peers/node/node_modules}, driven by the resource script
 * {@code llama/logits.mjs} in a {@code node} subprocess, exchanging JSON through a file.
 *
 * <p>Tests call {@link #assumeAvailable()} first: without node, without the installed packages, or on a platform
 * with no prebuilt binary they are skipped, never failed. {@code -Dmoe4j.node=/path/to/node} picks the node
 * binary, {@code -Dmoe4j.llama.nodeModules=/path/to/node_modules} the packages.
 */
public final class LlamaPeer {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String NODE = System.getProperty("moe4j.node", "node");
    private static final int MIN_NODE_MAJOR = 20;   // node-llama-cpp 3.x's engines field asks for node >= 20
    private static String unavailable;               // null: not checked yet; "": available; else why not
    private static Path nodeModules;

    private LlamaPeer() {}

    /** llama.cpp's answer for one token sequence: the vocabulary size, next-token logits and a greedy continuation. */
    public record Result(int vocabSize, float[] logits, int[] greedy) {}

    /** Skips the calling test (JUnit assumption) with the reason when the peer cannot run here. */
    public static void assumeAvailable() {
        String why = unavailableReason();
        assumeTrue(why.isEmpty(), () -> "llama.cpp peer unavailable (" + why + "); run dev/setup-peers to install it");
    }

    /** Empty if the peer can run; otherwise why not (checked once). */
    public static synchronized String unavailableReason() {
        if (unavailable == null) unavailable = check();
        return unavailable;
    }

    private static String check() {
        Path modules = locateNodeModules();
        if (modules == null) {
            String explicit = System.getProperty("moe4j.llama.nodeModules");
            return explicit != null ? "no node-llama-cpp in -Dmoe4j.llama.nodeModules=" + explicit
                    : "no peers/node/node_modules/node-llama-cpp above " + Path.of("").toAbsolutePath();
        }
        String platform = platform();
        if (!Files.isDirectory(modules.resolve("@node-llama-cpp").resolve(platform))) {
            return "no prebuilt llama.cpp for " + platform + " in " + modules;
        }
        try {
            Process p = new ProcessBuilder(NODE, "--version").redirectErrorStream(true).start();
            String version = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
            if (!p.waitFor(30, TimeUnit.SECONDS) || p.exitValue() != 0) return "'" + NODE + " --version' failed";
            int major = Integer.parseInt(version.replaceFirst("^v(\\d+).*", "$1"));
            if (major < MIN_NODE_MAJOR) return "node " + version + " is older than " + MIN_NODE_MAJOR;
        } catch (IOException | NumberFormatException e) {
            return "cannot run '" + NODE + "': " + e.getMessage();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return "interrupted";
        }
        nodeModules = modules;
        return "";
    }

    /** The installed packages: {@code -Dmoe4j.llama.nodeModules}, else {@code peers/node/node_modules} in the nearest ancestor. */
    private static Path locateNodeModules() {
        String explicit = System.getProperty("moe4j.llama.nodeModules");
        if (explicit != null) {
            Path p = Path.of(explicit).toAbsolutePath();
            return Files.isDirectory(p.resolve("node-llama-cpp")) ? p : null;
        }
        // Surefire runs in the module directory, the IDE maybe in the repository root: walk up to find peers/.
        for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
            Path p = dir.resolve("peers").resolve("node").resolve("node_modules");
            if (Files.isDirectory(p.resolve("node-llama-cpp"))) return p;
        }
        return null;
    }

    /** node's {@code process.platform}-{@code process.arch} naming of the prebuilt binary packages. */
    private static String platform() {
        String os = System.getProperty("os.name").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch").toLowerCase(Locale.ROOT);
        String nodeOs = os.startsWith("linux") ? "linux" : os.startsWith("mac") ? "mac" : os.startsWith("windows") ? "win" : os;
        String nodeArch = switch (arch) {
            case "amd64", "x86_64" -> "x64";
            case "aarch64" -> "arm64";
            default -> arch;
        };
        return nodeOs + "-" + nodeArch;
    }

    /**
     * Evaluates {@code ids} (in one sequence, from position 0) on the GGUF {@code model} in exact mode (F32 KV cache,
     * flash attention off) with {@code threads} threads, returning the logits after the last id and
     * {@code greedySteps} argmax continuation ids. {@code dir} receives the script and its JSON output.
     */
    public static Result logits(Path model, int[] ids, int threads, int greedySteps, Path dir)
            throws IOException, InterruptedException {
        assumeAvailable();
        if (ids.length == 0) throw new IllegalArgumentException("need at least one token id");
        Path script = dir.resolve("logits.mjs");
        if (!Files.exists(script)) {
            try (InputStream in = LlamaPeer.class.getResourceAsStream("/llama/logits.mjs")) {
                if (in == null) throw new IOException("missing test resource llama/logits.mjs");
                Files.copy(in, script);
            }
        }
        Path out = Files.createTempFile(dir, "logits-", ".json");
        String idList = Arrays.stream(ids).mapToObj(Integer::toString).collect(Collectors.joining(","));
        Process p = new ProcessBuilder(NODE, script.toString(), nodeModules.toString(), model.toAbsolutePath().toString(),
                out.toString(), Integer.toString(threads), idList, Integer.toString(greedySteps))
                .redirectErrorStream(true).start();
        String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IOException("llama.cpp peer timed out on " + model + ":\n" + log);
        }
        if (p.exitValue() != 0) throw new IOException("llama.cpp peer failed on " + model + " (exit " + p.exitValue() + "):\n" + log);
        JsonNode json = JSON.readTree(out.toFile());
        JsonNode l = json.get("logits"), g = json.get("greedy");
        float[] logits = new float[l.size()];
        // JSON has no NaN or infinity: node writes them as null, read back as NaN so a finiteness check catches them.
        for (int i = 0; i < logits.length; i++) logits[i] = l.get(i).isNull() ? Float.NaN : (float) l.get(i).asDouble();
        int[] greedy = new int[g.size()];
        for (int i = 0; i < greedy.length; i++) greedy[i] = g.get(i).asInt();
        return new Result(json.get("vocabSize").asInt(), logits, greedy);
    }

    /** One evaluation for {@link #logitsMany}: the ids, in one sequence from position 0, then greedy steps. */
    public record Job(Path model, int[] ids, int threads, int greedySteps) {}

    /**
     * Runs every job in one node process (llama.cpp is loaded once), each exactly as {@link #logits} does, via the
     * resource script {@code llama/logits-many.mjs}; results in job order.
     */
    public static java.util.List<Result> logitsMany(java.util.List<Job> jobs, Path dir) throws IOException, InterruptedException {
        assumeAvailable();
        Path script = dir.resolve("logits-many.mjs");
        if (!Files.exists(script)) {
            try (InputStream in = LlamaPeer.class.getResourceAsStream("/llama/logits-many.mjs")) {
                if (in == null) throw new IOException("missing test resource llama/logits-many.mjs");
                Files.copy(in, script);
            }
        }
        com.fasterxml.jackson.databind.node.ArrayNode arr = JSON.createArrayNode();
        for (Job j : jobs) {
            com.fasterxml.jackson.databind.node.ObjectNode o = arr.addObject();
            o.put("model", j.model().toAbsolutePath().toString());
            com.fasterxml.jackson.databind.node.ArrayNode ids = o.putArray("ids");
            for (int id : j.ids()) ids.add(id);
            o.put("threads", j.threads());
            o.put("greedy", j.greedySteps());
        }
        Path in = Files.createTempFile(dir, "jobs-", ".json"), out = Files.createTempFile(dir, "results-", ".json");
        JSON.writeValue(in.toFile(), arr);
        Process p = new ProcessBuilder(NODE, script.toString(), nodeModules.toString(), in.toString(), out.toString())
                .redirectErrorStream(true).start();
        String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(300, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IOException("llama.cpp peer timed out:\n" + log);
        }
        if (p.exitValue() != 0) throw new IOException("llama.cpp peer failed (exit " + p.exitValue() + "):\n" + log);
        JsonNode json = JSON.readTree(out.toFile());
        java.util.List<Result> results = new java.util.ArrayList<>();
        for (JsonNode r : json) {
            JsonNode l = r.get("logits"), g = r.get("greedy");
            float[] logits = new float[l.size()];
            for (int i = 0; i < logits.length; i++) logits[i] = l.get(i).isNull() ? Float.NaN : (float) l.get(i).asDouble();
            int[] greedy = new int[g.size()];
            for (int i = 0; i < greedy.length; i++) greedy[i] = g.get(i).asInt();
            results.add(new Result(r.get("vocabSize").asInt(), logits, greedy));
        }
        return results;
    }
}
