package io.moe4j.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The trivial tokenizer: ids 0–255 are the UTF-8 bytes of the text, ids 256… the given special tokens (matched in
 * text only with parseSpecial). A baseline for training experiments and a tokenizer that cannot fail on any input.
 */
public final class ByteTokenizer implements Tokenizer {
    private final List<String> specials;
    private final SpecialTokens splitter;
    private final int bos, eos;

    /**
     * @param specials special token strings, ids 256, 257, … in order
     * @param bos      the BOS string (one of {@code specials}) or {@code null}; {@code eos} likewise
     */
    public ByteTokenizer(List<String> specials, String bos, String eos) {
        this.specials = List.copyOf(specials);
        for (String s : this.specials) if (s.isEmpty()) throw new IllegalArgumentException("empty special token");
        List<String> all = new ArrayList<>(256 + specials.size());
        TokenType[] types = new TokenType[256 + specials.size()];
        for (int b = 0; b < 256; b++) {
            all.add("<0x" + String.format("%02X", b) + ">");
            types[b] = TokenType.BYTE;
        }
        for (int i = 0; i < this.specials.size(); i++) {
            all.add(this.specials.get(i));
            types[256 + i] = TokenType.CONTROL;
        }
        this.splitter = new SpecialTokens(all, types);
        this.bos = idOf(bos, "bos");
        this.eos = idOf(eos, "eos");
    }

    public ByteTokenizer() { this(List.of(), null, null); }

    private int idOf(String s, String what) {
        if (s == null) return -1;
        int i = specials.indexOf(s);
        if (i < 0) throw new IllegalArgumentException(what + " token '" + s + "' is not one of the specials " + specials);
        return 256 + i;
    }

    @Override public int vocabSize() { return 256 + specials.size(); }
    @Override public int bos() { return bos; }
    @Override public int eos() { return eos; }
    @Override public List<Integer> stopTokens() { return eos < 0 ? List.of() : List.of(eos); }

    @Override
    public int[] encode(String text, boolean parseSpecial) {
        ByteLevelBpe.IntList out = new ByteLevelBpe.IntList();
        for (SpecialTokens.Fragment f : splitter.partition(text, parseSpecial)) {
            if (!f.isText()) { out.add(f.token()); continue; }
            for (byte b : Unicode.utf8(f.text())) out.add(b & 0xFF);
        }
        return out.toArray();
    }

    @Override
    public String decode(int[] ids) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(ids.length);
        for (int id : ids) out.writeBytes(tokenBytes(id));
        byte[] b = out.toByteArray();
        return Unicode.decodeUtf8(b, b.length);
    }

    @Override
    public byte[] tokenBytes(int id) {
        if (id < 0 || id >= vocabSize()) throw new IllegalArgumentException("token id " + id + " is outside the vocabulary of " + vocabSize());
        return id < 256 ? new byte[]{(byte) id} : specials.get(id - 256).getBytes(StandardCharsets.UTF_8);
    }

    @Override
    public String tokenText(int id) {
        if (id < 0 || id >= vocabSize()) throw new IllegalArgumentException("token id " + id + " is outside the vocabulary of " + vocabSize());
        return id < 256 ? "<0x" + String.format("%02X", id) + ">" : specials.get(id - 256);
    }
}
