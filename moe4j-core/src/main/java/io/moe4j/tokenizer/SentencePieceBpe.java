package io.moe4j.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.PriorityQueue;
import java.util.Set;

/**
 * SentencePiece BPE (GGUF {@code tokenizer.ggml.model = "llama"}), encoding exactly as llama.cpp's
 * {@code llm_tokenizer_spm_session}: specials split out first; each text fragment gets a leading space when it
 * starts the text or follows a special token (if {@code add_space_prefix}), spaces become {@code ▁} (U+2581), and
 * then the whole fragment — there is no pre-tokenizer — starts as one symbol per code point; the adjacent pair whose
 * concatenation is a vocabulary entry with the highest score merges first (ties to the leftmost). A final symbol that
 * is not a token falls back to its UTF-8 bytes as {@code <0xXX>} tokens, or to the unknown token when the vocabulary
 * lacks them (llama.cpp aborts there; a complete SentencePiece vocabulary has all 256).
 *
 * <p>Decoding maps {@code ▁} back to spaces, byte tokens to their byte, and drops the first token's leading space
 * when {@code add_space_prefix} is on, so {@code decode(encode(s)) == s} for text without special tokens.
 * Thread-safe. Non-goals: unigram (T5) models, SentencePiece normalization rules (GGUF files carry none for llama).
 */
public final class SentencePieceBpe implements Tokenizer {
    private static final char SPACE = '\u2581';

    private final Vocabulary vocab;
    private final boolean addSpacePrefix;
    private final int unk;
    private final int[] byteToken = new int[256];
    private final SpecialTokens specials;
    private final byte[][] tokenBytes;
    private final int maxTokenChars;   // no pair longer than the longest token can merge: skip its lookup

    /** @param unk the unknown token id, or −1 */
    public SentencePieceBpe(Vocabulary vocab, int unk, boolean addSpacePrefix) {
        this.vocab = Objects.requireNonNull(vocab, "vocab");
        if (unk < -1 || unk >= vocab.size()) throw new IllegalArgumentException("unknown token id " + unk + " is outside the vocabulary of " + vocab.size());
        this.unk = unk;
        this.addSpacePrefix = addSpacePrefix;
        for (int b = 0; b < 256; b++) {
            int id = vocab.id(String.format("<0x%02X>", b));
            if (id < 0 && b < 0x80) id = vocab.id(String.valueOf((char) b));   // llama.cpp's second try: the byte itself
            byteToken[b] = id;
        }
        this.specials = new SpecialTokens(vocab.tokens(), vocab.types());
        tokenBytes = new byte[vocab.size()][];
        int maxChars = 0;
        for (int i = 0; i < vocab.size(); i++) {
            String t = vocab.token(i);
            maxChars = Math.max(maxChars, t.length());
            tokenBytes[i] = switch (vocab.type(i)) {
                case NORMAL -> t.replace(SPACE, ' ').getBytes(StandardCharsets.UTF_8);
                case CONTROL, USER_DEFINED, UNKNOWN -> t.getBytes(StandardCharsets.UTF_8);
                case BYTE -> new byte[]{(byte) Integer.parseInt(t.substring(3, 5), 16)};
                default -> new byte[0];
            };
        }
        maxTokenChars = maxChars;
    }

    /**
     * A SentencePiece vocabulary made from a trained byte-level BPE, for models that want llama.cpp's {@code llama}
     * tokenizer: {@code <unk>} 0, {@code <s>} 1, {@code </s>} 2 (llama.cpp's defaults), the 256 byte-fallback
     * tokens {@code <0x00>}–{@code <0xFF>} (llama.cpp needs all of them: it looks bytes up with {@code map::at}), then
     * every normal BPE token that is whole UTF-8, spaces written as {@code ▁}, scored {@code -rank} so earlier
     * (more frequent) merges win, then the BPE's specials as control tokens.
     */
    public static SentencePieceBpe fromByteLevel(ByteLevelBpe bpe, boolean addSpacePrefix) {
        List<String> tokens = new ArrayList<>(List.of("<unk>", "<s>", "</s>"));
        List<TokenType> types = new ArrayList<>(List.of(TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL));
        for (int b = 0; b < 256; b++) {
            tokens.add(String.format("<0x%02X>", b));
            types.add(TokenType.BYTE);
        }
        Set<String> seen = new HashSet<>(tokens);
        CharsetDecoder strict = StandardCharsets.UTF_8.newDecoder();
        Vocabulary v = bpe.vocabulary();
        for (int i = 0; i < v.size(); i++) {
            if (v.type(i) != TokenType.NORMAL) continue;
            String text;
            try {
                text = strict.decode(ByteBuffer.wrap(bpe.tokenBytes(i))).toString();
            } catch (CharacterCodingException e) {
                continue;   // a partial UTF-8 sequence: SentencePiece pieces are whole characters
            }
            String piece = text.replace(' ', SPACE);
            if (!piece.isEmpty() && seen.add(piece)) {
                tokens.add(piece);
                types.add(TokenType.NORMAL);
            }
        }
        for (int i = 0; i < v.size(); i++) {
            if (v.type(i) == TokenType.CONTROL && seen.add(v.token(i))) {
                tokens.add(v.token(i));
                types.add(TokenType.CONTROL);
            }
        }
        float[] scores = new float[tokens.size()];
        for (int i = 0; i < scores.length; i++) scores[i] = types.get(i) == TokenType.NORMAL ? -i : 0f;
        Vocabulary sv = new Vocabulary(tokens, types.toArray(new TokenType[0]), scores, 1, 2, List.of(), true);
        return new SentencePieceBpe(sv, 0, addSpacePrefix);
    }

    public Vocabulary vocabulary() { return vocab; }
    public boolean addSpacePrefix() { return addSpacePrefix; }
    public int unk() { return unk; }

    @Override public int vocabSize() { return vocab.size(); }
    @Override public int bos() { return vocab.bos(); }
    @Override public int eos() { return vocab.eos(); }
    @Override public List<Integer> stopTokens() { return vocab.stops(); }
    @Override public boolean addBos() { return vocab.addBos(); }
    @Override public String tokenText(int id) { return vocab.token(id); }
    @Override public byte[] tokenBytes(int id) { return tokenBytes[id].clone(); }

    @Override
    public int[] encode(String text, boolean parseSpecial) {
        ByteLevelBpe.IntList out = new ByteLevelBpe.IntList();
        boolean prevSpecial = true;   // the text start counts as "after a special": it gets the space prefix
        for (SpecialTokens.Fragment f : specials.partition(text, parseSpecial)) {
            if (!f.isText()) {
                out.add(f.token());
                prevSpecial = true;
                continue;
            }
            String s = (addSpacePrefix && prevSpecial ? " " : "") + f.text();
            int[] cps = Unicode.codePoints(s.replace(' ', SPACE));
            encodeFragment(new String(cps, 0, cps.length), out);
            prevSpecial = false;
        }
        return out.toArray();
    }

    private record Bigram(int left, int right, float score, int size) {}

    private void encodeFragment(String s, ByteLevelBpe.IntList out) {
        // symbols: [start, start + len) in UTF-16 units of s, one per code point initially
        int n = s.codePointCount(0, s.length());
        if (n == 0) return;
        int[] start = new int[n], len = new int[n], next = new int[n], prev = new int[n];
        for (int i = 0, at = 0; i < n; i++) {
            start[i] = at;
            len[i] = Character.charCount(s.codePointAt(at));
            at += len[i];
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
        }
        PriorityQueue<Bigram> queue = new PriorityQueue<>((a, b) -> a.score != b.score ? Float.compare(b.score, a.score)
                : Integer.compare(a.left, b.left));
        for (int i = 1; i < n; i++) tryAdd(s, start, len, i - 1, i, queue);
        while (!queue.isEmpty()) {
            Bigram b = queue.poll();
            if (len[b.left] == 0 || len[b.right] == 0 || len[b.left] + len[b.right] != b.size) continue;   // stale
            len[b.left] += len[b.right];
            len[b.right] = 0;
            next[b.left] = next[b.right];
            if (next[b.right] >= 0) prev[next[b.right]] = b.left;
            if (prev[b.left] >= 0) tryAdd(s, start, len, prev[b.left], b.left, queue);
            if (next[b.left] >= 0) tryAdd(s, start, len, b.left, next[b.left], queue);
        }
        for (int i = 0; i >= 0; i = next[i]) {
            int id = vocab.id(s.substring(start[i], start[i] + len[i]));
            if (id >= 0) {
                out.add(id);
                continue;
            }
            for (byte by : s.substring(start[i], start[i] + len[i]).getBytes(StandardCharsets.UTF_8)) {
                int t = byteToken[by & 0xFF];
                if (t < 0 && unk < 0) {
                    throw new IllegalStateException("no byte token <0x" + String.format("%02X", by & 0xFF)
                            + "> and no unknown token to encode '" + s.substring(start[i], start[i] + len[i]) + "'");
                }
                out.add(t >= 0 ? t : unk);
            }
        }
    }

    private void tryAdd(String s, int[] start, int[] len, int left, int right, PriorityQueue<Bigram> queue) {
        int size = len[left] + len[right];
        if (size > maxTokenChars) return;
        int id = vocab.id(s.substring(start[left], start[left] + size));
        if (id < 0) return;
        queue.add(new Bigram(left, right, vocab.score(id), size));
    }

    @Override
    public String decode(int[] ids) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (int k = 0; k < ids.length; k++) {
            int id = ids[k];
            if (id < 0 || id >= vocab.size()) throw new IllegalArgumentException("token id " + id + " is outside the vocabulary of " + vocab.size());
            byte[] b = tokenBytes[id];
            int from = k == 0 && addSpacePrefix && b.length > 0 && b[0] == ' ' ? 1 : 0;   // the prefix encode added
            out.write(b, from, b.length - from);
        }
        byte[] b = out.toByteArray();
        return Unicode.decodeUtf8(b, b.length);
    }

    /** What a GGUF needs to carry this tokenizer. */
    public GgufVocab toGguf() {
        return new GgufVocab("llama", null, vocab.tokens(), vocab.types(), vocab.scores(), null, vocab.bos(), vocab.eos(),
                unk, vocab.addBos(), addSpacePrefix);
    }

    @Override
    public String toString() {
        return "SentencePieceBpe[" + vocab.size() + " tokens, add_space_prefix " + addSpacePrefix + "]";
    }
}
