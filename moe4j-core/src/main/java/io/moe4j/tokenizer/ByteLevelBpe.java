package io.moe4j.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Byte-level BPE (GPT-2 style; GGUF {@code tokenizer.ggml.model = "gpt2"}), encoding exactly as llama.cpp's
 * {@code llm_tokenizer_bpe_session}: special tokens split out first ({@link SpecialTokens}), the rest cut into
 * pre-tokens ({@link PreTokenizer}), each pre-token's UTF-8 bytes mapped to {@link ByteLevel} chars and merged by
 * rank, lowest rank first, ties to the leftmost pair.
 *
 * <p>Merging runs on interned piece ids, not strings: every string the merges mention gets an id (vocabulary ids
 * first), each merge becomes (left id, right id) → (rank, result id) in a hash map of longs, and a pre-token is a
 * linked list of piece ids with a binary heap of candidate pairs keyed {@code rank << 32 | left}: O(n log n) per
 * pre-token. Results are cached per pre-token (text repeats a lot: "the", " and"), so steady-state encoding is one
 * hash lookup per word. A piece that is not a vocabulary token (possible only with inconsistent merges) falls back
 * to single-character tokens, as llama.cpp does.
 *
 * <p>Thread-safe after construction. Non-goals: dropout, non-byte-level BPE vocabularies, pre-tokenizers other
 * than {@link PreTokenizer}'s.
 */
public final class ByteLevelBpe implements Tokenizer {
    private static final int CACHE_LIMIT = 1 << 16;

    private final Vocabulary vocab;
    private final List<String> merges;
    private final PreTokenizer pre;
    private final SpecialTokens specials;
    private final LongLongMap mergeOf;   // (left << 32 | right) → (rank << 32 | result piece)
    private final List<String> extraPieces = new ArrayList<>(); // piece ids ≥ vocab size: merge strings not in the vocabulary
    private final Map<String, Integer> extraIds = new HashMap<>();
    private final int[] bytePiece = new int[256];
    private final byte[][] tokenBytes;
    private final Map<String, int[]> cache = new ConcurrentHashMap<>();

    /**
     * @param vocab  tokens in byte-level form (specials as plain text)
     * @param merges merge rules {@code "left right"} in rank order (rank = index)
     */
    public ByteLevelBpe(Vocabulary vocab, List<String> merges, PreTokenizer pre) {
        this.vocab = Objects.requireNonNull(vocab, "vocab");
        this.merges = List.copyOf(merges);
        this.pre = Objects.requireNonNull(pre, "pre");
        this.specials = new SpecialTokens(vocab.tokens(), vocab.types());
        this.mergeOf = new LongLongMap(this.merges.size());
        for (int b = 0; b < 256; b++) bytePiece[b] = piece(String.valueOf(ByteLevel.charOf(b)));
        for (int rank = 0; rank < this.merges.size(); rank++) {
            String m = this.merges.get(rank);
            int sp = m.indexOf(' ', 1);   // llama.cpp: the first space after the first character
            if (sp < 0) throw new IllegalArgumentException("merge " + rank + " '" + m + "' has no space separating its two parts");
            String l = m.substring(0, sp), r = m.substring(sp + 1);
            long key = (long) piece(l) << 32 | piece(r);
            mergeOf.putIfAbsent(key, (long) rank << 32 | piece(l + r));   // duplicates: the first rank wins (emplace)
        }
        tokenBytes = new byte[vocab.size()][];
        for (int i = 0; i < vocab.size(); i++) tokenBytes[i] = bytesOf(i);
    }

    private int piece(String s) {
        int id = vocab.id(s);
        if (id >= 0) return id;
        Integer e = extraIds.get(s);
        if (e != null) return e;
        int nid = vocab.size() + extraPieces.size();
        extraPieces.add(s);
        extraIds.put(s, nid);
        return nid;
    }

    private String pieceText(int p) { return p < vocab.size() ? vocab.token(p) : extraPieces.get(p - vocab.size()); }

    /** llama.cpp's {@code token_to_piece} with specials rendered: normal tokens map chars back to bytes, specials are their text. */
    private byte[] bytesOf(int id) {
        String t = vocab.token(id);
        return switch (vocab.type(id)) {
            case NORMAL -> {
                ByteArrayOutputStream out = new ByteArrayOutputStream(t.length());
                for (int i = 0; i < t.length(); ) {
                    int cp = t.codePointAt(i);
                    int b = ByteLevel.byteOf(cp);
                    if (b >= 0) out.write(b);
                    else out.writeBytes(new String(Character.toChars(cp)).getBytes(StandardCharsets.UTF_8));
                    i += Character.charCount(cp);
                }
                yield out.toByteArray();
            }
            case CONTROL, USER_DEFINED, UNKNOWN -> t.getBytes(StandardCharsets.UTF_8);
            case BYTE -> new byte[]{(byte) Integer.parseInt(t.substring(3, 5), 16)};
            default -> new byte[0];
        };
    }

    public Vocabulary vocabulary() { return vocab; }
    public List<String> merges() { return merges; }
    public PreTokenizer preTokenizer() { return pre; }

    @Override public int vocabSize() { return vocab.size(); }
    @Override public int bos() { return vocab.bos(); }
    @Override public int eos() { return vocab.eos(); }
    @Override public List<Integer> stopTokens() { return vocab.stops(); }
    @Override public boolean addBos() { return vocab.addBos(); }
    @Override public String tokenText(int id) { return vocab.token(id); }
    @Override public byte[] tokenBytes(int id) { return tokenBytes[id].clone(); }

    @Override
    public int[] encode(String text, boolean parseSpecial) {
        IntList out = new IntList();
        for (SpecialTokens.Fragment f : specials.partition(text, parseSpecial)) {
            if (!f.isText()) { out.add(f.token()); continue; }
            int[] cps = Unicode.codePoints(f.text());
            int[] ends = pre.split(cps);
            int start = 0;
            for (int end : ends) {
                String word = ByteLevel.encodeUtf8(cps, start, end);
                start = end;
                int[] ids = cache.get(word);
                if (ids == null) {
                    ids = encodeWord(word);
                    if (cache.size() >= CACHE_LIMIT) cache.clear();   // crude bound; a refill costs one pass of merges
                    cache.put(word, ids);
                }
                out.addAll(ids);
            }
        }
        return out.toArray();
    }

    /** Merges one byte-level pre-token. */
    int[] encodeWord(String word) {
        if (pre.ignoreMerges()) {
            int whole = vocab.id(word);
            if (whole >= 0) return new int[]{whole};
        }
        int n = word.length();
        int[] piece = new int[n], next = new int[n], prev = new int[n];
        for (int i = 0; i < n; i++) {
            piece[i] = bytePiece[ByteLevel.byteOf(word.charAt(i))];
            next[i] = i + 1 < n ? i + 1 : -1;
            prev[i] = i - 1;
        }
        LongHeap heap = new LongHeap(Math.max(4, n));
        for (int i = 0; i + 1 < n; i++) push(heap, piece, i, i + 1);
        boolean[] dead = new boolean[n];
        while (!heap.isEmpty()) {
            long top = heap.pop();
            int left = (int) top, rank = (int) (top >>> 32);
            int right = next[left];
            if (dead[left] || right < 0) continue;
            long m = mergeOf.get((long) piece[left] << 32 | piece[right], -1);
            if (m < 0 || (int) (m >>> 32) != rank) continue;   // stale: a side changed since the pair was queued
            piece[left] = (int) m;
            dead[right] = true;
            next[left] = next[right];
            if (next[right] >= 0) prev[next[right]] = left;
            if (prev[left] >= 0) push(heap, piece, prev[left], left);
            if (next[left] >= 0) push(heap, piece, left, next[left]);
        }
        IntList out = new IntList();
        for (int i = 0; i >= 0; i = next[i]) {
            if (piece[i] < vocab.size()) {
                out.add(piece[i]);
            } else {
                // Not a token: emit its characters that are tokens (llama.cpp looks each byte of the piece up).
                String t = pieceText(piece[i]);
                for (int k = 0; k < t.length(); k++) {
                    int id = t.charAt(k) < 0x80 ? vocab.id(String.valueOf(t.charAt(k))) : -1;
                    if (id >= 0) out.add(id);
                }
            }
        }
        return out.toArray();
    }

    private void push(LongHeap heap, int[] piece, int left, int right) {
        long m = mergeOf.get((long) piece[left] << 32 | piece[right], -1);
        if (m >= 0) heap.push((m >>> 32) << 32 | left);
    }

    @Override
    public String decode(int[] ids) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (int id : ids) {
            if (id < 0 || id >= vocab.size()) throw new IllegalArgumentException("token id " + id + " is outside the vocabulary of " + vocab.size());
            out.writeBytes(tokenBytes[id]);
        }
        byte[] b = out.toByteArray();
        return Unicode.decodeUtf8(b, b.length);
    }

    /** What a GGUF needs to carry this tokenizer ({@code tokenizer.ggml.*}). */
    public GgufVocab toGguf() {
        return new GgufVocab("gpt2", pre.ggufName(), vocab.tokens(), vocab.types(), null, merges, vocab.bos(), vocab.eos(), -1,
                vocab.addBos(), false);
    }

    @Override
    public String toString() {
        return "ByteLevelBpe[" + vocab.size() + " tokens, " + merges.size() + " merges, pre " + pre.ggufName() + "]";
    }

    /** Growable int array (no boxing on the encode path). */
    static final class IntList {
        int[] a = new int[16];
        int n;
        void add(int v) {
            if (n == a.length) a = Arrays.copyOf(a, n * 2);
            a[n++] = v;
        }
        void addAll(int[] vs) {
            if (n + vs.length > a.length) a = Arrays.copyOf(a, Math.max(a.length * 2, n + vs.length));
            System.arraycopy(vs, 0, a, n, vs.length);
            n += vs.length;
        }
        int[] toArray() { return Arrays.copyOf(a, n); }
    }

    /** Min-heap of longs. */
    static final class LongHeap {
        long[] h;
        int n;
        LongHeap(int cap) { h = new long[cap]; }
        boolean isEmpty() { return n == 0; }
        void push(long v) {
            if (n == h.length) h = Arrays.copyOf(h, n * 2);
            int i = n++;
            while (i > 0) {
                int p = (i - 1) >>> 1;
                if (h[p] <= v) break;
                h[i] = h[p];
                i = p;
            }
            h[i] = v;
        }
        long pop() {
            long top = h[0], v = h[--n];
            int i = 0;
            while (true) {
                int c = 2 * i + 1;
                if (c >= n) break;
                if (c + 1 < n && h[c + 1] < h[c]) c++;
                if (h[c] >= v) break;
                h[i] = h[c];
                i = c;
            }
            h[i] = v;
            return top;
        }
    }
}
