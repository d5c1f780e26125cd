package io.moe4j.safetensors;

import io.moe4j.tensor.DType;
import io.moe4j.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class SafetensorsTest {
    @TempDir Path dir;

    @Test
    void roundTripsTensorsAndMetadata() throws IOException {
        Path f = dir.resolve("m.safetensors");
        try (Arena arena = Arena.ofConfined()) {
            float[] a = new float[6 * 5];
            for (int i = 0; i < a.length; i++) a[i] = i * 0.25f - 3;
            Tensor t = Tensor.ofFloats(arena, a, 6, 5);
            Tensor h = Tensor.allocate(arena, DType.BF16, 3);
            new SafetensorsWriter().metadata("format", "pt").add("w", t).add("h", h)
                    .add("ids", "I64", new long[]{2}, arena.allocate(16)).write(f);
        }
        byte[] raw = Files.readAllBytes(f);
        long headerLen = ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN).getLong();
        assertThat(headerLen % 8).isZero();
        try (SafetensorsFile s = SafetensorsFile.open(f)) {
            assertThat(s.metadata()).containsEntry("format", "pt");
            assertThat(s.entries().keySet()).containsExactly("w", "h", "ids");
            assertThat(s.entry("w").shape()).containsExactly(6, 5);
            float[] back = s.tensor("w").toFloatArray();
            assertThat(back[7]).isEqualTo(7 * 0.25f - 3);
            assertThat(s.tensor("h").dtype()).isEqualTo(DType.BF16);
            assertThatThrownBy(() -> s.tensor("ids")).hasMessageContaining("I64");
            assertThatThrownBy(() -> s.entry("nope")).hasMessageContaining("no tensor 'nope'");
        }
        try (Stream<Path> l = Files.list(dir)) {
            assertThat(l).hasSize(1);
        }
    }

    private Path file(String header, int dataBytes) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h);
        Path f = Files.createTempFile(dir, "h", ".safetensors");
        Files.write(f, b.array());
        return f;
    }

    @Test
    void hostileHeadersGiveOneClearError() throws IOException {
        String ok = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
        assertThat(SafetensorsFile.open(file(ok, 8)).entries()).hasSize(1);
        record Case(String header, int data, String message) {}
        for (Case c : new Case[]{
                new Case(ok, 4, "outside the data section"),
                new Case("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 12, "needs 12 bytes"),
                new Case("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlap"),
                new Case("{\"a\":{\"dtype\":\"Q9\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unknown dtype"),
                new Case("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,8]}}", 8, "overflows"),
                new Case("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"a\":{}}", 8, "not valid JSON"),
                new Case("{\"a\":", 0, "not valid JSON"),
                new Case("[1,2]   ", 0, "does not start with '{'"),
                new Case("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,8]}}", 8, "bad dimension"),
        }) {
            Path f = file(c.header, c.data);
            assertThatThrownBy(() -> SafetensorsFile.open(f).close()).as(c.header)
                    .isInstanceOf(SafetensorsFormatException.class).hasMessageContaining(c.message).hasMessageContaining(f.toString());
        }
        Path huge = Files.createTempFile(dir, "x", ".safetensors");
        Files.write(huge, new byte[]{(byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, 0, 0, 0, 0, '{', '}'});
        assertThatThrownBy(() -> SafetensorsFile.open(huge)).hasMessageContaining("header length");
        Path tiny = Files.createTempFile(dir, "t", ".safetensors");
        Files.write(tiny, new byte[3]);
        assertThatThrownBy(() -> SafetensorsFile.open(tiny)).hasMessageContaining("truncated");
    }

    @Test
    void seededMutationsNeverEscapeAsAnythingButFormatErrors() throws IOException {
        Path f = dir.resolve("seed.safetensors");
        try (Arena arena = Arena.ofConfined()) {
            new SafetensorsWriter().metadata("k", "v").add("w", Tensor.allocate(arena, DType.F32, 4, 4))
                    .add("b", Tensor.allocate(arena, DType.F16, 8)).write(f);
        }
        byte[] base = Files.readAllBytes(f);
        Random r = new Random(Long.getLong("moe4j.fuzz.seed", 7));
        int iterations = Integer.getInteger("moe4j.fuzz.iterations", 2000);
        for (int i = 0; i < iterations; i++) {
            byte[] b = base.clone();
            int edits = 1 + r.nextInt(4);
            for (int e = 0; e < edits; e++) {
                int at = r.nextInt(b.length);
                b[at] = switch (r.nextInt(3)) {
                    case 0 -> (byte) r.nextInt(256);
                    case 1 -> (byte) "0123456789{}[]\",:-e".charAt(r.nextInt(19));
                    default -> (byte) (b[at] ^ (1 << r.nextInt(8)));
                };
            }
            int len = r.nextInt(10) == 0 ? r.nextInt(b.length) : b.length;
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment m = arena.allocate(Math.max(1, len));
                MemorySegment.copy(MemorySegment.ofArray(b), 0, m, 0, len);
                try (SafetensorsFile s = SafetensorsFile.parse(m.asSlice(0, len), "mutant-" + i, null)) {
                    for (String n : s.entries().keySet()) {
                        MemorySegment d = s.data(n);     // every accepted extent is readable
                        if (d.byteSize() > 0) d.get(java.lang.foreign.ValueLayout.JAVA_BYTE, d.byteSize() - 1);
                    }
                } catch (SafetensorsFormatException expected) {
                    assertThat(expected.getMessage()).startsWith("mutant-" + i + ": ");
                }
            }
        }
    }
}
