package io.moe4j.train.checkpoint;

import io.moe4j.nn.F32;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class CheckpointFileTest {

    private static CheckpointHeader header() {
        return new CheckpointHeader("{\"name\":\"t\"}", 10, 7, 123L, 7L, 1.0, 999L,
                List.of(new CheckpointHeader.RouterState(0, "deepseek-v3", 42, new float[]{0.5f, -0.5f}, -1)),
                List.of(new CheckpointHeader.ParamEntry("a", new long[]{2, 3}, 6),
                        new CheckpointHeader.ParamEntry("b", new long[]{5}, 5)));
    }

    private static Path write(Path dir, Arena arena) {
        MemorySegment a = F32.alloc(arena, 6), b = F32.alloc(arena, 5);
        for (int i = 0; i < 6; i++) F32.set(a, i, i + 0.5f);
        for (int i = 0; i < 5; i++) F32.set(b, i, -i);
        MemorySegment ma = F32.alloc(arena, 6), mb = F32.alloc(arena, 5), va = F32.alloc(arena, 6), vb = F32.alloc(arena, 5);
        F32.set(ma, 2, 7f);
        F32.set(vb, 4, 9f);
        Path f = dir.resolve("ckpt-00000007.moe4j");
        CheckpointFile.write(f, header(), List.of(a, b), List.of(ma, mb), List.of(va, vb));
        return f;
    }

    @Test
    void roundTripsHeaderAndTensors(@TempDir Path dir) {
        try (Arena arena = Arena.ofConfined()) {
            Path f = write(dir, arena);
            assertThat(Files.exists(dir.resolve("ckpt-00000007.moe4j.tmp"))).isFalse();
            try (CheckpointFile.Loaded l = CheckpointFile.read(f)) {
                assertThat(l.header().step()).isEqualTo(7);
                assertThat(l.header().dataPosition()).isEqualTo(123L);
                assertThat(l.header().routers().get(0).state()).containsExactly(0.5f, -0.5f);
                MemorySegment out = F32.alloc(arena, 6);
                l.copyTo("params", 0, out);
                assertThat(F32.toArray(out, 0, 6)).containsExactly(0.5f, 1.5f, 2.5f, 3.5f, 4.5f, 5.5f);
                l.copyTo("params", 1, out);
                assertThat(F32.toArray(out, 0, 5)).containsExactly(0f, -1f, -2f, -3f, -4f);
                l.copyTo("adam.m", 0, out);
                assertThat(F32.get(out, 2)).isEqualTo(7f);
                l.copyTo("adam.v", 1, out);
                assertThat(F32.get(out, 4)).isEqualTo(9f);
            }
        }
    }

    @Test
    void everyTruncationIsRejectedNamingTheFile(@TempDir Path dir) throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            Path f = write(dir, arena);
            byte[] all = Files.readAllBytes(f);
            Path cut = dir.resolve("cut.moe4j");
            for (int len = 0; len < all.length; len += 7) {
                Files.write(cut, Arrays.copyOf(all, len));
                assertThatThrownBy(() -> CheckpointFile.read(cut)).isInstanceOf(CheckpointException.class)
                        .hasMessageContaining("cut.moe4j").hasMessageContaining("truncated");
            }
        }
    }

    @Test
    void flippedBytesAreCaughtByTheSectionCrc(@TempDir Path dir) throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            Path f = write(dir, arena);
            byte[] all = Files.readAllBytes(f);
            byte[] name = {6, 0, 0, 0, 'p', 'a', 'r', 'a', 'm', 's'};   // u32 name length, name
            int paramsAt = indexOf(all, name) + name.length + 8;         // then the u64 byte length
            byte[] bad = all.clone();
            bad[paramsAt + 5] ^= 0x10;
            Path p = dir.resolve("bad.moe4j");
            Files.write(p, bad);
            assertThatThrownBy(() -> CheckpointFile.read(p)).isInstanceOf(CheckpointException.class)
                    .hasMessageContaining("bad.moe4j").hasMessageContaining("CRC32C mismatch in section 'params'");
            bad = all.clone();
            bad[0] = 'X';
            Files.write(p, bad);
            assertThatThrownBy(() -> CheckpointFile.read(p)).hasMessageContaining("not a moe4j checkpoint");
            bad = all.clone();
            bad[8] = 9;
            Files.write(p, bad);
            assertThatThrownBy(() -> CheckpointFile.read(p)).hasMessageContaining("format version 9 is not supported");
            Files.write(p, Arrays.copyOf(all, all.length + 3));
            assertThatThrownBy(() -> CheckpointFile.read(p)).hasMessageContaining("extra bytes");
            assertThatThrownBy(() -> CheckpointFile.read(dir.resolve("none.moe4j"))).hasMessageContaining("no such file");
        }
    }

    private static int indexOf(byte[] hay, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= hay.length; i++) {
            for (int j = 0; j < needle.length; j++) if (hay[i + j] != needle[j]) continue outer;
            return i;
        }
        throw new AssertionError("not found");
    }
}
