package io.moe4j.infer.tokenizer;

import io.moe4j.gguf.GgufArray;
import io.moe4j.gguf.GgufFile;
import io.moe4j.gguf.GgufWriter;
import io.moe4j.tokenizer.BpeTrainer;
import io.moe4j.tokenizer.ByteLevelBpe;
import io.moe4j.tokenizer.GgufVocab;
import io.moe4j.tokenizer.PreTokenizer;
import io.moe4j.tokenizer.SentencePieceBpe;
import io.moe4j.tokenizer.TokenType;
import io.moe4j.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Loading tokenizers from GGUF metadata without a peer: round trips, llama.cpp's defaults, errors naming the key. */
class GgufTokenizersTest {
    static ByteLevelBpe bpe;

    static synchronized ByteLevelBpe bpe() throws IOException {
        if (bpe == null) {
            bpe = new BpeTrainer().vocabSize(600).preTokenizer(PreTokenizer.QWEN2).specials(List.of("<|endoftext|>", "<|im_start|>", "<|im_end|>"))
                    .eos("<|endoftext|>").train(List.of(LlamaCppTokenizerTest.corpus().split("\n\n")));
        }
        return bpe;
    }

    /** Only tokenizer metadata (no tensors): enough for the loader. */
    static Tokenizer load(Path dir, Consumer<GgufWriter> meta) throws IOException {
        Path f = dir.resolve("t.gguf");
        GgufWriter w = new GgufWriter().putString("general.architecture", "llama");
        meta.accept(w);
        w.write(f);
        try (GgufFile g = GgufFile.open(f)) {
            return GgufTokenizers.load(g);
        }
    }

    @Test
    void byteLevelRoundTrip(@TempDir Path dir) throws IOException {
        ByteLevelBpe t = bpe();
        Tokenizer u = load(dir, w -> GgufTokenizers.put(w, t.toGguf()));
        assertThat(u).isInstanceOf(ByteLevelBpe.class);
        String s = "<|im_start|>user\nDon't panic: 42 apples 🍎<|im_end|>";
        assertThat(u.encode(s, true)).containsExactly(t.encode(s, true));
        assertThat(u.eos()).isEqualTo(t.eos());
        // "<|im_end|>" and "<|endoftext|>" stop generation in llama.cpp by their text
        assertThat(u.stopTokens()).contains(t.vocabulary().id("<|im_end|>"), t.eos());
        assertThat(u.addBos()).isFalse();   // qwen2: llama.cpp's default is no BOS
    }

    @Test
    void sentencePieceRoundTripAndDefaults(@TempDir Path dir) throws IOException {
        SentencePieceBpe t = SentencePieceBpe.fromByteLevel(bpe(), true);
        GgufVocab v = t.toGguf();
        // drop the id keys: llama.cpp's SentencePiece defaults are unk 0, bos 1, eos 2
        Tokenizer u = load(dir, w -> w.putString(GgufTokenizers.MODEL, "llama")
                .putArray(GgufTokenizers.TOKENS, GgufArray.ofStrings(v.tokens()))
                .putArray(GgufTokenizers.SCORES, GgufArray.ofFloats(v.scores()))
                .putArray(GgufTokenizers.TYPES, GgufArray.ofInts(v.typeIds())));
        assertThat(u).isInstanceOf(SentencePieceBpe.class);
        assertThat(List.of(u.bos(), u.eos(), ((SentencePieceBpe) u).unk())).containsExactly(1, 2, 0);
        assertThat(u.addBos()).isTrue();
        String s = "Hello  wörld\n\ttab 12345";
        assertThat(u.encode(s)).containsExactly(t.encode(s));
        assertThat(u.encodePrompt(s, false)[0]).isEqualTo(1);
        assertThat(u.decode(u.encode(s))).isEqualTo(s);
    }

    @Test
    void endOfTurnTextBecomesControl(@TempDir Path dir) throws IOException {
        List<String> tokens = new ArrayList<>();
        for (int b = 0; b < 256; b++) tokens.add(String.valueOf(io.moe4j.tokenizer.ByteLevel.charOf(b)));
        tokens.add("<|im_end|>");
        int[] types = new int[tokens.size()];
        java.util.Arrays.fill(types, TokenType.NORMAL.id());   // mistyped as normal, as some converted files are
        Tokenizer u = load(dir, w -> w.putString(GgufTokenizers.MODEL, "gpt2").putString(GgufTokenizers.PRE, "qwen2")
                .putArray(GgufTokenizers.TOKENS, GgufArray.ofStrings(tokens)).putArray(GgufTokenizers.TYPES, GgufArray.ofInts(types))
                .putArray(GgufTokenizers.MERGES, GgufArray.ofStrings()));
        assertThat(u.encode("<|im_end|>", true)).containsExactly(256);
        assertThat(u.encode("<|im_end|>", false)).hasSize(10);   // control now: only parsed on request
        assertThat(u.stopTokens()).contains(256);
        assertThat(u.bos()).isEqualTo(11);   // gpt2 default bos = eos = 11, kept since 11 < vocab size
    }

    @Test
    void loadsTheTinyTestModelsVocabulary(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("tiny.gguf");
        io.moe4j.testutil.TinyGgufModels.llama(io.moe4j.testutil.TinyGgufModels.Config.dense(1)).write(f);
        try (GgufFile g = GgufFile.open(f)) {
            Tokenizer t = GgufTokenizers.load(g);
            assertThat(t.vocabSize()).isEqualTo(64);
            assertThat(t.encode("\n")).containsExactly(io.moe4j.testutil.TinyGgufModels.NEWLINE);
            assertThat(List.of(t.bos(), t.eos())).containsExactly(io.moe4j.testutil.TinyGgufModels.BOS, io.moe4j.testutil.TinyGgufModels.EOS);
            assertThat(t.decode(new int[]{10})).isEqualTo(" t10");
        }
    }

    @Test
    void errorsNameTheKey(@TempDir Path dir) throws IOException {
        GgufVocab v = bpe().toGguf();
        assertThatThrownBy(() -> load(dir, w -> {})).hasMessageContaining("missing metadata key tokenizer.ggml.model");
        assertThatThrownBy(() -> load(dir, w -> w.putString(GgufTokenizers.MODEL, "t5")))
                .hasMessageContaining("tokenizer.ggml.model = 't5' is not supported");
        assertThatThrownBy(() -> load(dir, w -> w.putString(GgufTokenizers.MODEL, "gpt2")))
                .hasMessageContaining("missing metadata key tokenizer.ggml.tokens");
        assertThatThrownBy(() -> load(dir, w -> w.putString(GgufTokenizers.MODEL, "gpt2").putArray(GgufTokenizers.TOKENS, GgufArray.ofStrings(v.tokens()))
                .putString(GgufTokenizers.PRE, "falcon"))).hasMessageContaining("tokenizer.ggml.pre = 'falcon' is not supported");
        assertThatThrownBy(() -> load(dir, w -> w.putString(GgufTokenizers.MODEL, "gpt2").putArray(GgufTokenizers.TOKENS, GgufArray.ofStrings(v.tokens()))
                .putString(GgufTokenizers.PRE, "qwen2"))).hasMessageContaining("missing metadata key tokenizer.ggml.merges");
        // no pre-tokenizer: llama.cpp's "default"
        assertThat(((ByteLevelBpe) load(dir, w -> w.putString(GgufTokenizers.MODEL, "gpt2").putArray(GgufTokenizers.TOKENS, GgufArray.ofStrings(v.tokens()))
                .putArray(GgufTokenizers.MERGES, GgufArray.ofStrings(v.merges())))).preTokenizer()).isEqualTo(PreTokenizer.DEFAULT);
        assertThatThrownBy(() -> load(dir, w -> w.putString(GgufTokenizers.MODEL, "gpt2").putArray(GgufTokenizers.TOKENS, GgufArray.ofStrings(v.tokens()))
                .putArray(GgufTokenizers.TYPES, GgufArray.ofInts(1, 1)))).hasMessageContaining("tokenizer.ggml.token_type has 2 entries");
        assertThatThrownBy(() -> load(dir, w -> w.putString(GgufTokenizers.MODEL, "gpt2").putArray(GgufTokenizers.TOKENS, GgufArray.ofInts(1, 2))))
                .hasMessageContaining("tokenizer.ggml.tokens must be a STRING array");
        assertThatThrownBy(() -> load(dir, w -> GgufTokenizers.put(w, v).putU32(GgufTokenizers.EOT, 100_000)))
                .hasMessageContaining("tokenizer.ggml.eot_token_id = 100000 is outside the vocabulary");
    }

    @Test
    void refusesToWriteWhatLlamaCppCannotLoad() {
        io.moe4j.tokenizer.TokenType n = io.moe4j.tokenizer.TokenType.NORMAL;
        GgufVocab dup = new GgufVocab("gpt2", "qwen2", List.of("a", "b", "a"), new io.moe4j.tokenizer.TokenType[]{n, n, n}, null,
                List.of(), -1, -1, -1, false, false);
        assertThatThrownBy(() -> GgufTokenizers.put(new GgufWriter(), dup)).hasMessageContaining("token 2 'a' duplicates token 0");
        GgufVocab noBytes = new GgufVocab("llama", null, List.of("<unk>", "<s>", "</s>", "▁a"), new io.moe4j.tokenizer.TokenType[]{n, n, n, n},
                new float[4], null, 1, 2, 0, true, true);
        assertThatThrownBy(() -> GgufTokenizers.put(new GgufWriter(), noBytes)).hasMessageContaining("lacks the byte token <0x00>");
    }

    @Test
    void chatTemplateFromGguf(@TempDir Path dir) throws IOException {
        ByteLevelBpe t = bpe();
        Path f = dir.resolve("chat.gguf");
        String template = ChatTemplateTest.resource("qwen2.jinja");
        GgufTokenizers.put(new GgufWriter().putString("general.architecture", "llama"), t.toGguf())
                .putString(GgufTokenizers.CHAT_TEMPLATE, template).write(f);
        try (GgufFile g = GgufFile.open(f)) {
            Tokenizer u = GgufTokenizers.load(g);
            ChatTemplate c = ChatTemplate.fromGguf(g, u);
            String prompt = c.render(List.of(ChatTemplate.Message.user("Hi")), true);
            int[] ids = u.encode(prompt, true);
            assertThat(ids[0]).isEqualTo(t.vocabulary().id("<|im_start|>"));
            assertThat(u.decode(ids)).isEqualTo(prompt);
        }
        Path g2 = dir.resolve("none.gguf");
        GgufTokenizers.put(new GgufWriter().putString("general.architecture", "llama"), t.toGguf()).write(g2);
        try (GgufFile g = GgufFile.open(g2)) {
            assertThatThrownBy(() -> ChatTemplate.fromGguf(g, t)).hasMessageContaining("missing metadata key tokenizer.chat_template");
        }
    }
}
