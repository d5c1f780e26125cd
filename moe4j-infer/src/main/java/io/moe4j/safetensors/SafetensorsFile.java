package io.moe4j.safetensors;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import io.moe4j.tensor.DType;
import io.moe4j.tensor.Tensor;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;

/**
 * A safetensors file (Hugging Face), memory-mapped and read without copying.
 *
 * <p>Layout: uint64 little-endian N, N bytes of UTF-8 JSON {@code {"name": {"dtype": "F32", "shape": [..],
 * "data_offsets": [begin, end]}, ..., "__metadata__": {"k": "v"}}}, then the data; offsets are relative to the
 * byte after the header, tensors are row-major and little-endian.
 *
 * <p>Hostile files: the header length is checked against the file size and a 100 MB cap before anything is read,
 * the JSON is parsed with nesting and string-length limits, every tensor's extent must equal its dtype size times
 * the product of its shape (checked for overflow), lie inside the data section and not overlap another; errors
 * are one {@link SafetensorsFormatException} naming the file and the tensor.
 *
 * <p>Types moe4j computes with (F32, F16, BF16) are available as {@link Tensor}s; other dtypes (I64, F64, U8, ...)
 * are listed with their bytes. Non-goals: writing (see {@link SafetensorsWriter}), sharded index files (a caller
 * opens each shard).
 */
public final class SafetensorsFile implements AutoCloseable {
    /** The safetensors reference implementation refuses headers above 100 MB. */
    static final long MAX_HEADER = 100_000_000L;

    /** One tensor's entry in the header. */
    public record Entry(String name, String dtype, long[] shape, long begin, long end) {
        public long numel() {
            long n = 1;
            for (long d : shape) n *= d;
            return n;
        }

        /** The moe4j element type, or null when moe4j does not compute with this dtype. */
        public DType dtype4j() { return dtypeOf(dtype); }
    }

    private final String name;
    private final Arena arena;
    private final MemorySegment mapping;
    private final long dataStart;
    private final Map<String, Entry> entries;
    private final Map<String, String> metadata;

    private SafetensorsFile(String name, Arena arena, MemorySegment mapping, long dataStart, Map<String, Entry> entries,
                            Map<String, String> metadata) {
        this.name = name;
        this.arena = arena;
        this.mapping = mapping;
        this.dataStart = dataStart;
        this.entries = entries;
        this.metadata = metadata;
    }

    /** Maps and validates {@code path}. */
    public static SafetensorsFile open(Path path) throws IOException {
        if (Files.isDirectory(path)) throw new FileSystemException(path.toString(), null, "is a directory, not a safetensors file");
        Arena arena = Arena.ofShared();
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            MemorySegment m = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena);
            return parse(m, path.toString(), arena);
        } catch (IOException | RuntimeException | Error e) {
            arena.close();
            throw e;
        }
    }

    static SafetensorsFile parse(MemorySegment m, String name, Arena arena) throws SafetensorsFormatException {
        long size = m.byteSize();
        if (size < 8) throw new SafetensorsFormatException(name, "truncated: " + size + " bytes, the header length alone takes 8");
        long n = m.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0);
        if (n < 2 || n > MAX_HEADER || n > size - 8) {
            throw new SafetensorsFormatException(name, "header length " + Long.toUnsignedString(n) + " is impossible for a file of "
                    + size + " bytes" + (n > MAX_HEADER ? " (limit 100 MB)" : ""));
        }
        byte[] headerBytes = m.asSlice(8, n).toArray(ValueLayout.JAVA_BYTE);
        if (headerBytes[0] != '{') throw new SafetensorsFormatException(name, "header does not start with '{': not a safetensors file");
        JsonNode root;
        try {
            root = MAPPER.readTree(new String(headerBytes, StandardCharsets.UTF_8));
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new SafetensorsFormatException(name, "header is not valid JSON: " + e.getOriginalMessage());
        }
        if (root == null || !root.isObject()) throw new SafetensorsFormatException(name, "header is not a JSON object");
        long dataStart = 8 + n, dataSize = size - dataStart;
        Map<String, Entry> entries = new LinkedHashMap<>();
        Map<String, String> meta = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> f = it.next();
            String key = f.getKey();
            JsonNode v = f.getValue();
            if (key.equals("__metadata__")) {
                if (!v.isObject()) throw new SafetensorsFormatException(name, "__metadata__ is not an object");
                for (Iterator<Map.Entry<String, JsonNode>> mi = v.fields(); mi.hasNext(); ) {
                    Map.Entry<String, JsonNode> kv = mi.next();
                    if (!kv.getValue().isTextual()) throw new SafetensorsFormatException(name, "__metadata__." + kv.getKey() + " is not a string");
                    meta.put(kv.getKey(), kv.getValue().asText());
                }
                continue;
            }
            entries.put(key, entry(name, key, v, dataSize));
        }
        List<Entry> sorted = new ArrayList<>(entries.values());
        sorted.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
        for (int i = 1; i < sorted.size(); i++) {
            Entry a = sorted.get(i - 1), b = sorted.get(i);
            if (b.begin() < a.end()) {
                throw new SafetensorsFormatException(name, "tensors '" + a.name() + "' and '" + b.name() + "' overlap");
            }
        }
        return new SafetensorsFile(name, arena, m, dataStart, Collections.unmodifiableMap(entries), Collections.unmodifiableMap(meta));
    }

    private static Entry entry(String file, String key, JsonNode v, long dataSize) throws SafetensorsFormatException {
        String where = "tensor '" + key + "'";
        if (!v.isObject()) throw new SafetensorsFormatException(file, where + " is not an object");
        JsonNode dt = v.get("dtype"), sh = v.get("shape"), off = v.get("data_offsets");
        if (dt == null || !dt.isTextual()) throw new SafetensorsFormatException(file, where + ": missing dtype");
        int elemBytes = elementBytes(dt.asText());
        if (elemBytes < 0) throw new SafetensorsFormatException(file, where + ": unknown dtype '" + dt.asText() + "'");
        if (sh == null || !sh.isArray() || sh.size() > 8) throw new SafetensorsFormatException(file, where + ": missing or bad shape");
        if (off == null || !off.isArray() || off.size() != 2) throw new SafetensorsFormatException(file, where + ": data_offsets must be [begin, end]");
        long[] shape = new long[sh.size()];
        long numel = 1;
        for (int i = 0; i < shape.length; i++) {
            JsonNode d = sh.get(i);
            if (!d.canConvertToLong() || d.asLong() < 0) throw new SafetensorsFormatException(file, where + ": bad dimension " + d);
            shape[i] = d.asLong();
            try {
                numel = Math.multiplyExact(numel, shape[i]);
            } catch (ArithmeticException e) {
                throw new SafetensorsFormatException(file, where + ": shape overflows");
            }
        }
        JsonNode b = off.get(0), e = off.get(1);
        if (!b.canConvertToLong() || !e.canConvertToLong()) throw new SafetensorsFormatException(file, where + ": data_offsets are not integers");
        long begin = b.asLong(), end = e.asLong();
        if (begin < 0 || end < begin || end > dataSize) {
            throw new SafetensorsFormatException(file, where + ": data [" + begin + ", " + end + ") lies outside the data section of "
                    + dataSize + " bytes (truncated file?)");
        }
        long want;
        try {
            want = Math.multiplyExact(numel, (long) elemBytes);
        } catch (ArithmeticException ex) {
            throw new SafetensorsFormatException(file, where + ": size overflows");
        }
        if (end - begin != want) {
            throw new SafetensorsFormatException(file, where + ": " + dt.asText() + java.util.Arrays.toString(shape) + " needs " + want
                    + " bytes, data_offsets give " + (end - begin));
        }
        return new Entry(key, dt.asText(), shape, begin, end);
    }

    /** Bytes per element of a safetensors dtype, or −1 if unknown. */
    static int elementBytes(String dtype) {
        return switch (dtype) {
            case "F64", "I64", "U64" -> 8;
            case "F32", "I32", "U32" -> 4;
            case "F16", "BF16", "I16", "U16" -> 2;
            case "I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2" -> 1;
            default -> -1;
        };
    }

    static DType dtypeOf(String dtype) {
        return switch (dtype) {
            case "F32" -> DType.F32;
            case "F16" -> DType.F16;
            case "BF16" -> DType.BF16;
            default -> null;
        };
    }

    static String nameOf(DType t) {
        return switch (t) {
            case F32 -> "F32";
            case F16 -> "F16";
            case BF16 -> "BF16";
            default -> throw new IllegalArgumentException("safetensors has no dtype for " + t + " (quantized types live in GGUF)");
        };
    }

    public String name() { return name; }

    /** Entries in header order. */
    public Map<String, Entry> entries() { return entries; }

    public Map<String, String> metadata() { return metadata; }

    public boolean has(String tensor) { return entries.containsKey(tensor); }

    public Entry entry(String tensor) {
        Entry e = entries.get(tensor);
        if (e == null) throw new NoSuchElementException(name + ": no tensor '" + tensor + "'");
        return e;
    }

    /** The tensor's bytes, a view of the mapping. */
    public MemorySegment data(String tensor) {
        Entry e = entry(tensor);
        return mapping.asSlice(dataStart + e.begin(), e.end() - e.begin());
    }

    /** The tensor as a moe4j {@link Tensor} over the mapping (F32, F16, BF16 only). */
    public Tensor tensor(String tensor) {
        Entry e = entry(tensor);
        DType t = e.dtype4j();
        if (t == null) throw new IllegalArgumentException(name + ": tensor '" + tensor + "' is " + e.dtype() + ", which moe4j does not compute with");
        return Tensor.wrap(data(tensor), t, e.shape().length == 0 ? new long[]{1} : e.shape());
    }

    @Override
    public void close() {
        if (arena != null) arena.close();
    }

    private static final ObjectMapper MAPPER = JsonMapper.builder()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION).build();

    static {
        MAPPER.getFactory().setStreamReadConstraints(StreamReadConstraints.builder().maxNestingDepth(16)
                .maxStringLength(1 << 20).build());
    }
}
