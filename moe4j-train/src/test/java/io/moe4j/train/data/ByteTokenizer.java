package io.moe4j.train.data;

import io.moe4j.tokenizer.Tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.List;

/** Test-only tokenizer: one token per UTF-8 byte (ids 0..255), EOS = 256 (or none). */
final class ByteTokenizer implements Tokenizer {

    private final boolean withEos;

    ByteTokenizer(boolean withEos) {
        this.withEos = withEos;
    }

    ByteTokenizer() {
        this(true);
    }

    @Override
    public int vocabSize() {
        return withEos ? 257 : 256;
    }

    @Override
    public int[] encode(String text, boolean parseSpecial) {
        byte[] b = text.getBytes(StandardCharsets.UTF_8);
        int[] ids = new int[b.length];
        for (int i = 0; i < b.length; i++) ids[i] = b[i] & 0xFF;
        return ids;
    }

    @Override
    public String decode(int[] ids) {
        byte[] b = new byte[ids.length];
        int n = 0;
        for (int id : ids) if (id < 256) b[n++] = (byte) id;
        return new String(b, 0, n, StandardCharsets.UTF_8);
    }

    @Override
    public byte[] tokenBytes(int id) {
        return id < 256 ? new byte[]{(byte) id} : new byte[0];
    }

    @Override
    public String tokenText(int id) {
        return id < 256 ? "<0x%02X>".formatted(id) : "<|endoftext|>";
    }

    @Override
    public int bos() {
        return -1;
    }

    @Override
    public int eos() {
        return withEos ? 256 : -1;
    }

    @Override
    public List<Integer> stopTokens() {
        return withEos ? List.of(256) : List.of();
    }
}
