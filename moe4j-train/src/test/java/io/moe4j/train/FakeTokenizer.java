package io.moe4j.train;

import io.moe4j.tokenizer.Tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.List;

/** Test-only tokenizer: token i is the letter 'a' + i (vocab ≤ 26); other characters map to 0. */
final class FakeTokenizer implements Tokenizer {
    private final int vocab;

    FakeTokenizer(int vocab) { this.vocab = vocab; }

    @Override public int vocabSize() { return vocab; }

    @Override
    public int[] encode(String text, boolean parseSpecial) {
        int[] ids = new int[text.length()];
        for (int i = 0; i < ids.length; i++) {
            int c = text.charAt(i) - 'a';
            ids[i] = c >= 0 && c < vocab ? c : 0;
        }
        return ids;
    }

    @Override
    public String decode(int[] ids) {
        StringBuilder b = new StringBuilder();
        for (int id : ids) b.append((char) ('a' + id));
        return b.toString();
    }

    @Override public byte[] tokenBytes(int id) { return decode(new int[]{id}).getBytes(StandardCharsets.UTF_8); }
    @Override public String tokenText(int id) { return decode(new int[]{id}); }
    @Override public int bos() { return -1; }
    @Override public int eos() { return -1; }
    @Override public List<Integer> stopTokens() { return List.of(); }
}
