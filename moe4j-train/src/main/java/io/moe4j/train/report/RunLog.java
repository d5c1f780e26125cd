package io.moe4j.train.report;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.BufferedWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;

/**
 * The run log: {@code metrics.jsonl} in the run directory, one JSON object per line with a {@code type} of
 * {@code step}, {@code val} or {@code event}. The trainer appends; the report reads.
 *
 * <p>When a run resumes from a checkpoint at step s (or rolls back to it), lines of steps ≥ s written after that
 * checkpoint are dropped first, so the log always describes the one history that led to the current weights.
 */
public final class RunLog implements AutoCloseable {
    public static final String FILE = "metrics.jsonl";
    private static final ObjectMapper JSON = new ObjectMapper()
            .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

    private final Path file;
    private BufferedWriter out;

    /** Opens (creating) the log of {@code runDir}, keeping only entries of steps before {@code fromStep}. */
    public RunLog(Path runDir, int fromStep) {
        this.file = runDir.resolve(FILE);
        try {
            truncate(fromStep);
            out = Files.newBufferedWriter(file, StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot open run log " + file, e);
        }
    }

    public Path file() { return file; }

    /** Drops entries of steps ≥ {@code fromStep} (rewrites the file through a temp file and a rename). */
    public synchronized void truncate(int fromStep) throws IOException {
        if (!Files.exists(file)) return;
        if (out != null) out.flush();
        List<String> keep = new ArrayList<>();
        boolean changed = false;
        for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
            if (line.isBlank()) continue;
            JsonNode n;
            try {
                n = JSON.readTree(line);
            } catch (JsonProcessingException e) {
                changed = true; // a line cut by a crash mid-write
                continue;
            }
            boolean stepEntry = !"event".equals(n.path("type").asText());
            if (stepEntry && n.path("step").asInt() >= fromStep) {
                changed = true;
                continue;
            }
            keep.add(line);
        }
        if (!changed) return;
        if (out != null) out.close();
        Path tmp = file.resolveSibling(FILE + ".tmp");
        Files.write(tmp, keep, StandardCharsets.UTF_8);
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        if (out != null) out = Files.newBufferedWriter(file, StandardCharsets.UTF_8, StandardOpenOption.APPEND);
    }

    public void step(StepRecord r) { write("step", r); }

    public void validation(ValRecord r) { write("val", r); }

    public void event(int step, String message) {
        ObjectNode n = JSON.createObjectNode();
        n.put("type", "event");
        n.put("step", step);
        n.put("message", message);
        writeLine(n);
    }

    private void write(String type, Object record) {
        ObjectNode n = JSON.createObjectNode();
        n.put("type", type);
        n.setAll((ObjectNode) JSON.valueToTree(record));
        writeLine(n);
    }

    private synchronized void writeLine(ObjectNode n) {
        try {
            out.write(JSON.writeValueAsString(n));
            out.newLine();
            out.flush();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write run log " + file, e);
        }
    }

    @Override
    public synchronized void close() {
        try {
            if (out != null) out.close();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } finally {
            out = null;
        }
    }

    /** The contents of a run log: steps and validations by step (the last entry wins), events in order. */
    public record Contents(List<StepRecord> steps, List<ValRecord> validations, List<String> events) {}

    public static Contents read(Path runDir) {
        Path f = runDir.resolve(FILE);
        TreeMap<Integer, StepRecord> steps = new TreeMap<>();
        TreeMap<Integer, ValRecord> vals = new TreeMap<>();
        List<String> events = new ArrayList<>();
        try {
            int lineNo = 0;
            for (String line : Files.readAllLines(f, StandardCharsets.UTF_8)) {
                lineNo++;
                if (line.isBlank()) continue;
                JsonNode n;
                try {
                    n = JSON.readTree(line);
                } catch (JsonProcessingException e) {
                    throw new IllegalArgumentException(f + " line " + lineNo + " is not valid JSON");
                }
                switch (n.path("type").asText()) {
                    case "step" -> { StepRecord s = JSON.treeToValue(n, StepRecord.class); steps.put(s.step(), s); }
                    case "val" -> { ValRecord v = JSON.treeToValue(n, ValRecord.class); vals.put(v.step(), v); }
                    case "event" -> events.add("step " + n.path("step").asInt() + ": " + n.path("message").asText());
                    default -> throw new IllegalArgumentException(f + " line " + lineNo + " has an unknown type");
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read run log " + f, e);
        }
        return new Contents(new ArrayList<>(steps.values()), new ArrayList<>(vals.values()), events);
    }
}
