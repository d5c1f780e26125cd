package io.moe4j.tokenizer;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;

/**
 * Saves and loads moe4j's own tokenizer file: one JSON object
 * <pre>
 * {"format": "moe4j-tokenizer", "version": 1, "model": "byte-bpe", "pre": "llama-bpe",
 *  "tokens": ["!", ...], "types": [1, ...], "merges": ["Ġ t", ...],
 *  "bos": -1, "eos": 4095, "stops": [4095], "add_bos": false}
 * </pre>
 * Token strings are in byte-level form (as in a GGUF); types are GGUF's numbers ({@link TokenType#id()}).
 * Writing is atomic (a temporary file in the target directory, then a rename), so a crash never leaves a partial
 * file. Reading validates every field and fails with one {@link IllegalArgumentException} naming the file and field.
 */
public final class TokenizerFiles {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String FORMAT = "moe4j-tokenizer";

    private TokenizerFiles() {}

    public static void save(ByteLevelBpe t, Path file) throws IOException {
        Vocabulary v = t.vocabulary();
        ObjectNode root = JSON.createObjectNode();
        root.put("format", FORMAT).put("version", 1).put("model", "byte-bpe").put("pre", t.preTokenizer().ggufName());
        ArrayNode tokens = root.putArray("tokens");
        v.tokens().forEach(tokens::add);
        ArrayNode types = root.putArray("types");
        for (TokenType ty : v.types()) types.add(ty.id());
        ArrayNode merges = root.putArray("merges");
        t.merges().forEach(merges::add);
        root.put("bos", v.bos()).put("eos", v.eos());
        ArrayNode stops = root.putArray("stops");
        v.stops().forEach(stops::add);
        root.put("add_bos", v.addBos());
        writeAtomically(file, JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(root));
    }

    static void writeAtomically(Path file, byte[] bytes) throws IOException {
        Path abs = file.toAbsolutePath();
        Path dir = abs.getParent();
        if (dir != null) Files.createDirectories(dir);
        Path tmp = Files.createTempFile(dir, abs.getFileName().toString(), ".tmp");
        try {
            Files.write(tmp, bytes);
            try {
                Files.move(tmp, abs, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, abs, StandardCopyOption.REPLACE_EXISTING);
            }
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    public static ByteLevelBpe load(Path file) throws IOException {
        JsonNode root;
        try {
            root = JSON.readTree(Files.readString(file, StandardCharsets.UTF_8));
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException(file + ": not valid JSON (" + e.getOriginalMessage() + ")");
        }
        String where = file.toString();
        if (root == null || !root.isObject()) throw new IllegalArgumentException(where + ": expected a JSON object");
        if (!FORMAT.equals(text(root, "format", where))) {
            throw new IllegalArgumentException(where + ": field 'format' must be \"" + FORMAT + "\"");
        }
        if (integer(root, "version", where) != 1) throw new IllegalArgumentException(where + ": unsupported 'version' " + root.get("version"));
        String model = text(root, "model", where);
        if (!model.equals("byte-bpe")) throw new IllegalArgumentException(where + ": unsupported 'model' \"" + model + "\" (expected \"byte-bpe\")");
        String preName = text(root, "pre", where);
        PreTokenizer pre = PreTokenizer.ofGgufName(preName);
        if (pre == null) throw new IllegalArgumentException(where + ": unknown 'pre' \"" + preName + "\" (gpt2, llama-bpe, qwen2)");
        List<String> tokens = strings(root, "tokens", where);
        List<String> merges = strings(root, "merges", where);
        JsonNode ty = array(root, "types", where);
        if (ty.size() != tokens.size()) throw new IllegalArgumentException(where + ": 'types' has " + ty.size() + " entries for " + tokens.size() + " tokens");
        TokenType[] types = new TokenType[ty.size()];
        for (int i = 0; i < types.length; i++) {
            if (!ty.get(i).canConvertToInt()) throw new IllegalArgumentException(where + ": 'types'[" + i + "] is not an integer");
            types[i] = TokenType.ofId(ty.get(i).asInt());
        }
        List<Integer> stops = new ArrayList<>();
        for (JsonNode s : array(root, "stops", where)) {
            if (!s.canConvertToInt()) throw new IllegalArgumentException(where + ": 'stops' holds a non-integer " + s);
            stops.add(s.asInt());
        }
        JsonNode addBos = root.get("add_bos");
        if (addBos == null || !addBos.isBoolean()) throw new IllegalArgumentException(where + ": field 'add_bos' must be true or false");
        try {
            Vocabulary v = new Vocabulary(tokens, types, null, integer(root, "bos", where), integer(root, "eos", where), stops, addBos.asBoolean());
            return new ByteLevelBpe(v, merges, pre);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(where + ": " + e.getMessage(), e);
        }
    }

    private static String text(JsonNode root, String field, String where) {
        JsonNode n = root.get(field);
        if (n == null || !n.isTextual()) throw new IllegalArgumentException(where + ": field '" + field + "' must be a string");
        return n.asText();
    }

    private static int integer(JsonNode root, String field, String where) {
        JsonNode n = root.get(field);
        if (n == null || !n.canConvertToInt() || !n.isIntegralNumber()) throw new IllegalArgumentException(where + ": field '" + field + "' must be an integer");
        return n.asInt();
    }

    private static JsonNode array(JsonNode root, String field, String where) {
        JsonNode n = root.get(field);
        if (n == null || !n.isArray()) throw new IllegalArgumentException(where + ": field '" + field + "' must be an array");
        return n;
    }

    private static List<String> strings(JsonNode root, String field, String where) {
        List<String> out = new ArrayList<>();
        JsonNode arr = array(root, field, where);
        for (int i = 0; i < arr.size(); i++) {
            if (!arr.get(i).isTextual()) throw new IllegalArgumentException(where + ": '" + field + "'[" + i + "] is not a string");
            out.add(arr.get(i).asText());
        }
        return out;
    }
}
