package io.moe4j.safetensors;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moe4j.tensor.DType;
import io.moe4j.tensor.Tensor;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Writes safetensors files atomically (temporary file in the target directory, fsync, rename): on failure nothing
 * is left behind and an existing target is untouched. The header is padded with spaces to a multiple of 8 bytes
 * (as the reference implementation does) so that tensor data is aligned.
 */
public final class SafetensorsWriter {
    private record Item(String name, String dtype, long[] shape, MemorySegment data) {}

    private final List<Item> items = new ArrayList<>();
    private final Map<String, String> metadata = new LinkedHashMap<>();

    public SafetensorsWriter metadata(String key, String value) {
        metadata.put(Objects.requireNonNull(key), Objects.requireNonNull(value));
        return this;
    }

    /** Adds a contiguous F32/F16/BF16 tensor (its bytes are read at {@link #write}). */
    public SafetensorsWriter add(String name, Tensor t) {
        if (!t.isContiguous()) throw new IllegalArgumentException("tensor '" + name + "' is not contiguous");
        DType d = t.dtype();
        return add(name, SafetensorsFile.nameOf(d), t.shape(), t.segment().asSlice(t.byteOffset(), d.byteSize(t.numel())));
    }

    /** Adds raw little-endian bytes of safetensors {@code dtype} and row-major {@code shape}. */
    public SafetensorsWriter add(String name, String dtype, long[] shape, MemorySegment data) {
        int eb = SafetensorsFile.elementBytes(dtype);
        if (eb < 0) throw new IllegalArgumentException("unknown safetensors dtype '" + dtype + "'");
        if (name.equals("__metadata__")) throw new IllegalArgumentException("'__metadata__' is reserved");
        long numel = 1;
        for (long s : shape) numel = Math.multiplyExact(numel, s);
        if (data.byteSize() != numel * eb) {
            throw new IllegalArgumentException("tensor '" + name + "': " + dtype + java.util.Arrays.toString(shape) + " needs "
                    + numel * eb + " bytes, got " + data.byteSize());
        }
        for (Item i : items) if (i.name.equals(name)) throw new IllegalArgumentException("duplicate tensor '" + name + "'");
        items.add(new Item(name, dtype, shape.clone(), data));
        return this;
    }

    public void write(Path out) throws IOException {
        ObjectMapper om = new ObjectMapper();
        ObjectNode root = om.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode m = root.putObject("__metadata__");
            metadata.forEach(m::put);
        }
        long off = 0;
        for (Item i : items) {
            ObjectNode e = root.putObject(i.name);
            e.put("dtype", i.dtype);
            ArrayNode s = e.putArray("shape");
            for (long d : i.shape) s.add(d);
            ArrayNode o = e.putArray("data_offsets");
            o.add(off);
            off += i.data.byteSize();
            o.add(off);
        }
        byte[] json = om.writeValueAsBytes(root);
        int padded = (json.length + 7) & ~7;
        ByteBuffer head = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
        head.putLong(padded).put(json);
        while (head.hasRemaining()) head.put((byte) ' ');
        head.flip();
        Path abs = out.toAbsolutePath();
        Path tmp = Files.createTempFile(abs.getParent(), "." + abs.getFileName() + ".", ".tmp");
        try {
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
                while (head.hasRemaining()) ch.write(head);
                for (Item i : items) {
                    for (long p = 0; p < i.data.byteSize(); p += 1 << 26) {
                        ByteBuffer b = i.data.asSlice(p, Math.min(1 << 26, i.data.byteSize() - p)).asByteBuffer();
                        while (b.hasRemaining()) ch.write(b);
                    }
                }
                ch.force(true);
            }
            Files.move(tmp, abs, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException | RuntimeException | Error e) {
            Files.deleteIfExists(tmp);
            throw e;
        }
    }
}
