package io.moe4j.gguf;

import io.moe4j.tensor.Tensor;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * Writes GGUF v3 files: metadata in insertion order, then tensor infos, then tensor data, each tensor padded to
 * the alignment. Tensors are laid out back to back in insertion order, which is what llama.cpp's loader expects
 * (it checks that each offset equals the padded end of the previous tensor).
 *
 * <p>Writing is atomic: bytes go to a temporary file in the target's directory, which is flushed to disk and then
 * renamed over the target. On any failure the temporary file is deleted and an existing target is untouched.
 *
 * <p>Tensor bytes come from segments handed over now or from a {@link TensorProducer} called at write time.
 *
 * <p>Tensor bytes are not copied until {@link #write}: sources (heap, off-heap or another mapped GGUF) must stay
 * alive until then. Non-goals: quantizing (see {@link GgufQuantizer}), GGUF v2 output.
 */
public final class GgufWriter {
    /** GGML_MAX_NAME is 64 including the terminating NUL; longer names fail to load in llama.cpp. */
    public static final int MAX_TENSOR_NAME_BYTES = 63;
    private static final int VERSION = 3;
    private static final int CHUNK = 64 << 20;   // ByteBuffers address at most 2 GiB; write large tensors in pieces

    private final Map<String, GgufValue> metadata = new LinkedHashMap<>();
    private final List<Entry> tensors = new ArrayList<>();
    private final Set<String> names = new LinkedHashSet<>();
    private int alignment = GgufFile.DEFAULT_ALIGNMENT;

    /** Entry data: bytes that exist now, or a producer that fills {@code byteSize} bytes at write time. */
    private record Entry(String name, long[] ne, GgmlType type, MemorySegment data, long byteSize, TensorProducer producer) {}

    /**
     * Fills a tensor's bytes when {@link #write} reaches it, so that a converter (quantize, export) never holds more
     * than one output tensor in memory. {@code dst} is zeroed, exactly the tensor's byte size, and only valid during
     * the call.
     */
    @FunctionalInterface
    public interface TensorProducer {
        void produce(MemorySegment dst) throws IOException;
    }

    /** Adds metadata {@code key}; {@code general.alignment} must be a UINT32 power of two and sets the alignment. */
    public GgufWriter put(String key, GgufValue value) {
        Objects.requireNonNull(key, "key");
        Objects.requireNonNull(value, "value");
        if (metadata.containsKey(key)) throw new IllegalArgumentException("duplicate metadata key '" + key + "'");
        if (key.equals(GgufFile.KEY_ALIGNMENT)) {
            if (value.type() != GgufValueType.UINT32 || Long.bitCount(value.asLong()) != 1 || value.asLong() > (1 << 30)) {
                throw new IllegalArgumentException(key + " must be a UINT32 power of two, got " + value.type() + " " + value);
            }
            alignment = (int) value.asLong();
        }
        metadata.put(key, value);
        return this;
    }

    public GgufWriter putString(String key, String v) { return put(key, GgufValue.string(v)); }
    public GgufWriter putU32(String key, long v) { return put(key, GgufValue.u32(v)); }
    public GgufWriter putI32(String key, int v) { return put(key, GgufValue.i32(v)); }
    public GgufWriter putU64(String key, long v) { return put(key, GgufValue.u64(v)); }
    public GgufWriter putF32(String key, float v) { return put(key, GgufValue.f32(v)); }
    public GgufWriter putBool(String key, boolean v) { return put(key, GgufValue.bool(v)); }
    public GgufWriter putArray(String key, GgufArray v) { return put(key, GgufValue.array(v)); }

    /** Sets the alignment by writing {@code general.alignment}. */
    public GgufWriter alignment(int alignment) { return putU32(GgufFile.KEY_ALIGNMENT, alignment); }

    /**
     * Adds a contiguous moe4j tensor; its row-major shape {@code [d0, …, dn]} is stored as GGUF
     * {@code ne = [dn, …, d0]} (see {@link GgufTensorInfo}).
     */
    public GgufWriter addTensor(String name, Tensor t) {
        if (!t.isContiguous()) throw new IllegalArgumentException("tensor '" + name + "' is not contiguous; copy it first");
        long[] shape = t.shape();
        long[] ne = new long[shape.length];
        for (int i = 0; i < shape.length; i++) ne[i] = shape[shape.length - 1 - i];
        GgmlType type = GgmlType.of(t.dtype());
        return addTensor(name, type, ne, t.segment().asSlice(t.byteOffset(), type.byteSize(t.numel())));
    }

    /** Adds raw tensor bytes of GGML {@code type} with GGUF dimensions {@code ne} (fastest first). */
    public GgufWriter addTensor(String name, GgmlType type, long[] ne, MemorySegment data) {
        Objects.requireNonNull(data, "data");
        return add(name, type, ne, data, data.byteSize(), null);
    }

    /** Adds a tensor of GGML {@code type} and GGUF dimensions {@code ne} whose bytes {@code producer} writes later. */
    public GgufWriter addTensor(String name, GgmlType type, long[] ne, TensorProducer producer) {
        Objects.requireNonNull(producer, "producer");
        Objects.requireNonNull(type, "type");
        return add(name, type, ne, null, -1, producer);
    }

    private GgufWriter add(String name, GgmlType type, long[] ne, MemorySegment data, long dataBytes, TensorProducer producer) {
        Objects.requireNonNull(type, "type");
        byte[] nameBytes = name.getBytes(StandardCharsets.UTF_8);
        if (nameBytes.length > MAX_TENSOR_NAME_BYTES) {
            throw new IllegalArgumentException("tensor name '" + name + "' is " + nameBytes.length
                    + " bytes; llama.cpp accepts at most " + MAX_TENSOR_NAME_BYTES);
        }
        if (names.contains(name)) throw new IllegalArgumentException("duplicate tensor name '" + name + "'");
        if (ne.length > 4) throw new IllegalArgumentException("tensor '" + name + "' has " + ne.length + " dimensions; GGUF allows 4");
        long numel = 1;
        for (long d : ne) {
            if (d < 0) throw new IllegalArgumentException("negative dimension in " + Arrays.toString(ne));
            numel = Math.multiplyExact(numel, d);
        }
        if (ne.length > 0 && ne[0] % type.blockSize() != 0) {
            throw new IllegalArgumentException("tensor '" + name + "': ne[0] = " + ne[0] + " is not a multiple of the "
                    + type + " block size " + type.blockSize());
        }
        long bytes = type.byteSize(numel);
        if (producer == null && dataBytes != bytes) {
            throw new IllegalArgumentException("tensor '" + name + "' " + type + Arrays.toString(ne) + " needs " + bytes
                    + " bytes, got a segment of " + dataBytes);
        }
        names.add(name);
        tensors.add(new Entry(name, ne.clone(), type, data, bytes, producer));
        return this;
    }

    /** Writes the file atomically (temporary file + rename); on failure nothing is left behind. */
    public void write(Path out) throws IOException {
        Path abs = out.toAbsolutePath();
        Path dir = abs.getParent();
        Path tmp = Files.createTempFile(dir, "." + abs.getFileName() + ".", ".tmp");
        try {
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
                byte[] header = header();
                writeFully(ch, ByteBuffer.wrap(header));
                long pos = header.length;
                pos = pad(ch, pos);
                for (Entry e : tensors) {
                    if (e.producer == null) {
                        writeSegment(ch, e.data);
                    } else {
                        try (Arena arena = Arena.ofConfined()) {
                            MemorySegment buf = arena.allocate(Math.max(1, e.byteSize), 64).asSlice(0, e.byteSize);
                            e.producer.produce(buf);
                            writeSegment(ch, buf);
                        }
                    }
                    pos = pad(ch, pos + e.byteSize);
                }
                ch.force(true);
            }
            Files.move(tmp, abs, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException | RuntimeException | Error e) {
            try {
                Files.deleteIfExists(tmp);
            } catch (IOException suppressed) {
                e.addSuppressed(suppressed);
            }
            throw e;
        }
    }

    /** Magic, version, counts, metadata and tensor infos, with offsets computed for back-to-back padded data. */
    private byte[] header() {
        Buf b = new Buf();
        b.u32(0x46554747);
        b.u32(VERSION);
        b.u64(tensors.size());
        b.u64(metadata.size());
        for (Map.Entry<String, GgufValue> kv : metadata.entrySet()) {
            b.string(kv.getKey());
            b.u32(kv.getValue().type().id());
            b.value(kv.getValue());
        }
        long offset = 0;
        for (Entry e : tensors) {
            b.string(e.name);
            b.u32(e.ne.length);
            for (long d : e.ne) b.u64(d);
            b.u32(e.type.id());
            b.u64(offset);
            offset = GgufFile.alignUp(offset + e.byteSize, alignment);
        }
        return b.toByteArray();
    }

    private static void writeSegment(FileChannel ch, MemorySegment data) throws IOException {
        for (long off = 0; off < data.byteSize(); off += CHUNK) {
            long n = Math.min(CHUNK, data.byteSize() - off);
            writeFully(ch, data.asSlice(off, n).asByteBuffer());
        }
    }

    private long pad(FileChannel ch, long pos) throws IOException {
        long padded = GgufFile.alignUp(pos, alignment);
        if (padded > pos) writeFully(ch, ByteBuffer.allocate((int) (padded - pos)));
        return padded;
    }

    private static void writeFully(FileChannel ch, ByteBuffer buf) throws IOException {
        while (buf.hasRemaining()) ch.write(buf);
    }

    /** Little-endian encoder for the header. */
    private static final class Buf extends ByteArrayOutputStream {
        void le(long v, int bytes) {
            for (int i = 0; i < bytes; i++) write((int) (v >>> (8 * i)));
        }

        void u32(long v) { le(v, 4); }
        void u64(long v) { le(v, 8); }

        void string(String s) {
            byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
            u64(bytes.length);
            writeBytes(bytes);
        }

        void value(GgufValue v) {
            switch (v.type()) {
                case UINT8, INT8, BOOL -> le(v.type() == GgufValueType.BOOL ? ((Boolean) v.value() ? 1 : 0) : (Long) v.value(), 1);
                case UINT16, INT16 -> le((Long) v.value(), 2);
                case UINT32, INT32 -> le((Long) v.value(), 4);
                case UINT64, INT64 -> le((Long) v.value(), 8);
                case FLOAT32 -> le(Float.floatToRawIntBits((Float) v.value()), 4);
                case FLOAT64 -> le(Double.doubleToRawLongBits((Double) v.value()), 8);
                case STRING -> string((String) v.value());
                case ARRAY -> {
                    GgufArray a = (GgufArray) v.value();
                    u32(a.elementType().id());
                    u64(a.size());
                    writeBytes(a.rawData().toArray(ValueLayout.JAVA_BYTE));
                }
            }
        }
    }
}
