package io.moe4j.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.moe4j.gguf.GgufArray;
import io.moe4j.gguf.GgufFile;
import io.moe4j.gguf.GgufFormatException;
import io.moe4j.gguf.GgufTensorInfo;
import io.moe4j.gguf.GgufValue;
import io.moe4j.gguf.GgufValueType;
import io.moe4j.gguf.GgmlType;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.io.PrintWriter;
import java.math.BigInteger;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * {@code moe4j inspect MODEL.gguf}: what a GGUF model is and what it costs to run — architecture and
 * hyper-parameters, tokenizer, tensors by type, stacked expert tensors and the bytes one expert takes, and memory
 * (the whole file is mapped; per token only the non-expert weights plus the used experts are read).
 *
 * <p>The summary is built once as a JSON-shaped tree and printed either as text or, with {@code --json}, as JSON,
 * so both outputs always agree. Bad input (missing file, directory, malformed GGUF) is one line on stderr, exit 1.
 *
 * <p>Non-goals: editing files, dumping tensor values, validating that an architecture's required tensors exist
 * (that belongs to the model loader).
 */
@Command(name = "inspect", mixinStandardHelpOptions = true,
        description = "Show a GGUF model: architecture, hyper-parameters, tokenizer, tensors, experts and memory needs.")
final class InspectCommand implements Runnable {

    @Parameters(index = "0", paramLabel = "MODEL.gguf", description = "GGUF file to inspect.")
    Path model;

    @Option(names = "--json", description = "Print the summary as JSON.")
    boolean json;

    @Option(names = "--tensors", description = "Also list every tensor (name, type, GGUF dims, bytes, offset).")
    boolean tensors;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    /** Arrays up to this length are shown in full (e.g. per-layer settings); longer ones as type × length. */
    private static final int SHOW_ARRAY = 16;
    private static final int SHOW_STRING = 100;

    @Override
    public void run() {
        if (!Files.exists(model)) throw new UserException("no such file: " + model);
        if (Files.isDirectory(model)) throw new UserException(model + " is a directory, not a GGUF file");
        Map<String, Object> summary;
        try (GgufFile g = GgufFile.open(model)) {
            summary = summarize(g, tensors);
        } catch (GgufFormatException e) {
            throw new UserException("not a valid GGUF file: " + e.getMessage());
        } catch (IOException e) {
            throw new UserException("cannot read " + model + ": " + e.getMessage());
        }
        PrintWriter out = spec.commandLine().getOut();
        if (json) {
            try {
                out.println(new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(summary));
            } catch (JsonProcessingException e) {
                throw new IllegalStateException(e);
            }
        } else {
            printText(summary, out);
        }
        out.flush();
    }

    // ---------------------------------------------------------------- summary (the JSON tree)

    static Map<String, Object> summarize(GgufFile g, boolean withTensors) {
        Map<String, Object> s = new LinkedHashMap<>();
        String arch = g.architecture();
        s.put("file", g.name());
        s.put("ggufVersion", g.version());
        s.put("fileBytes", g.fileSize());
        s.put("alignment", g.alignment());
        s.put("dataOffset", g.dataOffset());
        s.put("architecture", arch);
        s.put("name", g.getString("general.name", null));

        Map<String, Object> general = new TreeMap<>();
        Map<String, Object> hyper = new TreeMap<>();
        Map<String, Object> tokenizer = new LinkedHashMap<>();
        for (Map.Entry<String, GgufValue> e : g.metadata().entrySet()) {
            String k = e.getKey();
            if (k.startsWith("general.") && !k.equals("general.architecture") && !k.equals("general.name")) {
                general.put(k.substring("general.".length()), jsonValue(e.getValue()));
            } else if (arch != null && k.startsWith(arch + ".")) {
                hyper.put(k.substring(arch.length() + 1), jsonValue(e.getValue()));
            }
        }
        s.put("general", general);
        s.put("hyperParameters", hyper);

        tokenizer.put("model", g.getString("tokenizer.ggml.model", null));
        tokenizer.put("pre", g.getString("tokenizer.ggml.pre", null));
        tokenizer.put("vocabSize", arrayLength(g, "tokenizer.ggml.tokens"));
        tokenizer.put("merges", arrayLength(g, "tokenizer.ggml.merges"));
        for (String id : List.of("bos", "eos", "eot", "unk", "pad")) {
            GgufValue v = g.get("tokenizer.ggml." + id + "_token_id");
            if (v != null) tokenizer.put(id + "TokenId", jsonValue(v));
        }
        tokenizer.values().removeIf(v -> v == null);
        s.put("tokenizer", tokenizer);

        // Tensors by type, and stacked expert tensors ({…, n_expert} outermost, named *_exps).
        Map<GgmlType, long[]> byType = new EnumMap<>(GgmlType.class);
        long total = 0, expertBytes = 0, perExpert = 0, expertTensors = 0, nExpert = 0;
        for (GgufTensorInfo t : g.tensors()) {
            long[] c = byType.computeIfAbsent(t.type(), k -> new long[2]);
            c[0]++;
            c[1] += t.byteSize();
            total += t.byteSize();
            if (isExpertTensor(t)) {
                long n = t.ne()[t.nDims() - 1];
                expertTensors++;
                expertBytes += t.byteSize();
                perExpert += n == 0 ? 0 : t.byteSize() / n;
                nExpert = Math.max(nExpert, n);
            }
        }
        Map<String, Object> types = new LinkedHashMap<>();
        byType.entrySet().stream().sorted((a, b) -> Long.compare(b.getValue()[1], a.getValue()[1]))
                .forEach(e -> {
                    Map<String, Long> c = new LinkedHashMap<>();
                    c.put("count", e.getValue()[0]);
                    c.put("bytes", e.getValue()[1]);
                    types.put(e.getKey().name(), c);
                });
        Map<String, Object> tensorSummary = new LinkedHashMap<>();
        tensorSummary.put("count", g.tensors().size());
        tensorSummary.put("bytes", total);
        tensorSummary.put("byType", types);
        s.put("tensors", tensorSummary);

        long expertCount = arch == null ? nExpert : g.getLong(arch + ".expert_count", nExpert);
        long used = arch == null ? -1 : g.getLong(arch + ".expert_used_count", -1);
        Map<String, Object> experts = new LinkedHashMap<>();
        experts.put("expertCount", expertCount);
        if (used >= 0) experts.put("expertUsedCount", used);
        experts.put("expertTensors", expertTensors);
        experts.put("expertBytes", expertBytes);
        experts.put("bytesPerExpert", perExpert);
        s.put("experts", experts);

        Map<String, Object> memory = new LinkedHashMap<>();
        memory.put("mappedBytes", g.fileSize());
        long active = total - expertBytes + (used >= 0 ? used * perExpert : expertBytes);
        memory.put("weightBytesPerToken", active);
        s.put("memory", memory);

        if (withTensors) {
            List<Map<String, Object>> list = new ArrayList<>();
            for (GgufTensorInfo t : g.tensors()) {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("name", t.name());
                m.put("type", t.type().name());
                m.put("ne", t.ne());
                m.put("bytes", t.byteSize());
                m.put("offset", g.dataOffset() + t.offset());
                list.add(m);
            }
            s.put("tensorList", list);
        }
        return s;
    }

    /** Stacked experts: llama.cpp names them {@code ffn_{gate,up,down}_exps} with the expert index outermost. */
    static boolean isExpertTensor(GgufTensorInfo t) {
        return t.nDims() == 3 && t.name().contains("_exps");
    }

    private static Long arrayLength(GgufFile g, String key) {
        GgufValue v = g.get(key);
        return v != null && v.type() == GgufValueType.ARRAY ? v.asArray().size() : null;
    }

    /** Scalars as JSON scalars; short arrays in full; long ones as {type, length}. */
    static Object jsonValue(GgufValue v) {
        return switch (v.type()) {
            case UINT64 -> (Long) v.value() < 0 ? new BigInteger(v.toString()) : v.value();
            case ARRAY -> {
                GgufArray a = v.asArray();
                if (a.size() <= SHOW_ARRAY && a.elementType() != GgufValueType.ARRAY) {
                    List<Object> items = new ArrayList<>();
                    for (long i = 0; i < a.size(); i++) items.add(jsonValue(a.get(i)));
                    yield items;
                }
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("arrayOf", a.elementType().name());
                m.put("length", a.size());
                yield m;
            }
            default -> v.value();
        };
    }

    // ---------------------------------------------------------------- text

    @SuppressWarnings("unchecked")
    private static void printText(Map<String, Object> s, PrintWriter out) {
        out.printf(Locale.ROOT, "%-17s%s%n", "file", s.get("file"));
        out.printf(Locale.ROOT, "%-17sGGUF v%s, %s, alignment %s, data at byte %,d%n", "format", s.get("ggufVersion"),
                InfoCommand.bytes((Long) s.get("fileBytes")), s.get("alignment"), (Long) s.get("dataOffset"));
        out.printf(Locale.ROOT, "%-17s%s%n", "architecture", orNone(s.get("architecture")));
        out.printf(Locale.ROOT, "%-17s%s%n", "name", orNone(s.get("name")));
        section(out, "general", (Map<String, Object>) s.get("general"));
        section(out, "hyper-parameters" + (s.get("architecture") == null ? "" : " (" + s.get("architecture") + ".*)"),
                (Map<String, Object>) s.get("hyperParameters"));

        Map<String, Object> tok = (Map<String, Object>) s.get("tokenizer");
        List<String> parts = new ArrayList<>();
        if (tok.containsKey("model")) parts.add(tok.get("model") + (tok.containsKey("pre") ? " (pre " + tok.get("pre") + ")" : ""));
        if (tok.containsKey("vocabSize")) parts.add(tok.get("vocabSize") + " tokens");
        if (tok.containsKey("merges")) parts.add(tok.get("merges") + " merges");
        for (String id : List.of("bos", "eos", "eot", "unk", "pad")) {
            if (tok.containsKey(id + "TokenId")) parts.add(id + " " + tok.get(id + "TokenId"));
        }
        out.printf(Locale.ROOT, "%-17s%s%n", "tokenizer", parts.isEmpty() ? "(none)" : String.join(", ", parts));

        Map<String, Object> ts = (Map<String, Object>) s.get("tensors");
        List<String> types = new ArrayList<>();
        ((Map<String, Map<String, Long>>) ts.get("byType")).forEach((type, c) ->
                types.add(type + " × " + c.get("count") + " (" + InfoCommand.bytes(c.get("bytes")) + ")"));
        out.printf(Locale.ROOT, "%-17s%s tensors, %s%s%n", "tensors", ts.get("count"), InfoCommand.bytes((Long) ts.get("bytes")),
                types.isEmpty() ? "" : ": " + String.join(", ", types));

        Map<String, Object> ex = (Map<String, Object>) s.get("experts");
        if ((Long) ex.get("expertTensors") > 0 || (Long) ex.get("expertCount") > 0) {
            out.printf(Locale.ROOT, "%-17s%s experts%s; %s stacked expert tensors (%s), %s per expert over all layers%n",
                    "experts", ex.get("expertCount"),
                    ex.containsKey("expertUsedCount") ? ", " + ex.get("expertUsedCount") + " used per token" : "",
                    ex.get("expertTensors"), InfoCommand.bytes((Long) ex.get("expertBytes")),
                    InfoCommand.bytes((Long) ex.get("bytesPerExpert")));
        } else {
            out.printf(Locale.ROOT, "%-17s%s%n", "experts", "none (dense model)");
        }
        Map<String, Object> mem = (Map<String, Object>) s.get("memory");
        out.printf(Locale.ROOT, "%-17s%s mapped (the whole file; pages load on first use); about %s of weights read per token%n",
                "memory", InfoCommand.bytes((Long) mem.get("mappedBytes")), InfoCommand.bytes((Long) mem.get("weightBytesPerToken")));

        List<Map<String, Object>> list = (List<Map<String, Object>>) s.get("tensorList");
        if (list != null) {
            int w = Math.max(4, list.stream().mapToInt(m -> ((String) m.get("name")).length()).max().orElse(4));
            out.printf(Locale.ROOT, "%n  %-" + w + "s  %-7s  %-28s  %12s  %14s%n", "name", "type", "ne (GGUF order, fastest first)", "bytes", "file offset");
            for (Map<String, Object> m : list) {
                out.printf(Locale.ROOT, "  %-" + w + "s  %-7s  %-28s  %,12d  %,14d%n", m.get("name"), m.get("type"),
                        Arrays.toString((long[]) m.get("ne")), (Long) m.get("bytes"), (Long) m.get("offset"));
            }
        }
    }

    private static void section(PrintWriter out, String title, Map<String, Object> values) {
        if (values.isEmpty()) return;
        out.printf(Locale.ROOT, "%s%n", title);
        int w = values.keySet().stream().mapToInt(String::length).max().orElse(0);
        values.forEach((k, v) -> out.printf(Locale.ROOT, "  %-" + w + "s  %s%n", k, text(v)));
    }

    @SuppressWarnings("unchecked")
    private static String text(Object v) {
        if (v instanceof Map<?, ?> m && m.containsKey("arrayOf")) return "[" + m.get("arrayOf") + " × " + m.get("length") + "]";
        if (v instanceof String str) {
            String oneLine = str.replace("\n", "\\n");
            return oneLine.length() <= SHOW_STRING ? oneLine : oneLine.substring(0, SHOW_STRING) + "… (" + str.length() + " chars)";
        }
        if (v instanceof List<?> l) return l.stream().map(InspectCommand::text).toList().toString();
        return String.valueOf(v);
    }

    private static Object orNone(Object o) { return o == null ? "(not set)" : o; }
}
