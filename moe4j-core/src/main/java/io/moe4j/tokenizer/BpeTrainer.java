package io.moe4j.tokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.PriorityQueue;

/**
 * Trains a byte-level BPE tokenizer ({@link ByteLevelBpe}) from texts.
 *
 * <p>Algorithm (as Hugging Face tokenizers' BpeTrainer): split each text into pre-tokens with the chosen
 * {@link PreTokenizer} (special-token strings are cut out first and never learned), count distinct pre-tokens, start
 * every one as its UTF-8 bytes, then repeatedly merge the most frequent adjacent pair. Pair counts are kept
 * incrementally: each pair knows the words it occurs in, a merge rewrites only those words, subtracting their old
 * pairs and adding their new ones, and a max-heap with lazy deletion (an entry is used only if its count is still
 * current) picks the next pair. Cost per merge is proportional to the words containing the pair, not the corpus.
 *
 * <p>Determinism: ties in count go to the pair with the smaller (left id, right id); ids are assigned in merge
 * order, bytes 0–255 first, so the same texts and options always give the same tokenizer. The vocabulary is the
 * 256 byte tokens, then one token per merge (a merge whose string already exists reuses that id), then the specials
 * as control tokens.
 *
 * <p>Non-goals: parallel counting, training from a byte stream larger than memory (the distinct pre-tokens must
 * fit), SentencePiece training.
 */
public final class BpeTrainer {
    private int vocabSize = 4096;
    private int minFrequency = 2;
    private List<String> specials = List.of();
    private String bos, eos;
    private PreTokenizer pre = PreTokenizer.LLAMA3;
    private boolean addBos;

    /** Target vocabulary size including the 256 byte tokens and the specials. */
    public BpeTrainer vocabSize(int n) { this.vocabSize = n; return this; }

    /** A pair must occur at least this many times to be merged (training stops earlier otherwise). */
    public BpeTrainer minFrequency(int n) { this.minFrequency = n; return this; }

    /** Special tokens, e.g. {@code <|endoftext|>}, appended after the learned tokens. */
    public BpeTrainer specials(List<String> s) { this.specials = List.copyOf(s); return this; }

    /**
     * Which special is BOS / EOS ({@code null}: none). Set EOS for a tokenizer that goes into a GGUF: llama.cpp
     * reads an absent {@code eos_token_id} of a gpt2-type vocabulary as id 11, which would then end generation.
     */
    public BpeTrainer bos(String s) { this.bos = s; return this; }
    public BpeTrainer eos(String s) { this.eos = s; return this; }

    /** Whether the trained tokenizer asks for BOS in front of prompts. */
    public BpeTrainer addBos(boolean b) { this.addBos = b; return this; }

    public BpeTrainer preTokenizer(PreTokenizer p) { this.pre = Objects.requireNonNull(p, "pre"); return this; }

    private void validate() {
        if (vocabSize < 256 + specials.size()) {
            throw new IllegalArgumentException("vocabSize " + vocabSize + " is below 256 byte tokens + " + specials.size() + " specials");
        }
        if (minFrequency < 1) throw new IllegalArgumentException("minFrequency must be >= 1, got " + minFrequency);
        if (new HashSet<>(specials).size() != specials.size()) throw new IllegalArgumentException("duplicate special tokens " + specials);
        for (String s : specials) if (s == null || s.isEmpty()) throw new IllegalArgumentException("empty special token");
        if (bos != null && !specials.contains(bos)) throw new IllegalArgumentException("bos '" + bos + "' is not one of the specials " + specials);
        if (eos != null && !specials.contains(eos)) throw new IllegalArgumentException("eos '" + eos + "' is not one of the specials " + specials);
    }

    public ByteLevelBpe train(Iterable<String> texts) { return train(texts.iterator()); }

    public ByteLevelBpe train(Iterator<String> texts) {
        validate();
        // 1. Distinct pre-tokens (as bytes, keyed by their byte-level string) with counts.
        List<String> splitTokens = new ArrayList<>(specials);
        TokenType[] splitTypes = new TokenType[specials.size()];
        Arrays.fill(splitTypes, TokenType.CONTROL);
        SpecialTokens splitter = new SpecialTokens(splitTokens, splitTypes);
        Map<String, long[]> counts = new LinkedHashMap<>();
        while (texts.hasNext()) {
            String text = texts.next();
            for (SpecialTokens.Fragment f : splitter.partition(text, true)) {
                if (!f.isText()) continue;
                int[] cps = Unicode.codePoints(f.text());
                int start = 0;
                for (int end : pre.split(cps)) {
                    counts.computeIfAbsent(ByteLevel.encodeUtf8(cps, start, end), k -> new long[1])[0]++;
                    start = end;
                }
            }
        }
        int nw = counts.size();
        int[][] words = new int[nw][];
        long[] freq = new long[nw];
        int w = 0;
        for (Map.Entry<String, long[]> e : counts.entrySet()) {
            String s = e.getKey();
            int[] syms = new int[s.length()];
            for (int i = 0; i < syms.length; i++) syms[i] = ByteLevel.byteOf(s.charAt(i));
            words[w] = syms;
            freq[w++] = e.getValue()[0];
        }
        counts = null;

        // 2. Initial pair counts and where each pair occurs.
        List<String> tokens = new ArrayList<>(vocabSize);
        Map<String, Integer> ids = new HashMap<>();
        for (int b = 0; b < 256; b++) {
            tokens.add(String.valueOf(ByteLevel.charOf(b)));
            ids.put(tokens.get(b), b);
        }
        LongLongMap pairCount = new LongLongMap(1 << 16);
        // pair → words it occurs in: an append-only list (duplicates allowed), deduplicated per merge by a stamp
        LongLongMap whereIndex = new LongLongMap(1 << 16);
        List<ByteLevelBpe.IntList> where = new ArrayList<>();
        for (w = 0; w < nw; w++) {
            int[] s = words[w];
            for (int i = 0; i + 1 < s.length; i++) {
                long p = pair(s[i], s[i + 1]);
                pairCount.add(p, freq[w]);
                occurs(whereIndex, where, p, w);
            }
        }
        // max count first, then smaller left id, then smaller right id
        PriorityQueue<long[]> heap = new PriorityQueue<>((a, b) -> a[0] != b[0] ? Long.compare(b[0], a[0]) : Long.compare(a[1], b[1]));
        pairCount.forEach((p, c) -> {
            heap.add(new long[]{c, p});
            return 0;
        });

        // 3. Merge until the vocabulary is full or no pair is frequent enough.
        List<String> merges = new ArrayList<>();
        int learned = vocabSize - specials.size();
        int[] stamp = new int[nw];   // merge number that last rewrote each word
        LongLongMap changedStamp = new LongLongMap(1 << 12);
        long[] changed = new long[64];
        while (tokens.size() < learned && !heap.isEmpty()) {
            long[] top = heap.poll();
            long p = top[1];
            long cur = pairCount.get(p, 0);
            if (cur != top[0]) continue;   // stale entry
            if (cur < minFrequency) break;
            int a = (int) (p >>> 32), b = (int) p;
            String merged = tokens.get(a) + tokens.get(b);
            merges.add(tokens.get(a) + " " + tokens.get(b));
            Integer id = ids.get(merged);
            if (id == null) {
                id = tokens.size();
                tokens.add(merged);
                ids.put(merged, id);
            }
            int m = id;
            int mergeNo = merges.size();
            int nChanged = 0;
            int wi0 = (int) whereIndex.get(p, -1);
            ByteLevelBpe.IntList occurs = where.get(wi0);
            where.set(wi0, new ByteLevelBpe.IntList());
            for (int oi = 0; oi < occurs.n; oi++) {
                int wi = occurs.a[oi];
                if (stamp[wi] == mergeNo) continue;
                stamp[wi] = mergeNo;
                int[] s = words[wi];
                if (!contains(s, a, b)) continue;   // the pair left this word in an earlier merge
                long f = freq[wi];
                for (int i = 0; i + 1 < s.length; i++) {
                    long q = pair(s[i], s[i + 1]);
                    pairCount.add(q, -f);
                    if (changedStamp.get(q, 0) != mergeNo) {
                        changedStamp.put(q, mergeNo);
                        if (nChanged == changed.length) changed = Arrays.copyOf(changed, nChanged * 2);
                        changed[nChanged++] = q;
                    }
                }
                int[] t = new int[s.length];
                int n = 0;
                for (int i = 0; i < s.length; i++) {
                    if (i + 1 < s.length && s[i] == a && s[i + 1] == b) {
                        t[n++] = m;
                        i++;
                    } else {
                        t[n++] = s[i];
                    }
                }
                t = Arrays.copyOf(t, n);
                words[wi] = t;
                for (int i = 0; i + 1 < n; i++) {
                    long q = pair(t[i], t[i + 1]);
                    pairCount.add(q, f);
                    occurs(whereIndex, where, q, wi);
                    if (changedStamp.get(q, 0) != mergeNo) {
                        changedStamp.put(q, mergeNo);
                        if (nChanged == changed.length) changed = Arrays.copyOf(changed, nChanged * 2);
                        changed[nChanged++] = q;
                    }
                }
            }
            for (int k = 0; k < nChanged; k++) {
                long c = pairCount.get(changed[k], 0);
                if (c > 0) heap.add(new long[]{c, changed[k]});   // the old entries of this pair are now stale
            }
        }

        // 4. Specials last, as control tokens.
        int firstSpecial = tokens.size();
        tokens.addAll(specials);
        TokenType[] types = new TokenType[tokens.size()];
        Arrays.fill(types, TokenType.NORMAL);
        for (int i = firstSpecial; i < types.length; i++) types[i] = TokenType.CONTROL;
        int bosId = bos == null ? -1 : firstSpecial + specials.indexOf(bos);
        int eosId = eos == null ? -1 : firstSpecial + specials.indexOf(eos);
        return new ByteLevelBpe(new Vocabulary(tokens, types, null, bosId, eosId, List.of(), addBos), merges, pre);
    }

    private static long pair(int a, int b) { return (long) a << 32 | (b & 0xFFFFFFFFL); }

    private static boolean contains(int[] s, int a, int b) {
        for (int i = 0; i + 1 < s.length; i++) if (s[i] == a && s[i + 1] == b) return true;
        return false;
    }

    /** Records that pair {@code p} occurs in word {@code w}. */
    private static void occurs(LongLongMap whereIndex, List<ByteLevelBpe.IntList> where, long p, int w) {
        long idx = whereIndex.get(p, -1);
        if (idx < 0) {
            idx = where.size();
            where.add(new ByteLevelBpe.IntList());
            whereIndex.put(p, idx);
        }
        ByteLevelBpe.IntList l = where.get((int) idx);
        if (l.n == 0 || l.a[l.n - 1] != w) l.add(w);
    }
}
