package io.moe4j.tensor;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class TensorTest {

    @Test
    void dtypesDescribeGgmlBlocks() {
        assertThat(DType.Q8_0.bytesPerBlock()).isEqualTo(2 + 32);
        assertThat(DType.Q4_0.bytesPerBlock()).isEqualTo(2 + 16);
        assertThat(DType.Q8_0.byteSize(64)).isEqualTo(68);
        assertThat(DType.F16.byteSize(3)).isEqualTo(6);
        assertThat(DType.ofGgmlId(8)).isEqualTo(DType.Q8_0);
        assertThat(DType.ofGgmlId(2)).isEqualTo(DType.Q4_0);
        assertThat(DType.ofGgmlId(30)).isEqualTo(DType.BF16);
        assertThat(DType.ofGgmlId(999)).isNull();
        assertThatThrownBy(() -> DType.Q4_0.byteSize(33)).hasMessageContaining("multiple of 32");
    }

    @Test
    void viewsShareStorage() {
        try (Arena arena = Arena.ofConfined()) {
            float[] v = new float[2 * 3 * 4];
            for (int i = 0; i < v.length; i++) v[i] = i;
            Tensor t = Tensor.ofFloats(arena, v, 2, 3, 4);
            assertThat(t.isContiguous()).isTrue();
            assertThat(t.getFloat(1, 2, 3)).isEqualTo(23f);

            Tensor s = t.select(0, 1);               // (3, 4)
            assertThat(s.shape()).containsExactly(3, 4);
            assertThat(s.getFloat(0, 0)).isEqualTo(12f);

            Tensor tr = s.transpose(0, 1);           // (4, 3)
            assertThat(tr.isContiguous()).isFalse();
            assertThat(tr.getFloat(3, 2)).isEqualTo(23f);
            assertThat(tr.toFloatArray()).containsExactly(12, 16, 20, 13, 17, 21, 14, 18, 22, 15, 19, 23);

            Tensor sl = t.slice(2, 1, 3);            // (2, 3, 2)
            assertThat(sl.toFloatArray()).startsWith(1f, 2f, 5f, 6f);
            sl.setFloat(-1f, 0, 0, 0);
            assertThat(t.getFloat(0, 0, 1)).isEqualTo(-1f);

            Tensor r = t.reshape(6, 4);
            assertThat(r.getFloat(5, 3)).isEqualTo(23f);
            assertThatThrownBy(() -> tr.reshape(12)).hasMessageContaining("contiguous");
            assertThatThrownBy(() -> t.reshape(5, 5)).hasMessageContaining("cannot reshape");
            assertThatThrownBy(() -> t.slice(0, 1, 3)).isInstanceOf(IndexOutOfBoundsException.class);
            assertThatThrownBy(() -> t.getFloat(0, 3, 0)).isInstanceOf(IndexOutOfBoundsException.class);
        }
    }

    @Test
    void quantizedTensorsKeepWholeBlocks() {
        try (Arena arena = Arena.ofConfined()) {
            Tensor q = Tensor.allocate(arena, DType.Q8_0, 4, 64);
            assertThat(q.segment().byteSize()).isEqualTo(4 * 68);
            Tensor row = q.select(0, 2);
            assertThat(row.byteOffset()).isEqualTo(2 * 68);
            assertThat(q.slice(1, 32, 64).byteOffset()).isEqualTo(34);
            assertThatThrownBy(() -> q.slice(1, 1, 33)).hasMessageContaining("block");
            assertThatThrownBy(() -> Tensor.allocate(arena, DType.Q4_0, 3, 31)).hasMessageContaining("multiple of 32");
            assertThatThrownBy(() -> q.transpose(0, 1)).hasMessageContaining("block dimension");
            assertThatThrownBy(() -> q.getFloat(0, 0)).hasMessageContaining("F32");
        }
    }

    @Test
    void wrapChecksTheSegmentSize() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocate(40);
            assertThat(Tensor.wrap(seg, DType.F32, 2, 5).numel()).isEqualTo(10);
            assertThatThrownBy(() -> Tensor.wrap(seg, DType.F32, 11)).hasMessageContaining("too small");
        }
    }

    @Test
    void mapsFileRegionsWithoutCopying(@org.junit.jupiter.api.io.TempDir Path dir) throws IOException {
        Path f = dir.resolve("w.bin");
        byte[] bytes = new byte[1000];
        for (int i = 0; i < bytes.length; i++) bytes[i] = (byte) i;
        Files.write(f, bytes);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment m = Tensor.mapFile(f, 100, 16, arena);
            assertThat(m.byteSize()).isEqualTo(16);
            assertThat(m.get(java.lang.foreign.ValueLayout.JAVA_BYTE, 0)).isEqualTo((byte) 100);
            assertThatThrownBy(() -> Tensor.mapFile(f, 990, 16, arena)).isInstanceOf(IOException.class)
                    .hasMessageContaining("beyond the end");
        }
    }
}
