package io.moe4j.tokenizer;

import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;

/** SentencePiece BPE: known ids with byte fallback, the heap encoder against a naive loop, round trips. */
class SentencePieceBpeTest {
    static SentencePieceBpe spm;

    static synchronized SentencePieceBpe trained() {
        if (spm == null) spm = SentencePieceBpe.fromByteLevel(ByteLevelBpeTest.trained(PreTokenizer.LLAMA3), true);
        return spm;
    }

    static SentencePieceBpe tiny(boolean addSpacePrefix) {
        List<String> tokens = new ArrayList<>(List.of("<unk>", "<s>", "</s>"));
        List<TokenType> types = new ArrayList<>(List.of(TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL));
        for (int b = 0; b < 256; b++) {
            tokens.add(String.format("<0x%02X>", b));
            types.add(TokenType.BYTE);
        }
        // 259 ▁, 260 h, 261 e, 262 l, 263 o, 264 ▁h, 265 he, 266 ll, 267 ▁hell, 268 ▁hello, 269 ▁he, 270 <|user|>
        List<String> pieces = List.of("▁", "h", "e", "l", "o", "▁h", "he", "ll", "▁hell", "▁hello", "▁he");
        float[] sc = {-1, -2, -3, -4, -5, -6, -7, -8, -9, -10, -0.5f};
        tokens.addAll(pieces);
        for (String p : pieces) types.add(TokenType.NORMAL);
        tokens.add("<|user|>");
        types.add(TokenType.USER_DEFINED);
        float[] scores = new float[tokens.size()];
        for (int i = 0; i < sc.length; i++) scores[259 + i] = sc[i];
        return new SentencePieceBpe(new Vocabulary(tokens, types.toArray(new TokenType[0]), scores, 1, 2, List.of(), true), 0, addSpacePrefix);
    }

    @Test
    void knownIds() {
        SentencePieceBpe t = tiny(true);
        // "▁hello": pairs ▁h(-6) he(-7) el(-) ll(-8) lo(-): ▁h first, then ▁h+e = ▁he (-0.5) beats ll, then ll,
        // then ▁he+ll = ▁hell (-9), ▁hell+o = ▁hello (-10).
        assertThat(t.encode("hello")).containsExactly(268);
        // é is not a piece: its two UTF-8 bytes C3 A9 fall back to <0xC3> <0xA9> (ids 3 + byte)
        assertThat(t.encode("hé")).containsExactly(264, 3 + 0xC3, 3 + 0xA9);
        // the space prefix comes back after a user-defined token (always split out), not after plain text
        assertThat(t.encode("he<|user|>lo")).containsExactly(269, 270, 259, 262, 263);
        assertThat(t.decode(t.encode("hello hé"))).isEqualTo("hello hé");
        assertThat(tiny(false).encode("hello")).containsExactly(265, 266, 263);
        assertThat(t.encode("<s>", true)).containsExactly(1);
        assertThat(t.encode("<s>", false)).doesNotContain(1);
    }

    @Test
    void heapEncoderMatchesNaiveMergeLoop() {
        SentencePieceBpe t = trained();
        Random r = new Random(3);
        String text = Corpus.heldOut() + " 1234567 naïve 東京 🚀 don't I'LL \t\n  x";
        for (int iter = 0; iter < 300; iter++) {
            int a = r.nextInt(text.length()), b = Math.min(text.length(), a + r.nextInt(60));
            if (Character.isLowSurrogate(text.charAt(a))) continue;
            if (b < text.length() && Character.isLowSurrogate(text.charAt(b))) b++;
            String s = text.substring(a, b);
            assertThat(t.encode(s)).as("'%s'", s).containsExactly(naive(t, s));
        }
    }

    /** Merge the best-scoring adjacent pair whose concatenation is a token (leftmost on ties) until none is left. */
    static int[] naive(SentencePieceBpe t, String s) {
        if (s.isEmpty()) return new int[0];
        String text = (" " + s).replace(' ', '▁');
        List<String> syms = new ArrayList<>();
        text.codePoints().forEach(cp -> syms.add(new String(Character.toChars(cp))));
        Vocabulary v = t.vocabulary();
        while (true) {
            int best = -1;
            float bestScore = Float.NEGATIVE_INFINITY;
            for (int i = 0; i + 1 < syms.size(); i++) {
                int id = v.id(syms.get(i) + syms.get(i + 1));
                if (id >= 0 && v.score(id) > bestScore) { bestScore = v.score(id); best = i; }
            }
            if (best < 0) break;
            syms.set(best, syms.get(best) + syms.remove(best + 1));
        }
        List<Integer> out = new ArrayList<>();
        for (String sym : syms) {
            int id = v.id(sym);
            if (id >= 0) out.add(id);
            else for (byte b : sym.getBytes(java.nio.charset.StandardCharsets.UTF_8)) out.add(v.id(String.format("<0x%02X>", b & 0xFF)));
        }
        return out.stream().mapToInt(Integer::intValue).toArray();
    }

    @Provide
    Arbitrary<String> unicode() {
        return Arbitraries.integers().between(0, 0x10FFFF).filter(cp -> cp < 0xD800 || cp > 0xDFFF)
                .list().ofMaxSize(40).map(l -> new String(l.stream().mapToInt(Integer::intValue).toArray(), 0, l.size()));
    }

    @Provide
    Arbitrary<String> mixed() {
        return Arbitraries.oneOf(unicode(), Arbitraries.of(" ", "  ", "\n", "\t", "don't", "I'LL", "123456789", "the", " and",
                "naïve", "日本語", "🙂👍🏽", "<s>", "</s>")).list().ofMaxSize(8).map(l -> String.join("", l));
    }

    @Property(tries = 300)
    void decodeInvertsEncode(@ForAll("mixed") String s) {
        SentencePieceBpe t = trained();
        assertThat(t.decode(t.encode(s, false))).isEqualTo(s);
    }

    @Test
    void ggufExport() {
        SentencePieceBpe t = trained();
        GgufVocab g = t.toGguf();
        assertThat(g.model()).isEqualTo("llama");
        assertThat(g.tokens().subList(0, 4)).containsExactly("<unk>", "<s>", "</s>", "<0x00>");
        assertThat(g.typeIds()[3]).isEqualTo(6);
        assertThat(List.of(g.bos(), g.eos(), g.unk())).containsExactly(1, 2, 0);
        assertThat(g.scores()).hasSize(g.tokens().size());
    }
}
