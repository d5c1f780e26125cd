package io.moe4j.tokenizer;

import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Byte-level BPE: a hand-built vocabulary with known ids, the heap encoder against a naive one, round trips. */
class ByteLevelBpeTest {
    static final Map<PreTokenizer, ByteLevelBpe> TRAINED = new HashMap<>();

    static synchronized ByteLevelBpe trained(PreTokenizer pre) {
        return TRAINED.computeIfAbsent(pre, p -> new BpeTrainer().vocabSize(1000).preTokenizer(p)
                .specials(List.of("<|endoftext|>", "<|im_start|>", "<|im_end|>")).eos("<|endoftext|>").train(Corpus.train()));
    }

    /** Bytes as tokens 0–255 (byte-level chars), then the given merges' results. */
    static ByteLevelBpe handBuilt(PreTokenizer pre, List<String> merges, List<String> specials) {
        List<String> tokens = new ArrayList<>();
        for (int b = 0; b < 256; b++) tokens.add(String.valueOf(ByteLevel.charOf(b)));
        for (String m : merges) tokens.add(m.replace(" ", ""));
        tokens.addAll(specials);
        TokenType[] types = new TokenType[tokens.size()];
        Arrays.fill(types, TokenType.NORMAL);
        for (int i = tokens.size() - specials.size(); i < types.length; i++) types[i] = TokenType.CONTROL;
        return new ByteLevelBpe(new Vocabulary(tokens, types, null, -1, -1, List.of(), false), merges, pre);
    }

    @Test
    void knownIds() {
        // "Ġ" is the space. Ranks decide: " the" → Ġt (rank 0), then Ġt+h (1) beats h+e (3), then Ġth+e (2).
        ByteLevelBpe t = handBuilt(PreTokenizer.GPT2, List.of("Ġ t", "Ġt h", "Ġth e", "h e", "a b", "ab c"), List.of("<s>"));
        assertThat(t.encode(" the")).containsExactly(258);
        assertThat(t.encode(" he")).containsExactly(32, 259);   // the space byte 0x20 is token 32 (Ġ)
        assertThat(t.encode("abc the")).containsExactly(261, 258);
        assertThat(t.encode("hex")).containsExactly(259, 'x');
        assertThat(t.encode("<s>ab", true)).containsExactly(262, 260);
        assertThat(t.encode("<s>ab", false)).containsExactly('<', 's', '>', 260);
        assertThat(t.decode(t.encode("abc the"))).isEqualTo("abc the");
    }

    @Test
    void leftmostPairWinsTies() {
        // "aaa": both (a,a) pairs have the same rank; the left one merges first → "aa" + "a".
        ByteLevelBpe t = handBuilt(PreTokenizer.GPT2, List.of("a a"), List.of());
        assertThat(t.encode("aaa")).containsExactly(256, 'a');
    }

    @Test
    void heapEncoderMatchesNaiveMergeLoop() {
        Random r = new Random(7);
        for (PreTokenizer pre : PreTokenizer.values()) {
            ByteLevelBpe t = trained(pre);
            Map<String, Integer> rank = new HashMap<>();
            for (int i = 0; i < t.merges().size(); i++) rank.putIfAbsent(t.merges().get(i), i);
            String text = Corpus.heldOut() + " 1234567 naïve 東京 🚀 don't I'LL \t\n";
            for (int iter = 0; iter < 300; iter++) {
                int a = r.nextInt(text.length()), b = Math.min(text.length(), a + r.nextInt(60));
                if (Character.isLowSurrogate(text.charAt(a))) continue;
                if (b < text.length() && Character.isLowSurrogate(text.charAt(b))) b++;
                String s = text.substring(a, b);
                assertThat(t.encode(s)).as("%s on '%s'", pre, s).containsExactly(naive(t, rank, s));
            }
        }
    }

    /** Textbook BPE: per pre-token, merge the lowest-rank adjacent pair (leftmost on ties) until none is left. */
    static int[] naive(ByteLevelBpe t, Map<String, Integer> rank, String s) {
        List<Integer> out = new ArrayList<>();
        int[] cps = s.codePoints().toArray();
        int start = 0;
        for (int end : t.preTokenizer().split(cps)) {
            String word = ByteLevel.encode(Unicode.utf8(cps, start, end));
            start = end;
            if (t.preTokenizer().ignoreMerges() && t.vocabulary().id(word) >= 0) {
                out.add(t.vocabulary().id(word));
                continue;
            }
            List<String> syms = new ArrayList<>();
            for (char c : word.toCharArray()) syms.add(String.valueOf(c));
            while (true) {
                int best = -1, bestRank = Integer.MAX_VALUE;
                for (int i = 0; i + 1 < syms.size(); i++) {
                    Integer rk = rank.get(syms.get(i) + " " + syms.get(i + 1));
                    if (rk != null && rk < bestRank) { bestRank = rk; best = i; }
                }
                if (best < 0) break;
                syms.set(best, syms.get(best) + syms.remove(best + 1));
            }
            for (String sym : syms) out.add(t.vocabulary().id(sym));
        }
        return out.stream().mapToInt(Integer::intValue).toArray();
    }

    @Provide
    Arbitrary<String> unicode() {
        // valid code points only: lone surrogates cannot round-trip through UTF-8
        return Arbitraries.integers().between(0, 0x10FFFF).filter(cp -> cp < 0xD800 || cp > 0xDFFF)
                .list().ofMaxSize(40).map(l -> new String(l.stream().mapToInt(Integer::intValue).toArray(), 0, l.size()));
    }

    @Provide
    Arbitrary<String> mixed() {
        Arbitrary<String> piece = Arbitraries.oneOf(unicode(), Arbitraries.of(" ", "  ", "\n", "\t", "<|im_start|>", "<|endoftext|>",
                "don't", "I'LL", "123456789", "the", " and", "naïve", "日本語", "🙂👍🏽"));
        return piece.list().ofMaxSize(8).map(l -> String.join("", l));
    }

    @Property(tries = 300)
    void decodeInvertsEncode(@ForAll("mixed") String s) {
        for (PreTokenizer pre : PreTokenizer.values()) {
            ByteLevelBpe t = trained(pre);
            assertThat(t.decode(t.encode(s, false))).isEqualTo(s);
            assertThat(t.decode(t.encode(s, true))).isEqualTo(s);
        }
    }

    @Test
    void specialsSplitOnlyWhenAsked() {
        ByteLevelBpe t = trained(PreTokenizer.QWEN2);
        int start = t.vocabulary().id("<|im_start|>"), end = t.vocabulary().id("<|im_end|>");
        int[] ids = t.encode("<|im_start|>user\nhi<|im_end|>", true);
        assertThat(ids[0]).isEqualTo(start);
        assertThat(ids[ids.length - 1]).isEqualTo(end);
        assertThat(t.encode("<|im_start|>", false)).doesNotContain(start).hasSizeGreaterThan(1);
        assertThat(t.stopTokens()).containsExactly(t.eos());
    }

    @Test
    void invalidUtf8DecodesToReplacementCharacter() {
        ByteLevelBpe t = trained(PreTokenizer.LLAMA3);
        int[] euro = t.encode("€");   // 3 bytes; the byte tokens alone are incomplete UTF-8
        int firstByte = t.vocabulary().id(String.valueOf(ByteLevel.charOf(0xE2)));
        assertThat(t.decode(new int[]{firstByte})).isEqualTo("\uFFFD");
        assertThat(t.decode(euro)).isEqualTo("€");
        assertThatThrownBy(() -> t.decode(new int[]{t.vocabSize()})).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("outside the vocabulary");
    }

    @Test
    void mergeWithoutSpaceIsRejected() {
        assertThatThrownBy(() -> handBuilt(PreTokenizer.GPT2, List.of("ab"), List.of()))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("merge 0 'ab'");
    }
}
