package io.moe4j.tokenizer;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The incremental trainer against a recount-every-merge trainer; determinism, compression, files. */
class BpeTrainerTest {

    @Test
    void incrementalCountsGiveTheSameMergesAsRecountingEveryStep() {
        List<String> texts = Corpus.train().subList(0, 6);
        ByteLevelBpe fast = new BpeTrainer().vocabSize(256 + 300).minFrequency(2).preTokenizer(PreTokenizer.GPT2).train(texts);
        assertThat(fast.merges()).hasSizeGreaterThan(200);
        assertThat(fast.merges()).isEqualTo(naiveMerges(texts, PreTokenizer.GPT2, fast.merges().size(), 2));
    }

    /** Textbook trainer: recount all pairs over all words before each merge; max count, then smaller (left, right) id. */
    static List<String> naiveMerges(List<String> texts, PreTokenizer pre, int maxMerges, int minFreq) {
        Map<String, Integer> counts = new LinkedHashMap<>();
        for (String t : texts) {
            int[] cps = t.codePoints().toArray();
            int start = 0;
            for (int end : pre.split(cps)) {
                counts.merge(ByteLevel.encode(Unicode.utf8(cps, start, end)), 1, Integer::sum);
                start = end;
            }
        }
        List<String> tokens = new ArrayList<>();
        Map<String, Integer> ids = new HashMap<>();
        for (int b = 0; b < 256; b++) {
            tokens.add(String.valueOf(ByteLevel.charOf(b)));
            ids.put(tokens.get(b), b);
        }
        List<List<Integer>> words = new ArrayList<>();
        List<Integer> freq = new ArrayList<>();
        counts.forEach((w, c) -> {
            List<Integer> syms = new ArrayList<>();
            for (char ch : w.toCharArray()) syms.add(ByteLevel.byteOf(ch));
            words.add(syms);
            freq.add(c);
        });
        List<String> merges = new ArrayList<>();
        while (merges.size() < maxMerges) {
            Map<List<Integer>, Integer> pc = new HashMap<>();
            for (int w = 0; w < words.size(); w++) {
                List<Integer> s = words.get(w);
                for (int i = 0; i + 1 < s.size(); i++) pc.merge(List.of(s.get(i), s.get(i + 1)), freq.get(w), Integer::sum);
            }
            List<Integer> best = null;
            int bestCount = 0;
            for (Map.Entry<List<Integer>, Integer> e : pc.entrySet()) {
                List<Integer> p = e.getKey();
                int c = e.getValue();
                if (c > bestCount || (c == bestCount && (p.get(0) < best.get(0) || (p.get(0).equals(best.get(0)) && p.get(1) < best.get(1))))) {
                    best = p;
                    bestCount = c;
                }
            }
            if (best == null || bestCount < minFreq) break;
            String merged = tokens.get(best.get(0)) + tokens.get(best.get(1));
            merges.add(tokens.get(best.get(0)) + " " + tokens.get(best.get(1)));
            int id = ids.computeIfAbsent(merged, k -> {
                tokens.add(k);
                return tokens.size() - 1;
            });
            for (List<Integer> s : words) {
                for (int i = 0; i + 1 < s.size(); i++) {
                    if (s.get(i).equals(best.get(0)) && s.get(i + 1).equals(best.get(1))) {
                        s.set(i, id);
                        s.remove(i + 1);
                    }
                }
            }
        }
        return merges;
    }

    @Test
    void deterministic() {
        BpeTrainer t = new BpeTrainer().vocabSize(800).specials(List.of("<|endoftext|>")).eos("<|endoftext|>");
        ByteLevelBpe a = t.train(Corpus.train()), b = t.train(Corpus.train());
        assertThat(a.merges()).isEqualTo(b.merges());
        assertThat(a.vocabulary().tokens()).isEqualTo(b.vocabulary().tokens());
        assertThat(a.eos()).isEqualTo(a.vocabSize() - 1);
        assertThat(a.tokenText(a.eos())).isEqualTo("<|endoftext|>");
    }

    @Test
    void compressesHeldOutEnglish() {
        ByteLevelBpe t = new BpeTrainer().vocabSize(4096).train(Corpus.generated(300_000, 1));
        String text = Corpus.heldOut();
        double bytesPerToken = (double) Unicode.utf8(text).length / t.encode(text).length;
        System.out.printf("held-out English: %.2f bytes/token%n", bytesPerToken);
        assertThat(bytesPerToken).as("bytes per token on held-out English").isGreaterThan(2.0);
        assertThat(t.decode(t.encode(text))).isEqualTo(text);
    }

    @Test
    void specialsAreNeverLearned() {
        List<String> texts = new ArrayList<>();
        for (String p : Corpus.train()) texts.add(p + "<|endoftext|>");
        ByteLevelBpe t = new BpeTrainer().vocabSize(600).specials(List.of("<|endoftext|>")).train(texts);
        for (String tok : t.vocabulary().tokens().subList(0, t.vocabSize() - 1)) assertThat(tok).doesNotContain("endoftext");
    }

    @Test
    void saveLoadRoundTrip(@TempDir Path dir) throws IOException {
        ByteLevelBpe t = new BpeTrainer().vocabSize(700).preTokenizer(PreTokenizer.QWEN2).addBos(true)
                .specials(List.of("<|endoftext|>", "<s>")).bos("<s>").eos("<|endoftext|>").train(Corpus.train());
        Path f = dir.resolve("sub/tok.json");
        TokenizerFiles.save(t, f);
        ByteLevelBpe u = TokenizerFiles.load(f);
        assertThat(u.vocabulary().tokens()).isEqualTo(t.vocabulary().tokens());
        assertThat(u.vocabulary().types()).isEqualTo(t.vocabulary().types());
        assertThat(u.merges()).isEqualTo(t.merges());
        assertThat(u.preTokenizer()).isEqualTo(PreTokenizer.QWEN2);
        assertThat(List.of(u.bos(), u.eos(), u.addBos())).isEqualTo(List.of(t.bos(), t.eos(), true));
        String s = Corpus.heldOut() + "<s>x<|endoftext|>";
        assertThat(u.encode(s, true)).isEqualTo(t.encode(s, true));
        try (var files = Files.list(f.getParent())) {
            assertThat(files.toList()).containsExactly(f);   // no temporary file left behind
        }
    }

    @Test
    void badFilesNameTheField(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("t.json");
        Files.writeString(f, "{\"format\": \"moe4j-tokenizer\", \"version\": 1, \"model\": \"byte-bpe\", \"pre\": \"falcon\"}");
        assertThatThrownBy(() -> TokenizerFiles.load(f)).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("'pre'");
        Files.writeString(f, "{not json");
        assertThatThrownBy(() -> TokenizerFiles.load(f)).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("not valid JSON");
        Files.writeString(f, "{\"format\": \"moe4j-tokenizer\", \"version\": 1, \"model\": \"byte-bpe\", \"pre\": \"gpt2\", "
                + "\"tokens\": [\"a\"], \"types\": [1, 1], \"merges\": [], \"bos\": -1, \"eos\": -1, \"stops\": [], \"add_bos\": false}");
        assertThatThrownBy(() -> TokenizerFiles.load(f)).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("'types'");
    }

    @Test
    void badOptions() {
        assertThatThrownBy(() -> new BpeTrainer().vocabSize(100).train(List.of("x"))).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("vocabSize");
        assertThatThrownBy(() -> new BpeTrainer().eos("</s>").train(List.of("x"))).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("eos");
    }

    /** ~3 MB of text to a 4096 vocabulary; prints the time. Run with -Pslow (or -Dgroups=slow). */
    @Test
    @Tag("slow")
    void trainsFourThousandTokensOnThreeMegabytes() {
        List<String> texts = Corpus.pseudoWords(3_000_000, 2);
        long t0 = System.nanoTime();
        ByteLevelBpe t = new BpeTrainer().vocabSize(4096).train(texts);
        double s = (System.nanoTime() - t0) / 1e9;
        long t1 = System.nanoTime();
        int n = 0;
        long bytes = 0;
        for (String doc : texts) { n += t.encode(doc).length; bytes += Unicode.utf8(doc).length; }
        double e = (System.nanoTime() - t1) / 1e9;
        System.out.printf("BpeTrainer: %d bytes -> %d tokens (%d merges) in %.2f s; encode %.1f MB/s, %.2f bytes/token%n",
                bytes, t.vocabSize(), t.merges().size(), s, bytes / e / 1e6, (double) bytes / n);
        assertThat(s).isLessThan(60);
    }
}
