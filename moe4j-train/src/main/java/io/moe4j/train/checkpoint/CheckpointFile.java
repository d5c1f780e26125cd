package io.moe4j.train.checkpoint;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32C;

/**
 * The on-disk checkpoint format: one file, little-endian.
 * <pre>
 *   "MOE4JCKP"  u32 version
 *   section*:   u32 nameLength, name (UTF-8), u64 byteLength, bytes, u32 CRC32C(bytes)
 *               sections in order: "header" (JSON {@link CheckpointHeader}), "params", "adam.m", "adam.v"
 *               (each the concatenation of every parameter's F32 data in header order)
 *   "MOE4JEND"
 * </pre>
 * Written to {@code NAME.tmp} beside the target, forced to disk, then atomically renamed: a crash mid-write leaves
 * a stray {@code .tmp} (ignored) and never a half-written checkpoint under the real name. Reading checks the magic,
 * version, every section's length against the file and its CRC before anything is handed out, so a truncated or
 * corrupted file gives one {@link CheckpointException} naming the file, the section and the problem.
 */
public final class CheckpointFile {
    public static final int VERSION = 1;
    static final byte[] MAGIC = "MOE4JCKP".getBytes(StandardCharsets.US_ASCII);
    static final byte[] END = "MOE4JEND".getBytes(StandardCharsets.US_ASCII);
    public static final List<String> SECTIONS = List.of("header", "params", "adam.m", "adam.v");
    private static final ObjectMapper JSON = new ObjectMapper().disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);
    private static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private CheckpointFile() {}

    /**
     * Writes a checkpoint atomically. {@code params}, {@code m}, {@code v}: per parameter, its F32 data
     * ({@code header.params().get(i).numel()} floats each, native order).
     */
    public static void write(Path file, CheckpointHeader header, List<MemorySegment> params, List<MemorySegment> m,
                             List<MemorySegment> v) {
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        try {
            byte[] json = JSON.writeValueAsBytes(header);
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
                    StandardOpenOption.WRITE)) {
                ByteBuffer head = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN);
                head.put(MAGIC).putInt(VERSION).flip();
                writeFully(ch, head);
                section(ch, "header", List.of(MemorySegment.ofArray(json)), header);
                section(ch, "params", params, header);
                section(ch, "adam.m", m, header);
                section(ch, "adam.v", v, header);
                writeFully(ch, ByteBuffer.wrap(END));
                ch.force(true);
            }
            try {
                Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException e) {
            try {
                Files.deleteIfExists(tmp);
            } catch (IOException ignored) {
                // the write error is the one to report
            }
            throw new CheckpointException(file, "cannot write: " + e.getMessage(), e);
        }
    }

    private static void section(FileChannel ch, String name, List<MemorySegment> parts, CheckpointHeader h) throws IOException {
        byte[] nb = name.getBytes(StandardCharsets.UTF_8);
        long len = 0;
        boolean floats = !name.equals("header");
        if (floats && parts.size() != h.params().size()) {
            throw new IllegalArgumentException(name + ": " + parts.size() + " tensors for " + h.params().size() + " params");
        }
        for (int i = 0; i < parts.size(); i++) len += floats ? h.params().get(i).numel() * 4 : parts.get(i).byteSize();
        ByteBuffer sh = ByteBuffer.allocate(4 + nb.length + 8).order(ByteOrder.LITTLE_ENDIAN);
        sh.putInt(nb.length).put(nb).putLong(len).flip();
        writeFully(ch, sh);
        CRC32C crc = new CRC32C();
        ByteBuffer buf = ByteBuffer.allocateDirect(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < parts.size(); i++) {
            MemorySegment s = parts.get(i);
            long n = floats ? h.params().get(i).numel() * 4 : s.byteSize();
            if (floats && ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN) {
                ByteBuffer bb = s.asSlice(0, n).asByteBuffer();
                crc.update(bb.duplicate());
                writeFully(ch, bb);
            } else if (floats) {
                for (long off = 0; off < n; off += 4) {
                    if (!buf.hasRemaining()) flush(ch, buf, crc);
                    buf.putFloat(s.get(ValueLayout.JAVA_FLOAT_UNALIGNED, off));
                }
                flush(ch, buf, crc);
            } else {
                ByteBuffer bb = s.asByteBuffer();
                crc.update(bb.duplicate());
                writeFully(ch, bb);
            }
        }
        ByteBuffer c = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN);
        c.putInt((int) crc.getValue()).flip();
        writeFully(ch, c);
    }

    private static void flush(FileChannel ch, ByteBuffer buf, CRC32C crc) throws IOException {
        buf.flip();
        crc.update(buf.duplicate());
        writeFully(ch, buf);
        buf.clear();
    }

    private static void writeFully(FileChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) ch.write(b);
    }

    /** A checked, memory-mapped checkpoint; close it to unmap. */
    public static final class Loaded implements AutoCloseable {
        private final Path file;
        private final Arena arena;
        private final CheckpointHeader header;
        private final Map<String, MemorySegment> sections;

        private Loaded(Path file, Arena arena, CheckpointHeader header, Map<String, MemorySegment> sections) {
            this.file = file;
            this.arena = arena;
            this.header = header;
            this.sections = sections;
        }

        public Path file() { return file; }
        public CheckpointHeader header() { return header; }

        /** Copies tensor {@code index} of section {@code name} ("params", "adam.m", "adam.v") into {@code dst}. */
        public void copyTo(String name, int index, MemorySegment dst) {
            MemorySegment s = sections.get(name);
            long off = 0;
            for (int i = 0; i < index; i++) off += header.params().get(i).numel() * 4;
            long n = header.params().get(index).numel();
            if (ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN) {
                MemorySegment.copy(s, off, dst, 0, n * 4);
            } else {
                for (long j = 0; j < n; j++) dst.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, j, s.get(F32_LE, off + 4 * j));
            }
        }

        @Override
        public void close() { arena.close(); }
    }

    /** Opens and fully checks a checkpoint (magic, version, section lengths, CRCs, end marker). */
    public static Loaded read(Path file) {
        if (!Files.isRegularFile(file)) throw new CheckpointException(file, "no such file");
        Arena arena = Arena.ofShared();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            MemorySegment all = size == 0 ? MemorySegment.NULL : ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            if (size < 12) throw new CheckpointException(file, "truncated: " + size + " bytes is shorter than the file header");
            for (int i = 0; i < 8; i++) {
                if (all.get(ValueLayout.JAVA_BYTE, i) != MAGIC[i]) {
                    throw new CheckpointException(file, "not a moe4j checkpoint (bad magic)");
                }
            }
            int version = all.get(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 8);
            if (version != VERSION) {
                throw new CheckpointException(file, "format version " + version + " is not supported (this build reads " + VERSION + ")");
            }
            long pos = 12;
            Map<String, MemorySegment> sections = new LinkedHashMap<>();
            for (String expected : SECTIONS) {
                if (pos + 4 > size) throw truncated(file, expected, pos, size);
                int nl = all.get(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), pos);
                if (nl < 0 || nl > 64 || pos + 4 + nl + 8 > size) {
                    if (pos + 4 + Math.max(0, nl) + 8 > size) throw truncated(file, expected, pos, size);
                    throw new CheckpointException(file, "corrupted: bad section header at byte " + pos);
                }
                String name = new String(all.asSlice(pos + 4, nl).toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8);
                if (!name.equals(expected)) {
                    throw new CheckpointException(file, "corrupted: expected section '" + expected + "' at byte " + pos + ", found '" + name + "'");
                }
                long len = all.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), pos + 4 + nl);
                long data = pos + 4 + nl + 8;
                if (len < 0 || data + len + 4 > size) {
                    throw new CheckpointException(file, "truncated: section '" + name + "' needs " + len + " bytes + CRC at byte "
                            + data + ", the file has " + Math.max(0, size - data) + " left");
                }
                MemorySegment body = all.asSlice(data, len);
                CRC32C crc = new CRC32C();
                crc.update(body.asByteBuffer());
                int stored = all.get(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), data + len);
                if (stored != (int) crc.getValue()) {
                    throw new CheckpointException(file, String.format("corrupted: CRC32C mismatch in section '%s' "
                            + "(stored %08x, computed %08x)", name, stored, (int) crc.getValue()));
                }
                sections.put(name, body);
                pos = data + len + 4;
            }
            if (pos + 8 > size) throw new CheckpointException(file, "truncated: the end marker is missing");
            for (int i = 0; i < 8; i++) {
                if (all.get(ValueLayout.JAVA_BYTE, pos + i) != END[i]) {
                    throw new CheckpointException(file, "corrupted: bad end marker");
                }
            }
            if (pos + 8 != size) throw new CheckpointException(file, "corrupted: " + (size - pos - 8) + " extra bytes after the end marker");
            CheckpointHeader header;
            try {
                header = JSON.readValue(sections.get("header").toArray(ValueLayout.JAVA_BYTE), CheckpointHeader.class);
            } catch (JsonProcessingException e) {
                throw new CheckpointException(file, "corrupted: the header is not valid JSON (" + e.getOriginalMessage() + ")");
            }
            long floats = 0;
            for (CheckpointHeader.ParamEntry p : header.params()) floats += p.numel();
            for (String s : List.of("params", "adam.m", "adam.v")) {
                if (sections.get(s).byteSize() != floats * 4) {
                    throw new CheckpointException(file, "corrupted: section '" + s + "' has " + sections.get(s).byteSize()
                            + " bytes, the parameter table needs " + floats * 4);
                }
            }
            return new Loaded(file, arena, header, sections);
        } catch (IOException e) {
            arena.close();
            throw new CheckpointException(file, "cannot read: " + e.getMessage(), e);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    private static CheckpointException truncated(Path file, String section, long pos, long size) {
        return new CheckpointException(file, "truncated: the file ends at byte " + size + " before section '" + section
                + "' (expected at byte " + pos + ")");
    }

    /** Names of the parameter entries of a header, for error messages. */
    static List<String> names(CheckpointHeader h) {
        List<String> out = new ArrayList<>();
        for (CheckpointHeader.ParamEntry p : h.params()) out.add(p.name());
        return out;
    }
}
