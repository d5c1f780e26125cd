package io.moe4j.gguf;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Each kind of hostile or broken file the issue names gives one {@link GgufFormatException} that says where and
 * what, and nothing is allocated from a header's claims (the absurd counts here would need exabytes).
 */
class GgufHostileTest {

    @TempDir Path dir;

    private GgufFormatException reject(byte[] bytes, String... expected) throws IOException {
        Path f = dir.resolve("bad.gguf");
        Files.write(f, bytes);
        var thrown = assertThatThrownBy(() -> GgufFile.open(f)).isInstanceOf(GgufFormatException.class)
                .hasMessageStartingWith(f.toString() + ": at byte ");
        for (String e : expected) thrown.hasMessageContaining(e);
        try {
            GgufFile.open(f).close();
        } catch (GgufFormatException e) {
            return e;
        }
        throw new AssertionError("accepted a file it had just rejected");
    }

    /** A small valid file: one key, tensors "a" (F32 {8}) at 0 and "b" (F32 {8}) at 32. */
    private static RawGguf valid(long offsetB, long... neB) {
        RawGguf g = new RawGguf().header(3, 2, 1);
        g.key("general.architecture", GgufValueType.STRING).str("llama");
        g.tensorInfo("a", 0, 0, 8);
        g.tensorInfo("b", 0, offsetB, neB);
        g.align(32);
        for (int i = 0; i < 16; i++) g.f32(i);        // exactly the two tensors: any truncation cuts one
        return g;
    }

    @Test
    void validBaselineOpens() throws IOException {
        Path f = dir.resolve("ok.gguf");
        Files.write(f, valid(32, 8).toByteArray());
        try (GgufFile g = GgufFile.open(f)) {
            assertThat(g.tensors()).hasSize(2);
        }
    }

    @Test
    void wrongMagicVersionsAndEndianness() throws IOException {
        byte[] ok = valid(32, 8).toByteArray();
        byte[] magic = ok.clone();
        magic[0] = 'X';
        reject(magic, "not a GGUF file", "58 47 55 46");
        reject(withU32(ok, 4, 1), "version 1 is not supported");
        reject(withU32(ok, 4, 0), "unsupported GGUF version 0");
        reject(withU32(ok, 4, 4), "unsupported GGUF version 4");
        reject(withU32(ok, 4, 0x03000000), "big-endian");
        reject(new byte[0], "truncated");
        reject(new byte[]{'G', 'G'}, "truncated");
    }

    @Test
    void truncatedAnywhereInTheHeaderOrData() throws IOException {
        byte[] ok = valid(32, 8).toByteArray();
        for (int len : new int[]{4, 7, 12, 20, 30, 40, 60, 80, 100, ok.length - 1}) {
            GgufFormatException e = reject(Arrays.copyOf(ok, len));
            assertThat(e.problem()).containsAnyOf("truncated", "file ends", "can hold at most", "only");
            assertThat(e.offset()).isBetween(0L, (long) len);
        }
    }

    @Test
    void tensorDataBeyondTheEndOfTheFile() throws IOException {
        reject(valid(1024, 8).toByteArray(), "tensor 'b'", "but the file ends at");
        reject(valid(32, 64).toByteArray(), "tensor 'b'", "but the file ends at");
        reject(valid(Long.MAX_VALUE - 31 - (Long.MAX_VALUE - 31) % 32, 8).toByteArray(), "tensor 'b'", "file ends");
        reject(valid(-32, 8).toByteArray(), "tensor 'b'", "beyond any file");
    }

    @Test
    void overlappingAndMisalignedTensors() throws IOException {
        reject(valid(0, 8).toByteArray(), "overlaps tensor");
        reject(overlapBy(16), "overlaps tensor");
        reject(valid(4, 8).toByteArray(), "not a multiple of the alignment 32");
    }

    private static byte[] overlapBy(int bytes) {
        RawGguf g = new RawGguf().header(3, 2, 1).key("general.alignment", GgufValueType.UINT32).u32(16);
        g.tensorInfo("a", 0, 0, 8).tensorInfo("b", 0, 32 - bytes, 8).align(16);
        for (int i = 0; i < 64; i++) g.f32(i);
        return g.toByteArray();
    }

    @Test
    void absurdCountsAndLengthsFailBeforeAllocating() throws IOException {
        reject(new RawGguf().header(3, Long.MAX_VALUE, 0).toByteArray(), "tensor count is 9223372036854775807", "can hold at most 0");
        reject(new RawGguf().header(3, -1, 0).toByteArray(), "tensor count is 18446744073709551615");
        reject(new RawGguf().header(3, 0, 1L << 40).u64(0).toByteArray(), "metadata entry count is 1099511627776");
        reject(new RawGguf().header(3, 0, 1).u64(1L << 60).bytes(new byte[64]).toByteArray(),
                "key of metadata entry 0 claims 1152921504606846976 bytes");
        reject(new RawGguf().header(3, 0, 1).key("s", GgufValueType.STRING).u64(-1).toByteArray(), "metadata 's' claims");
        reject(new RawGguf().header(3, 0, 1).key("a", GgufValueType.ARRAY).u32(GgufValueType.UINT8.id())
                .u64(1L << 50).bytes(new byte[100]).toByteArray(), "element count is 1125899906842624", "at most 100");
        reject(new RawGguf().header(3, 0, 1).key("a", GgufValueType.ARRAY).u32(GgufValueType.STRING.id())
                .u64(1000).u64(0).u64(0).toByteArray(), "element count is 1000", "at most 2");
        reject(new RawGguf().header(3, 0, 1).key("a", GgufValueType.ARRAY).u32(GgufValueType.STRING.id())
                .u64(2).u64(1).bytes((byte) 'x').u64(1L << 40).bytes(new byte[20]).toByteArray(), "metadata 'a'[1] claims 1099511627776");
    }

    @Test
    void absurdDimensions() throws IOException {
        reject(new RawGguf().header(3, 1, 0).tensorInfo("t", 0, 0, 1, 1, 1, 1, 1).align(32).toByteArray(),
                "tensor 't' has 5 dimensions");
        reject(new RawGguf().header(3, 1, 0).tensorInfo("t", 0, 0, 1L << 32, 1L << 32).align(32).toByteArray(),
                "overflows 64 bits");
        // 2^62 elements fit in 64 bits, their 2^64 F32 bytes do not
        reject(new RawGguf().header(3, 1, 0).tensorInfo("t", 0, 0, 1L << 40, 1L << 22).align(32).toByteArray(),
                "overflows 64 bits");
        reject(new RawGguf().header(3, 1, 0).tensorInfo("t", 0, 0, 4, -1).align(32).toByteArray(), "negative dimension ne[1]");
        reject(new RawGguf().header(3, 1, 0).tensorInfo("t", 0, 0, 1L << 30, 1L << 30).align(32).toByteArray(),
                "file ends");                             // a 4 EiB tensor is representable but not in this file
        reject(new RawGguf().header(3, 1, 0).tensorInfo("t", 8, 0, 33).align(32).toByteArray(),
                "ne[0] = 33 is not a multiple of the Q8_0 block size 32");
        reject(new RawGguf().header(3, 1, 0).tensorInfo("t", 4, 0, 32).align(32).toByteArray(), "retired GGML type id 4");
        reject(new RawGguf().header(3, 1, 0).tensorInfo("t", 999, 0, 32).align(32).toByteArray(), "unknown or retired GGML type id 999");
    }

    @Test
    void duplicatesAndBadValueTypes() throws IOException {
        reject(new RawGguf().header(3, 0, 2).key("k", GgufValueType.UINT8).u8(1).key("k", GgufValueType.UINT8).u8(2).toByteArray(),
                "duplicate metadata key 'k'");
        RawGguf dupT = new RawGguf().header(3, 2, 0).tensorInfo("w", 0, 0, 8).tensorInfo("w", 0, 32, 8).align(32);
        for (int i = 0; i < 16; i++) dupT.f32(i);
        reject(dupT.toByteArray(), "duplicate tensor name 'w'");
        reject(new RawGguf().header(3, 0, 1).str("k").u32(13).u8(0).toByteArray(), "unknown value type 13");
        reject(new RawGguf().header(3, 0, 1).key("a", GgufValueType.ARRAY).u32(77).u64(0).toByteArray(), "unknown value type 77");
    }

    @Test
    void badAlignment() throws IOException {
        reject(new RawGguf().header(3, 0, 1).key("general.alignment", GgufValueType.UINT32).u32(48).toByteArray(), "power of two");
        reject(new RawGguf().header(3, 0, 1).key("general.alignment", GgufValueType.UINT32).u32(0).toByteArray(), "power of two");
        reject(new RawGguf().header(3, 0, 1).key("general.alignment", GgufValueType.UINT64).u64(32).toByteArray(), "must be a UINT32");
    }

    @Test
    void deeplyNestedArraysAreRefusedWithoutExhaustingTheStack() throws IOException {
        RawGguf g = new RawGguf().header(3, 0, 1).key("deep", GgufValueType.ARRAY);
        for (int d = 0; d < 100_000; d++) g.u32(GgufValueType.ARRAY.id()).u64(1);
        g.u32(GgufValueType.UINT8.id()).u64(0);
        reject(g.toByteArray(), "nested more than 8 deep");
    }

    @Test
    void errorCarriesFileOffsetAndProblem() throws IOException {
        byte[] bad = withU32(valid(32, 8).toByteArray(), 4, 9);
        GgufFormatException e = reject(bad);
        assertThat(e.offset()).isEqualTo(4);
        assertThat(e.file()).endsWith("bad.gguf");
        assertThat(e.problem()).isEqualTo("unsupported GGUF version 9 (this reader knows 2 and 3)");
    }

    private static byte[] withU32(byte[] b, int at, int v) {
        byte[] c = b.clone();
        for (int i = 0; i < 4; i++) c[at + i] = (byte) (v >>> (8 * i));
        return c;
    }
}
