package io.moe4j.train.data;

import io.moe4j.tokenizer.Tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * Test-only tokenizer: one token per Unicode code point (1–4 UTF-8 bytes each, so tokens ≠ bytes), EOS =
 * 0x110000. Its vocabulary exceeds 65 536, so caches store int32 ids.
 */
final class CodepointTokenizer implements Tokenizer {

    static final int EOS = 0x110000;

    @Override
    public int vocabSize() {
        return EOS + 1;
    }

    @Override
    public int[] encode(String text, boolean parseSpecial) {
        return text.codePoints().toArray();
    }

    @Override
    public String decode(int[] ids) {
        StringBuilder sb = new StringBuilder();
        for (int id : ids) if (id != EOS) sb.appendCodePoint(id);
        return sb.toString();
    }

    @Override
    public byte[] tokenBytes(int id) {
        if (id == EOS) return new byte[0];
        if (id >= 0xD800 && id <= 0xDFFF) return new byte[]{'?'}; // lone surrogates never occur in decoded text
        return new String(Character.toChars(id)).getBytes(StandardCharsets.UTF_8);
    }

    @Override
    public String tokenText(int id) {
        return id == EOS ? "<eos>" : new String(tokenBytes(id), StandardCharsets.UTF_8);
    }

    @Override
    public int bos() {
        return -1;
    }

    @Override
    public int eos() {
        return EOS;
    }

    @Override
    public List<Integer> stopTokens() {
        return List.of(EOS);
    }
}
