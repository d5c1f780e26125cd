package io.moe4j.gguf;

import io.moe4j.tensor.DType;
import io.moe4j.tensor.Tensor;
import io.moe4j.tensor.quant.Quant;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/** A GGUF assembled byte by byte from the format definition (not by {@link GgufWriter}) reads back correctly. */
class GgufHandBuiltTest {

    @TempDir Path dir;

    /** v2 and v3 share the little-endian layout; alignment 32 is the default, 64 is set by key. */
    @ParameterizedTest
    @ValueSource(ints = {2, 3})
    void everyValueTypeAndTwoTensors(int version) throws IOException {
        for (int alignment : new int[]{32, 64}) {
            RawGguf g = new RawGguf().header(version, 2, alignment == 32 ? 17 : 18);
            g.key("general.architecture", GgufValueType.STRING).str("llama");
            if (alignment != 32) g.key("general.alignment", GgufValueType.UINT32).u32(alignment);
            g.key("u8", GgufValueType.UINT8).u8(200);
            g.key("i8", GgufValueType.INT8).u8(0xFB);
            g.key("u16", GgufValueType.UINT16).u16(65000);
            g.key("i16", GgufValueType.INT16).u16(-300 & 0xFFFF);
            g.key("u32", GgufValueType.UINT32).u32(4_000_000_000L);
            g.key("i32", GgufValueType.INT32).u32(-7);
            g.key("f32", GgufValueType.FLOAT32).f32(1.5f);
            g.key("bool", GgufValueType.BOOL).u8(1);
            g.key("u64", GgufValueType.UINT64).u64(-1L);
            g.key("i64", GgufValueType.INT64).u64(Long.MIN_VALUE);
            g.key("f64", GgufValueType.FLOAT64).f64(Math.PI);
            g.key("tokens", GgufValueType.ARRAY).u32(GgufValueType.STRING.id()).u64(3).str("a").str("bé").str("");
            g.key("ints", GgufValueType.ARRAY).u32(GgufValueType.INT32.id()).u64(3).u32(1).u32(-2).u32(3);
            g.key("nested", GgufValueType.ARRAY).u32(GgufValueType.ARRAY.id()).u64(2)
                    .u32(GgufValueType.STRING.id()).u64(2).str("x").str("yz")
                    .u32(GgufValueType.UINT8.id()).u64(1).u8(9);
            g.key("empty", GgufValueType.ARRAY).u32(GgufValueType.FLOAT32.id()).u64(0);
            g.key("name", GgufValueType.STRING).str("hand-built");
            g.tensorInfo("a", 0, 0, 3, 2);                        // F32 ne {3, 2}: 2 rows of 3
            g.tensorInfo("b", 8, alignment, 32);                   // Q8_0, one block, next aligned slot
            g.align(alignment);
            long dataStart = g.size();
            for (int i = 1; i <= 6; i++) g.f32(i);
            g.align(alignment);
            g.u16(0x3800);                                         // fp16 0.5
            for (int i = 0; i < 32; i++) g.u8(i - 16);
            Path f = dir.resolve("hand-v" + version + "-" + alignment + ".gguf");
            Files.write(f, g.toByteArray());

            try (GgufFile gguf = GgufFile.open(f)) {
                assertThat(gguf.version()).isEqualTo(version);
                assertThat(gguf.alignment()).isEqualTo(alignment);
                assertThat(gguf.dataOffset()).isEqualTo(dataStart);
                assertThat(gguf.architecture()).isEqualTo("llama");
                assertThat(gguf.get("u8").asLong()).isEqualTo(200);
                assertThat(gguf.get("i8").asLong()).isEqualTo(-5);
                assertThat(gguf.get("u16").asLong()).isEqualTo(65000);
                assertThat(gguf.get("i16").asLong()).isEqualTo(-300);
                assertThat(gguf.get("u32").asLong()).isEqualTo(4_000_000_000L);
                assertThat(gguf.get("i32").asInt()).isEqualTo(-7);
                assertThat(gguf.get("f32").value()).isEqualTo(1.5f);
                assertThat(gguf.get("bool").asBoolean()).isTrue();
                assertThat(gguf.get("u64").type()).isEqualTo(GgufValueType.UINT64);
                assertThat(gguf.get("u64").toString()).isEqualTo("18446744073709551615");
                assertThat(gguf.get("i64").asLong()).isEqualTo(Long.MIN_VALUE);
                assertThat(gguf.get("f64").asDouble()).isEqualTo(Math.PI);
                assertThat(gguf.get("tokens").asArray().strings()).containsExactly("a", "bé", "");
                assertThat(gguf.get("ints").asArray().toLongArray()).containsExactly(1, -2, 3);
                GgufArray nested = gguf.get("nested").asArray();
                assertThat(nested.size()).isEqualTo(2);
                assertThat(nested.getArray(0).strings()).containsExactly("x", "yz");
                assertThat(nested.getArray(1).getLong(0)).isEqualTo(9);
                assertThat(gguf.get("empty").asArray().size()).isZero();
                assertThat(gguf.metadata().keySet()).startsWith("general.architecture").endsWith("name");

                assertThat(gguf.tensors()).extracting(GgufTensorInfo::name).containsExactly("a", "b");
                Tensor a = gguf.tensor("a");
                assertThat(a.dtype()).isEqualTo(DType.F32);
                assertThat(a.shape()).containsExactly(2, 3);       // ne reversed
                assertThat(a.getFloat(0, 0)).isEqualTo(1f);
                assertThat(a.getFloat(1, 2)).isEqualTo(6f);
                Tensor b = gguf.tensor("b");
                assertThat(b.dtype()).isEqualTo(DType.Q8_0);
                float[] deq = new float[32];
                Quant.dequantize(DType.Q8_0, b.segment(), b.byteOffset(), deq, 0, 32);
                for (int i = 0; i < 32; i++) assertThat(deq[i]).isCloseTo((i - 16) * 0.5f, within(0f));
                // zero copy: the tensor's memory is the mapping at the right absolute address
                assertThat(gguf.tensorData("b").address()).isEqualTo(gguf.segment().address() + dataStart + alignment);
            }
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 1})
    void zeroAndOneDimensionalTensors(int nDims) throws IOException {
        RawGguf g = new RawGguf().header(3, 1, 0);
        if (nDims == 0) g.tensorInfo("s", 0, 0); else g.tensorInfo("s", 0, 0, 1);
        g.align(32).f32(42f);
        Path f = dir.resolve("scalar.gguf");
        Files.write(f, g.toByteArray());
        try (GgufFile gguf = GgufFile.open(f)) {
            Tensor s = gguf.tensor("s");
            assertThat(s.numel()).isEqualTo(1);
            assertThat(s.toFloatArray()).containsExactly(42f);
            assertThat(gguf.tensors()).hasSize(1);
            assertThat(List.of(gguf.tensorInfo("s").byteSize())).containsExactly(4L);
        }
    }
}
