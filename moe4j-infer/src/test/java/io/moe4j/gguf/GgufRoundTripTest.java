package io.moe4j.gguf;

import io.moe4j.tensor.DType;
import io.moe4j.tensor.Tensor;
import io.moe4j.tensor.quant.Quant;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Writer → reader round trips: identical metadata (every type), identical tensor bytes, llama.cpp's layout. */
class GgufRoundTripTest {

    @TempDir Path dir;

    /** Small files exercising every metadata type, every moe4j dtype and one type moe4j cannot compute with. */
    static GgufWriter sample(Arena arena, long seed, int alignment) {
        Random r = new Random(seed);
        GgufWriter w = new GgufWriter();
        if (alignment != GgufFile.DEFAULT_ALIGNMENT) w.alignment(alignment);
        w.putString("general.architecture", "qwen2moe").putString("general.name", "tiny-é-" + seed)
                .putU32("qwen2moe.block_count", 2).putU32("qwen2moe.expert_count", 4).putU32("qwen2moe.expert_used_count", 2)
                .putU32("qwen2moe.embedding_length", 64).putF32("qwen2moe.rope.freq_base", 10000f)
                .put("u8", GgufValue.u8(255)).put("i8", GgufValue.i8(-128)).put("u16", GgufValue.u16(65535))
                .put("i16", GgufValue.i16(-32768)).put("u32", GgufValue.u32(0xFFFF_FFFFL)).putI32("i32", Integer.MIN_VALUE)
                .putU64("u64", -2L).put("i64", GgufValue.i64(r.nextLong())).putF32("f32", Float.NaN)
                .put("f64", GgufValue.f64(-0.0)).putBool("bool", true).putString("empty", "")
                .putString("tokenizer.ggml.model", "gpt2")
                .putArray("tokenizer.ggml.tokens", GgufArray.ofStrings(tokens(r, 100)))
                .putArray("tokenizer.ggml.scores", GgufArray.ofFloats(1f, -2.5f, Float.MIN_VALUE))
                .putU32("tokenizer.ggml.bos_token_id", 1).putU32("tokenizer.ggml.eos_token_id", 2)
                .putArray("a.u8", GgufArray.ofLongs(GgufValueType.UINT8, 0, 255))
                .putArray("a.i8", GgufArray.ofLongs(GgufValueType.INT8, -128, 127))
                .putArray("a.u16", GgufArray.ofLongs(GgufValueType.UINT16, 65535))
                .putArray("a.i16", GgufArray.ofLongs(GgufValueType.INT16, -1, 1))
                .putArray("a.u32", GgufArray.ofLongs(GgufValueType.UINT32, 0xFFFF_FFFFL))
                .putArray("a.i32", GgufArray.ofInts(-1, 0, 1))
                .putArray("a.u64", GgufArray.ofLongs(GgufValueType.UINT64, -1L))
                .putArray("a.i64", GgufArray.ofLongs(GgufValueType.INT64, Long.MIN_VALUE, Long.MAX_VALUE))
                .putArray("a.f64", GgufArray.ofDoubles(Math.E))
                .putArray("a.bool", GgufArray.ofBooleans(true, false, true))
                .putArray("a.empty", GgufArray.ofStrings())
                .putArray("a.nested", GgufArray.ofArrays(List.of(GgufArray.ofStrings(tokens(r, 40)),
                        GgufArray.ofStrings("x"), GgufArray.ofInts(7),
                        GgufArray.ofArrays(List.of(GgufArray.ofStrings("deep"))))));
        float[] x = new float[64 * 4];
        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
        w.addTensor("token_embd.weight", Tensor.ofFloats(arena, x, 4, 64));
        for (DType t : new DType[]{DType.F16, DType.BF16, DType.Q8_0, DType.Q4_0}) {
            Tensor q = Tensor.allocate(arena, t, 4, 2, 32);          // 4 experts of (2, 32)
            Quant.quantize(t, x, 0, q.segment(), 0, 256);
            w.addTensor("blk.0.ffn_gate_exps." + t.name().toLowerCase(), q);
        }
        byte[] k = new byte[144 * 2];
        r.nextBytes(k);
        w.addTensor("blk.1.ffn_down_exps.weight", GgmlType.Q4_K, new long[]{256, 2}, MemorySegment.ofArray(k));
        byte[] k5 = new byte[176 * 2];   // Q5_K: listed by inspect, not computable by moe4j yet
        r.nextBytes(k5);
        w.addTensor("blk.1.ffn_up_exps.weight", GgmlType.Q5_K, new long[]{256, 2}, MemorySegment.ofArray(k5));
        w.addTensor("output_norm.weight", Tensor.ofFloats(arena, new float[]{1, 2, 3}, 3));
        return w;
    }

    static List<String> tokens(Random r, int n) {
        String[] pieces = {"a", "Ġthe", "<s>", "é", "日本", "", "\n", "🙂"};
        return java.util.stream.IntStream.range(0, n).mapToObj(i -> pieces[r.nextInt(pieces.length)] + i).toList();
    }

    @Test
    void everyTypeRoundTripsExactly() throws IOException {
        for (int alignment : new int[]{32, 64, 1}) {
            try (Arena arena = Arena.ofConfined()) {
                GgufWriter w = sample(arena, alignment, alignment);
                Path f = dir.resolve("rt" + alignment + ".gguf");
                w.write(f);
                try (GgufFile g = GgufFile.open(f)) {
                    assertThat(g.version()).isEqualTo(3);
                    assertThat(g.alignment()).isEqualTo(alignment);
                    Map<String, GgufValue> md = g.metadata();
                    assertThat(md.get("u8").asLong()).isEqualTo(255);
                    assertThat(md.get("i16").asLong()).isEqualTo(-32768);
                    assertThat(md.get("u64").toString()).isEqualTo("18446744073709551614");
                    assertThat((Float) md.get("f32").value()).isNaN();
                    assertThat(Double.doubleToRawLongBits((Double) md.get("f64").value())).isEqualTo(Long.MIN_VALUE);
                    assertThat(md.get("a.nested").asArray().getArray(3).getArray(0).strings()).containsExactly("deep");
                    assertThat(md.get("a.nested").asArray().getArray(0).strings()).isEqualTo(tokensOf(alignment, 100, 40));
                    assertThat(md.get("tokenizer.ggml.tokens").asArray().strings()).isEqualTo(tokensOf(alignment, 100, 0));
                    assertThat(md.get("a.bool").asArray().getBoolean(2)).isTrue();
                    assertThat(md.get("a.i64").asArray().toLongArray()).containsExactly(Long.MIN_VALUE, Long.MAX_VALUE);

                    // write it again from what was read: identical bytes prove metadata and tensors round-trip
                    GgufWriter again = new GgufWriter();
                    md.forEach(again::put);
                    for (GgufTensorInfo t : g.tensors()) again.addTensor(t.name(), t.type(), t.ne(), g.tensorData(t.name()));
                    Path f2 = dir.resolve("rt" + alignment + "-again.gguf");
                    again.write(f2);
                    assertThat(Files.mismatch(f, f2)).isEqualTo(-1L);

                    // llama.cpp's layout: tensors back to back in order, each padded to the alignment
                    long expected = 0;
                    for (GgufTensorInfo t : g.tensors()) {
                        assertThat(t.offset()).isEqualTo(expected);
                        expected = GgufFile.alignUp(t.offset() + t.byteSize(), alignment);
                    }
                    assertThat(g.fileSize()).isEqualTo(g.dataOffset() + expected);

                    Tensor q8 = g.tensor("blk.0.ffn_gate_exps.q8_0");
                    assertThat(q8.dtype()).isEqualTo(DType.Q8_0);
                    assertThat(q8.shape()).containsExactly(4, 2, 32);
                    assertThat(g.tensorInfo("blk.0.ffn_gate_exps.q8_0").ne()).containsExactly(32, 2, 4);
                    assertThat(g.tensor("token_embd.weight").shape()).containsExactly(4, 64);
                    assertThat(g.tensor("output_norm.weight").toFloatArray()).containsExactly(1, 2, 3);
                    Tensor q4k = g.tensor("blk.1.ffn_down_exps.weight");
                    assertThat(q4k.dtype()).isEqualTo(DType.Q4_K);
                    assertThat(q4k.shape()).containsExactly(2, 256);
                    assertThat(g.tensorInfo("blk.1.ffn_down_exps.weight").byteSize()).isEqualTo(288);
                    assertThatThrownBy(() -> g.tensor("blk.1.ffn_up_exps.weight"))
                            .isInstanceOf(UnsupportedOperationException.class)
                            .hasMessageContaining("unsupported tensor type").hasMessageContaining("Q5_K");
                }
            }
        }
    }

    private static List<String> tokensOf(long seed, int first, int second) {
        Random r = new Random(seed);
        r.nextLong();                            // the i64 value drawn first in sample()
        List<String> a = tokens(r, first);
        return second == 0 ? a : tokens(r, second);
    }

    @Test
    void tensorsAreViewsOfOneMapping() throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            Path f = dir.resolve("views.gguf");
            sample(arena, 1, 32).write(f);
            GgufFile g = GgufFile.open(f);
            long base = g.segment().address();
            for (GgufTensorInfo t : g.tensors()) {
                assertThat(g.tensorData(t.name()).address()).isEqualTo(base + g.dataOffset() + t.offset());
            }
            MemorySegment data = g.tensorData("output_norm.weight");
            GgufArray tokens = g.get("tokenizer.ggml.tokens").asArray();
            g.close();
            g.close();                                  // idempotent
            assertThatThrownBy(() -> data.get(ValueLayout.JAVA_BYTE, 0)).isInstanceOf(IllegalStateException.class);
            assertThatThrownBy(() -> tokens.getString(0)).isInstanceOf(IllegalStateException.class);
        }
    }

    @Test
    void failedWriteLeavesNothingBehind() throws IOException {
        Path f = dir.resolve("model.gguf");
        Files.writeString(f, "previous contents");
        GgufWriter w = new GgufWriter().putString("general.architecture", "llama");
        Arena gone = Arena.ofConfined();
        Tensor t = Tensor.ofFloats(gone, new float[32], 32);
        w.addTensor("a", Tensor.ofFloats(Arena.ofAuto(), new float[1 << 16], 1 << 16));
        w.addTensor("b", t);
        gone.close();                                 // the source dies after the header and tensor "a" were written
        assertThatThrownBy(() -> w.write(f)).isInstanceOf(IllegalStateException.class);
        assertThat(Files.readString(f)).isEqualTo("previous contents");
        try (var s = Files.list(dir)) {
            assertThat(s.map(p -> p.getFileName().toString())).containsExactly("model.gguf");
        }
    }

    @Test
    void writerRefusesWhatLlamaCppWouldNotLoad() {
        GgufWriter w = new GgufWriter().putU32("k", 1);
        assertThatThrownBy(() -> w.putU32("k", 2)).hasMessageContaining("duplicate metadata key");
        assertThatThrownBy(() -> w.alignment(48)).hasMessageContaining("power of two");
        assertThatThrownBy(() -> w.putString("general.alignment", "32")).hasMessageContaining("UINT32");
        MemorySegment four = MemorySegment.ofArray(new byte[4]);
        w.addTensor("t", GgmlType.F32, new long[]{1}, four);
        assertThatThrownBy(() -> w.addTensor("t", GgmlType.F32, new long[]{1}, four)).hasMessageContaining("duplicate tensor name");
        assertThatThrownBy(() -> w.addTensor("x".repeat(64), GgmlType.F32, new long[]{1}, four)).hasMessageContaining("at most 63");
        assertThatThrownBy(() -> w.addTensor("u", GgmlType.F32, new long[]{2}, four)).hasMessageContaining("needs 8 bytes");
        assertThatThrownBy(() -> w.addTensor("v", GgmlType.Q8_0, new long[]{16}, four)).hasMessageContaining("block size 32");
        assertThatThrownBy(() -> w.addTensor("w", GgmlType.F32, new long[]{1, 1, 1, 1, 1}, four)).hasMessageContaining("5 dimensions");
    }

    /** A sparse 4.3 GB file: a tensor past 2 GiB and one larger than 2 GiB, both read through the one mapping. */
    @Test
    void filesLargerThanTwoGiB() throws IOException {
        long far = (1L << 31) + (1L << 20);
        long hugeNe = (1L << 29) + 8;                  // 2 GiB + 32 bytes of F32
        RawGguf g = new RawGguf().header(3, 2, 0)
                .tensorInfo("far", 0, far, 8)
                .tensorInfo("huge", 0, far + 32, hugeNe)
                .align(32);
        long dataOffset = g.size();
        Path f = dir.resolve("big.gguf");
        Files.write(f, g.toByteArray());
        try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
            raf.setLength(dataOffset + far + 32 + hugeNe * 4);
            raf.seek(dataOffset + far);
            raf.write(new byte[]{0, 0, (byte) 0x80, 0x3f});        // 1.0f
            raf.seek(dataOffset + far + 32 + hugeNe * 4 - 4);
            raf.write(new byte[]{0, 0, 0, 0x40});                   // 2.0f, the very last element
        }
        try (GgufFile gguf = GgufFile.open(f)) {
            assertThat(gguf.fileSize()).isGreaterThan(4L << 30);
            assertThat(gguf.tensor("far").getFloat(0)).isEqualTo(1f);
            Tensor huge = gguf.tensor("huge");
            assertThat(huge.segment().byteSize()).isGreaterThan(1L << 31);
            assertThat(huge.getFloat(hugeNe - 1)).isEqualTo(2f);
            assertThat(huge.getFloat(0)).isEqualTo(0f);
        } finally {
            Files.delete(f);
        }
    }
}
