package io.moe4j.infer.tokenizer;

import io.moe4j.gguf.GgmlType;
import io.moe4j.gguf.GgufWriter;
import io.moe4j.testutil.TinyGgufModels;
import io.moe4j.tokenizer.GgufVocab;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.function.Consumer;

/**
 * Tiny GGUF files llama.cpp loads, carrying a given tokenizer: the weights of a 1-layer {@code llama} model from
 * {@link TinyGgufModels} sized to the vocabulary, and {@code tokenizer.ggml.*} from a {@link GgufVocab}.
 */
final class TokenizerGgufs {
    private TokenizerGgufs() {}

    static void write(GgufVocab vocab, Path file, Consumer<GgufWriter> extra) throws IOException {
        int n = vocab.tokens().size();
        TinyGgufModels.Config c = new TinyGgufModels.Config(n, 32, 1, 2, 1, 32, 0, 0, 64, 10000f, 1e-5f, 1);
        TinyGgufModels.Model m = TinyGgufModels.llama(c);
        String a = "llama.";
        GgufWriter g = new GgufWriter()
                .putString("general.architecture", "llama")
                .putString("general.name", "moe4j-tokenizer-test")
                .putU32(a + "context_length", c.contextLength())
                .putU32(a + "embedding_length", c.dim())
                .putU32(a + "block_count", c.layers())
                .putU32(a + "feed_forward_length", c.ff())
                .putU32(a + "attention.head_count", c.heads())
                .putU32(a + "attention.head_count_kv", c.kvHeads())
                .putU32(a + "rope.dimension_count", c.headDim())
                .putF32(a + "rope.freq_base", c.ropeBase())
                .putF32(a + "attention.layer_norm_rms_epsilon", c.rmsEps());
        GgufTokenizers.put(g, vocab);
        if (extra != null) extra.accept(g);
        try (Arena arena = Arena.ofConfined()) {
            for (TinyGgufModels.Weight w : m.weights().values()) {
                MemorySegment seg = arena.allocate((long) w.data().length * Float.BYTES, 64);
                MemorySegment.copy(w.data(), 0, seg, ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0, w.data().length);
                g.addTensor(w.name(), GgmlType.F32, w.ne(), seg);
            }
            g.write(file);
        }
    }
}
