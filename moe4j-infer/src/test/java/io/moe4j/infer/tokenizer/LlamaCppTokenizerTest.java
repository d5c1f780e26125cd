package io.moe4j.infer.tokenizer;

import io.moe4j.gguf.GgufFile;
import io.moe4j.testutil.LlamaPeer;
import io.moe4j.tokenizer.BpeTrainer;
import io.moe4j.tokenizer.ByteLevelBpe;
import io.moe4j.tokenizer.GgufVocab;
import io.moe4j.tokenizer.PreTokenizer;
import io.moe4j.tokenizer.SentencePieceBpe;
import io.moe4j.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Our token ids against llama.cpp's for the same GGUF: byte-level BPE vocabularies trained by {@link BpeTrainer}
 * with pre-tokenizers llama-bpe, qwen2 and gpt2, and a SentencePiece vocabulary with byte fallback, written into
 * tiny llama models that llama.cpp loads, then tokenized by both on strings that hit every pre-tokenizer rule.
 */
class LlamaCppTokenizerTest {
    static final List<String> TRICKY = List.of(
            "Hello world", "  leading spaces", "trailing   ", "a  b   c    d", "\t\ttabs\tand\nnewlines\n\n\r\n end",
            "123456789", "1 12 123 1234 12345 3.14159", "don't I'LL we've they'RE it's", "naïve café résumé Ünïcödé",
            "日本語のテキスト 中文字符", "emoji 🙂👍🏽🚀 done", "mixed: x=3.14159; y = -42!", "    indented(code) {\n\treturn x;\n}",
            "", " ", "\n", "   \n  ", "ﬁ ligature Ⅻ ½ ²", "Ελληνικά Кириллица עברית", "zero\u200Bwidth\u00A0nbsp",
            "a\u0301 combining", "$$$ ??? !!! ...", "The quick brown fox jumps over the lazy dog.",
            "<|im_start|>user\nhi there<|im_end|>\n", "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
            "<s>[INST] hello [/INST]</s>", "text<|endoftext|>more");

    static String corpus() throws IOException {
        try (InputStream in = LlamaCppTokenizerTest.class.getResourceAsStream("/tokenizer/english.txt")) {
            String english = new String(in.readAllBytes(), StandardCharsets.UTF_8);
            // Code, digits, CJK and emoji too, so merges exist in every region the tricky strings touch.
            String extra = "    if (x == 123456789) {\n\t\treturn y;\n    }\n日本語のテキストです。中文字符。🙂🙂👍 café naïve\n"
                    + "I'LL don't WE'VE 2024-06-01 3.14159\r\n";
            return english + extra.repeat(20);
        }
    }

    /**
     * The tricky strings, then seeded random strings from pieces every rule reacts to, then random code points from
     * all planes (assigned or not: the code point classes must agree with llama.cpp's tables too).
     */
    static List<TokenizerPeer.Case> cases() {
        List<TokenizerPeer.Case> c = new ArrayList<>();
        for (String s : TRICKY) {
            c.add(new TokenizerPeer.Case(s, false));
            c.add(new TokenizerPeer.Case(s, true));
        }
        String[] pieces = {" ", " ", "  ", "\n", "\r\n", "\t", "a", "the", " and", "Z", "é", "ü", "中", "語", "1", "23", "456", "٣",
                "'", "'s", "'LL", "'re", ",", "!", "?", ".", "-", "(", "\u00A0", "\u3000", "🙂", "👍🏽", "\u0301", "½", "$",
                "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<s>", "</s>", "<|eot_id|>"};
        java.util.Random r = new java.util.Random(11);
        for (int i = 0; i < 300; i++) {
            StringBuilder sb = new StringBuilder();
            for (int k = r.nextInt(16); k > 0; k--) sb.append(pieces[r.nextInt(pieces.length)]);
            c.add(new TokenizerPeer.Case(sb.toString(), r.nextBoolean()));
        }
        for (int i = 0; i < 100; i++) {
            StringBuilder sb = new StringBuilder();
            for (int k = 1 + r.nextInt(8); k > 0; k--) {
                int cp = r.nextInt(i < 50 ? 0x10000 : 0x110000);
                if (cp >= 0xD800 && cp <= 0xDFFF) cp = ' ';
                sb.appendCodePoint(cp);
                if (r.nextInt(3) == 0) sb.append(' ');
            }
            c.add(new TokenizerPeer.Case(sb.toString(), false));
        }
        return c;
    }

    /** Writes {@code vocab}, checks our loader reproduces {@code ours}, then compares ids (and text if asked) with llama.cpp. */
    static void compare(String name, Tokenizer ours, GgufVocab vocab, boolean compareText, Path dir) throws Exception {
        LlamaPeer.assumeAvailable();
        Path model = dir.resolve(name + ".gguf");
        TokenizerGgufs.write(vocab, model, null);
        Tokenizer loaded;
        try (GgufFile g = GgufFile.open(model)) {
            loaded = GgufTokenizers.load(g);
        }
        List<TokenizerPeer.Case> cases = cases();
        List<TokenizerPeer.Result> theirs = TokenizerPeer.tokenize(model, cases, dir);
        int nonTrivial = 0;
        for (int i = 0; i < cases.size(); i++) {
            TokenizerPeer.Case c = cases.get(i);
            int[] mine = ours.encode(c.text(), c.special());
            assertThat(loaded.encode(c.text(), c.special())).as("%s loaded from GGUF, '%s'", name, c.text()).containsExactly(mine);
            assertThat(mine).as("%s ids for '%s' (special %s): ours %s, llama.cpp %s", name, c.text(), c.special(),
                    Arrays.toString(mine), Arrays.toString(theirs.get(i).ids())).containsExactly(theirs.get(i).ids());
            if (compareText) assertThat(ours.decode(mine)).as("%s text of '%s'", name, c.text()).isEqualTo(theirs.get(i).text());
            if (mine.length > 1 && mine.length < c.text().getBytes(StandardCharsets.UTF_8).length) nonTrivial++;
        }
        // guards against a vocabulary so poor that both sides just emit bytes
        assertThat(nonTrivial).as("cases where merges actually happened").isGreaterThan(cases.size() / (name.equals("spm-tiny") ? 20 : 4));
    }

    static ByteLevelBpe trainBpe(PreTokenizer pre, List<String> specials) throws IOException {
        return new BpeTrainer().vocabSize(1200).preTokenizer(pre).specials(specials).bos(specials.get(0)).eos(specials.get(1))
                .train(List.of(corpus().split("\n\n")));
    }

    @Test
    void llamaBpeMatchesLlamaCpp(@TempDir Path dir) throws Exception {
        ByteLevelBpe t = trainBpe(PreTokenizer.LLAMA3, List.of("<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>",
                "<|start_header_id|>", "<|end_header_id|>"));
        // llama.cpp's detokenizer "cleans" spaces before punctuation for llama-bpe, so only ids are compared
        compare("llama-bpe", t, t.toGguf(), false, dir);
    }

    @Test
    void qwen2MatchesLlamaCpp(@TempDir Path dir) throws Exception {
        ByteLevelBpe t = trainBpe(PreTokenizer.QWEN2, List.of("<|endoftext|>", "<|im_end|>", "<|im_start|>"));
        compare("qwen2", t, t.toGguf(), true, dir);
    }

    @Test
    void gpt2MatchesLlamaCpp(@TempDir Path dir) throws Exception {
        ByteLevelBpe t = trainBpe(PreTokenizer.GPT2, List.of("<|endoftext|>", "<|im_end|>"));
        compare("gpt2", t, t.toGguf(), false, dir);
    }

    @Test
    void defaultPreTokenizerMatchesLlamaCpp(@TempDir Path dir) throws Exception {
        ByteLevelBpe t = trainBpe(PreTokenizer.DEFAULT, List.of("<|endoftext|>", "<|im_end|>"));
        compare("default", t, t.toGguf(), false, dir);
    }

    @Test
    void sentencePieceMatchesLlamaCpp(@TempDir Path dir) throws Exception {
        ByteLevelBpe bpe = trainBpe(PreTokenizer.GPT2, List.of("<|endoftext|>", "<|im_end|>"));
        SentencePieceBpe t = SentencePieceBpe.fromByteLevel(bpe, true);
        compare("spm", t, t.toGguf(), true, dir);
    }

    /**
     * A minimal SentencePiece vocabulary — unk, bos, eos, the 256 byte tokens and a handful of pieces — so nearly
     * every character goes through byte fallback. Without the byte tokens llama.cpp aborts (std::out_of_range from
     * {@code byte_to_token}'s {@code map::at}) while node-llama-cpp loads the model, before any text is tokenized;
     * with them it loads and agrees with us.
     */
    @Test
    void tinySentencePieceWithByteFallbackMatchesLlamaCpp(@TempDir Path dir) throws Exception {
        List<String> tokens = new ArrayList<>(List.of("<unk>", "<s>", "</s>"));
        List<io.moe4j.tokenizer.TokenType> types = new ArrayList<>(List.of(io.moe4j.tokenizer.TokenType.UNKNOWN,
                io.moe4j.tokenizer.TokenType.CONTROL, io.moe4j.tokenizer.TokenType.CONTROL));
        for (int b = 0; b < 256; b++) {
            tokens.add(String.format("<0x%02X>", b));
            types.add(io.moe4j.tokenizer.TokenType.BYTE);
        }
        for (String p : List.of("▁", "t", "h", "e", "▁t", "he", "▁the", "▁a", "n", "d", "nd", "▁and", "1", "2", "12", "中", "é")) {
            tokens.add(p);
            types.add(io.moe4j.tokenizer.TokenType.NORMAL);
        }
        float[] scores = new float[tokens.size()];
        for (int i = 259; i < scores.length; i++) scores[i] = -(i - 259) * 0.5f;
        SentencePieceBpe t = new SentencePieceBpe(new io.moe4j.tokenizer.Vocabulary(tokens,
                types.toArray(new io.moe4j.tokenizer.TokenType[0]), scores, 1, 2, List.of(), true), 0, true);
        compare("spm-tiny", t, t.toGguf(), true, dir);
    }
}
