package io.moe4j.gguf;

import io.moe4j.tensor.DType;
import io.moe4j.tensor.Tensor;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;

/**
 * A GGUF model file, memory-mapped once and read without copying: metadata, tensor infos, and each tensor's
 * bytes as a slice of the one mapping (files larger than 2 GiB work; pages load on first touch).
 *
 * <p>Layout (GGUF v2/v3, little-endian): {@code "GGUF"}, uint32 version, uint64 n_tensors, uint64 n_kv, n_kv
 * key/value pairs, n_tensors tensor infos (name, uint32 n_dims, int64 ne[n_dims], uint32 ggml_type, uint64
 * offset), padding to {@code general.alignment} (default 32), then the data section; tensor offsets are relative
 * to it. See {@link GgufTensorInfo} for how GGUF's fastest-first dimensions map to moe4j shapes.
 *
 * <p>Hostile files: {@link #open} validates the whole header before returning — every count against the bytes
 * left, every tensor against the end of the file, alignment, overlaps, duplicate names and keys, dimension
 * products — and reports the first problem as one {@link GgufFormatException} naming the file and the byte
 * offset. The heap it uses is bounded by the file's size, never by what the header claims. One limit remains
 * outside the reader's control: if another process truncates the file while it is mapped, touching the lost pages
 * fails with an {@link InternalError} from the JVM.
 *
 * <p>Metadata arrays and tensor segments are views of the mapping and must not be used after {@link #close()}.
 * The mapping is shared: tensors may be read from any thread.
 *
 * <p>Non-goals: GGUF v1 (32-bit counts; obsolete since 2023), big-endian files, writing (see {@link GgufWriter}),
 * and decoding of GGML types moe4j has no kernels for (they are listed, with sizes, but {@link #tensor} refuses).
 */
public final class GgufFile implements AutoCloseable {
    public static final int DEFAULT_ALIGNMENT = 32;
    public static final String KEY_ALIGNMENT = "general.alignment";
    public static final String KEY_ARCHITECTURE = "general.architecture";

    private static final int MAGIC = 0x46554747;   // "GGUF" read as a little-endian uint32
    private static final int MAX_DIMS = 4;
    private static final int MIN_KV_BYTES = 8 + 4 + 1;          // empty key, type, 1-byte value
    private static final int MIN_TENSOR_INFO_BYTES = 8 + 4 + 4 + 8;  // empty name, n_dims = 0, type, offset

    private final String name;
    private final Arena arena;
    private final MemorySegment mapping;
    private final int version;
    private final int alignment;
    private final long dataOffset;
    private final Map<String, GgufValue> metadata;
    private final List<GgufTensorInfo> tensors;
    private final Map<String, GgufTensorInfo> byName;

    private GgufFile(String name, Arena arena, MemorySegment mapping, int version, int alignment, long dataOffset,
                     Map<String, GgufValue> metadata, List<GgufTensorInfo> tensors, Map<String, GgufTensorInfo> byName) {
        this.name = name;
        this.arena = arena;
        this.mapping = mapping;
        this.version = version;
        this.alignment = alignment;
        this.dataOffset = dataOffset;
        this.metadata = metadata;
        this.tensors = tensors;
        this.byName = byName;
    }

    /**
     * Maps and validates {@code path}.
     *
     * @throws GgufFormatException if the file is not a well-formed GGUF v2/v3 file
     * @throws IOException         if it cannot be read (missing, a directory, no permission)
     */
    public static GgufFile open(Path path) throws IOException {
        if (Files.isDirectory(path)) throw new FileSystemException(path.toString(), null, "is a directory, not a GGUF file");
        Arena arena = Arena.ofShared();
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            MemorySegment mapping = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena);
            return parse(mapping, path.toString(), arena);
        } catch (IOException | RuntimeException | Error e) {
            arena.close();
            throw e;
        }
    }

    /**
     * Parses GGUF bytes already in memory. {@code arena} (may be null) is closed by {@link #close()}.
     * Used by {@link #open} and by tests that fuzz without touching the disk.
     */
    static GgufFile parse(MemorySegment bytes, String name, Arena arena) throws GgufFormatException {
        GgufParser p = new GgufParser(bytes, name, 0);
        if (p.size() < 4) throw p.error(0, "truncated: " + p.size() + " bytes is too short for a GGUF file (the header alone takes 24)");
        int magic = p.i32("magic");
        if (magic != MAGIC) {
            throw p.error(0, "not a GGUF file: starts with bytes " + hex(magic) + ", expected 47 47 55 46 (\"GGUF\")");
        }
        long at = p.pos();
        int version = p.i32("version");
        if (version == 1) {
            throw p.error(at, "GGUF version 1 is not supported (it used 32-bit counts); re-convert the model with a current llama.cpp");
        }
        if (version != 2 && version != 3) {
            if ((version & 0xFFFF) == 0 && (version >>> 16) != 0) {
                throw p.error(at, "big-endian GGUF (version bytes " + hex(version) + ") is not supported");
            }
            throw p.error(at, "unsupported GGUF version " + Integer.toUnsignedString(version) + " (this reader knows 2 and 3)");
        }
        long nTensors = p.count("tensor count", MIN_TENSOR_INFO_BYTES);
        long nKv = p.count("metadata entry count", MIN_KV_BYTES);

        // Metadata. Maps and lists grow as entries are actually parsed, never pre-sized from the header's counts.
        Map<String, GgufValue> metadata = new LinkedHashMap<>();
        long alignmentAt = -1;
        for (long i = 0; i < nKv; i++) {
            long kvAt = p.pos();
            String key = p.string("key of metadata entry " + i);
            GgufValueType type = p.valueType("metadata '" + key + "'");
            GgufValue value = p.value(type, "metadata '" + key + "'");
            if (metadata.putIfAbsent(key, value) != null) throw p.error(kvAt, "duplicate metadata key '" + key + "'");
            if (key.equals(KEY_ALIGNMENT)) alignmentAt = kvAt;
        }
        int alignment = DEFAULT_ALIGNMENT;
        GgufValue a = metadata.get(KEY_ALIGNMENT);
        if (a != null) {
            if (a.type() != GgufValueType.UINT32) {
                throw p.error(alignmentAt, KEY_ALIGNMENT + " must be a UINT32, it is a " + a.type());
            }
            long v = a.asLong();
            if (v == 0 || Long.bitCount(v) != 1 || v > (1 << 30)) {
                throw p.error(alignmentAt, KEY_ALIGNMENT + " is " + v + ", expected a power of two (at most 2^30)");
            }
            alignment = (int) v;
        }

        // Tensor infos.
        List<GgufTensorInfo> tensors = new ArrayList<>();
        Map<String, GgufTensorInfo> byName = new HashMap<>();
        List<Long> infoOffsets = new ArrayList<>();
        for (long i = 0; i < nTensors; i++) {
            long tAt = p.pos();
            String tName = p.string("name of tensor " + i);
            String what = "tensor '" + tName + "'";
            long dimsAt = p.pos();
            long nDims = Integer.toUnsignedLong(p.i32(what + " n_dims"));
            if (nDims > MAX_DIMS) throw p.error(dimsAt, what + " has " + nDims + " dimensions; GGML allows at most " + MAX_DIMS);
            long[] ne = new long[(int) nDims];
            for (int d = 0; d < nDims; d++) {
                long neAt = p.pos();
                ne[d] = p.i64(what + " ne[" + d + "]");
                if (ne[d] < 0) throw p.error(neAt, what + " has negative dimension ne[" + d + "] = " + ne[d]);
            }
            long typeAt = p.pos();
            long typeId = Integer.toUnsignedLong(p.i32(what + " type"));
            GgmlType type = GgmlType.ofId(typeId);
            if (type == null) throw p.error(typeAt, what + " has unknown or retired GGML type id " + typeId);
            long offAt = p.pos();
            long offset = p.i64(what + " offset");
            if (offset < 0) throw p.error(offAt, what + " has offset " + Long.toUnsignedString(offset) + ", beyond any file");
            long numel = 1;
            long tBytes;
            try {
                for (long d : ne) numel = Math.multiplyExact(numel, d);
                if (ne.length > 0 && ne[0] % type.blockSize() != 0) {
                    throw p.error(dimsAt, what + ": row length ne[0] = " + ne[0] + " is not a multiple of the "
                            + type + " block size " + type.blockSize());
                }
                tBytes = type.byteSize(numel);
            } catch (ArithmeticException e) {
                throw p.error(dimsAt, what + " has dimensions " + Arrays.toString(ne) + " whose size overflows 64 bits");
            }
            GgufTensorInfo info = new GgufTensorInfo(tName, ne, type, offset, tBytes);
            if (byName.putIfAbsent(tName, info) != null) throw p.error(tAt, "duplicate tensor name '" + tName + "'");
            tensors.add(info);
            infoOffsets.add(tAt);
        }

        // Data section: aligned after the header; every tensor must be aligned, inside the file and apart.
        long headerEnd = p.pos();
        long dataOffset = alignUp(headerEnd, alignment);
        // may be negative: a header padded past the end of the file has no room even for an empty tensor
        long dataBytes = p.size() - dataOffset;
        for (int i = 0; i < tensors.size(); i++) {
            GgufTensorInfo t = tensors.get(i);
            long tAt = infoOffsets.get(i);
            if (t.offset() % alignment != 0) {
                throw p.error(tAt, "tensor '" + t.name() + "' has offset " + t.offset() + ", not a multiple of the alignment " + alignment);
            }
            if (dataBytes < 0 || t.offset() > dataBytes || t.byteSize() > dataBytes - t.offset()) {
                throw p.error(tAt, "tensor '" + t.name() + "' needs bytes [" + (dataOffset + t.offset()) + ", "
                        + (dataOffset + t.offset() + t.byteSize()) + ") but the file ends at " + p.size()
                        + " (truncated file or bad offset)");
            }
        }
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < tensors.size(); i++) order.add(i);
        order.sort(Comparator.comparingLong(i -> tensors.get(i).offset()));
        for (int k = 1; k < order.size(); k++) {
            GgufTensorInfo prev = tensors.get(order.get(k - 1)), cur = tensors.get(order.get(k));
            if (prev.offset() + prev.byteSize() > cur.offset()) {
                throw p.error(infoOffsets.get(order.get(k)), "tensor '" + cur.name() + "' at data offset " + cur.offset()
                        + " overlaps tensor '" + prev.name() + "' [" + prev.offset() + ", " + (prev.offset() + prev.byteSize()) + ")");
            }
        }
        return new GgufFile(name, arena, bytes, version, alignment, dataOffset,
                Collections.unmodifiableMap(metadata), List.copyOf(tensors), byName);
    }

    // ---------------------------------------------------------------- header

    /** The file name as given to {@link #open}. */
    public String name() { return name; }

    /** GGUF version (2 or 3). */
    public int version() { return version; }

    /** File size in bytes: what mapping the whole model costs in address space. */
    public long fileSize() { return mapping.byteSize(); }

    /** Alignment of the data section and of every tensor. */
    public int alignment() { return alignment; }

    /** Absolute file offset of the data section. */
    public long dataOffset() { return dataOffset; }

    /** All metadata in file order (unmodifiable). */
    public Map<String, GgufValue> metadata() { return metadata; }

    /** The value of {@code key}, or {@code null}. */
    public GgufValue get(String key) { return metadata.get(key); }

    /** A string value, or {@code fallback} if the key is missing or not a string. */
    public String getString(String key, String fallback) {
        GgufValue v = metadata.get(key);
        return v != null && v.type() == GgufValueType.STRING ? v.asString() : fallback;
    }

    /** An integer value, or {@code fallback} if the key is missing or not an integer that fits a long. */
    public long getLong(String key, long fallback) {
        GgufValue v = metadata.get(key);
        return v != null && v.type().isInteger() && (v.type() != GgufValueType.UINT64 || (Long) v.value() >= 0) ? v.asLong() : fallback;
    }

    /** {@code general.architecture}, or {@code null}. */
    public String architecture() { return getString(KEY_ARCHITECTURE, null); }

    // ---------------------------------------------------------------- tensors

    /** Tensor infos in file order. */
    public List<GgufTensorInfo> tensors() { return tensors; }

    public boolean hasTensor(String tensorName) { return byName.containsKey(tensorName); }

    public GgufTensorInfo tensorInfo(String tensorName) {
        GgufTensorInfo t = byName.get(tensorName);
        if (t == null) throw new NoSuchElementException(name + " has no tensor '" + tensorName + "'");
        return t;
    }

    /** The whole mapped file. */
    public MemorySegment segment() { return mapping; }

    /** Tensor {@code tensorName}'s bytes: a zero-copy slice of the mapping. */
    public MemorySegment tensorData(String tensorName) {
        GgufTensorInfo t = tensorInfo(tensorName);
        return mapping.asSlice(dataOffset + t.offset(), t.byteSize());
    }

    /**
     * Tensor {@code tensorName} as a moe4j {@link Tensor} over the mapping (no copy), with shape
     * {@link GgufTensorInfo#shape()}.
     *
     * @throws UnsupportedOperationException if moe4j has no {@link DType} for the tensor's GGML type
     */
    public Tensor tensor(String tensorName) {
        GgufTensorInfo t = tensorInfo(tensorName);
        DType dt = t.type().dtype();
        if (dt == null) {
            throw new UnsupportedOperationException("unsupported tensor type: '" + tensorName + "' in " + name + " is "
                    + t.type() + "; moe4j computes with " + DType.fileTypes());
        }
        return Tensor.wrap(tensorData(tensorName), dt, t.shape());
    }

    /**
     * Tells the OS that tensor {@code tensorName}'s pages will not be read again ({@code madvise(MADV_DONTNEED)} on
     * the whole pages inside it), so they stop counting towards the process's resident memory: for a tensor that
     * was copied elsewhere (repacked weights). Reading it later still works (the pages come back from the file).
     * Best effort: does nothing where madvise is not available or the file is not mapped.
     */
    public void release(String tensorName) {
        GgufTensorInfo t = tensorInfo(tensorName);
        if (arena == null || !mapping.isMapped()) return;
        long start = mapping.address() + dataOffset + t.offset(), end = start + t.byteSize();
        long page = 4096, from = (start + page - 1) / page * page, to = end / page * page;
        if (to > from) io.moe4j.tensor.NativeMemory.releaseMapped(from, to - from);
    }

    /** Unmaps the file. Segments, tensors and metadata arrays obtained from it become unusable. */
    @Override
    public void close() {
        if (arena != null && arena.scope().isAlive()) arena.close();
    }

    @Override
    public String toString() {
        return "GgufFile[" + name + ", v" + version + ", " + metadata.size() + " keys, " + tensors.size() + " tensors]";
    }

    static long alignUp(long x, long alignment) {
        return (x + alignment - 1) / alignment * alignment;
    }

    private static String hex(int littleEndianWord) {
        StringBuilder sb = new StringBuilder();
        for (int b = 0; b < 4; b++) sb.append(b > 0 ? " " : "").append(String.format("%02x", (littleEndianWord >>> (8 * b)) & 0xFF));
        return sb.toString();
    }
}
