package io.moe4j.tokenizer;

import java.util.Arrays;

/**
 * Splits text into the pieces byte-level BPE merges within ("pre-tokens"), exactly as llama.cpp does for GGUF
 * {@code tokenizer.ggml.pre} values {@code gpt-2}, {@code llama-bpe} and {@code qwen2} (and their aliases).
 *
 * <p>llama.cpp does not run these patterns through a regex engine: {@code unicode.cpp} has one hand-written scanner
 * per pattern ({@code unicode_regex_split_custom_gpt2/llama3/qwen2}). This class ports the scanners line by line
 * rather than translating the regexes to {@code java.util.regex}: the pieces are llama.cpp's by construction, with
 * its character classes (whitespace = Unicode White_Space, not Java's {@code \s}), and there is no backtracking.
 * {@code PreTokenizerTest} runs the regexes themselves as the oracle and finds no difference. The patterns:
 * <pre>
 * gpt2   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * llama3 (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * qwen2  the llama3 pattern with \p{N} instead of \p{N}{1,3}
 * </pre>
 * {@code default} (llama.cpp's choice for an unknown or absent model name) is four passes, each splitting the pieces
 * of the previous one into its matches and the text between them: {@code [\p{P}$+<=>^~|]+}, the gpt2 scanner,
 * {@code \p{N}+}, {@code [0-9][0-9][0-9]}.
 * Non-goals: the other 40-odd pre-tokenizers llama.cpp knows (their GGUFs are refused with the key named).
 */
public enum PreTokenizer {
    GPT2("gpt-2"), LLAMA3("llama-bpe"), QWEN2("qwen2"), DEFAULT("default");

    private final String ggufName;

    PreTokenizer(String ggufName) { this.ggufName = ggufName; }

    /** The {@code tokenizer.ggml.pre} value written for this pre-tokenizer. */
    public String ggufName() { return ggufName; }

    /**
     * The pre-tokenizer for a {@code tokenizer.ggml.pre} value, with the names llama.cpp maps to the same scanner
     * (src/llama-vocab.cpp), or {@code null}. "gpt2" is accepted too although llama.cpp only knows "gpt-2".
     */
    public static PreTokenizer ofGgufName(String name) {
        if (name == null) return null;
        return switch (name) {
            case "gpt-2", "gpt2", "phi-2", "mpt", "olmo", "jais", "exaone4", "gigachat", "a.x-4.0", "mellum" -> GPT2;
            case "llama-bpe", "llama3", "llama-v3", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2" -> LLAMA3;
            case "qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "megrez" -> QWEN2;
            case "default" -> DEFAULT;
            default -> null;
        };
    }

    /** llama.cpp looks the whole pre-token up in the vocabulary before merging for llama3 ({@code ignore_merges}). */
    public boolean ignoreMerges() { return this == LLAMA3; }

    /**
     * End offsets (exclusive, ascending, last = {@code cps.length}) of the pieces of {@code cps}; empty for empty
     * input.
     */
    public int[] split(int[] cps) {
        byte[] cls = classify(cps);
        if (this == DEFAULT) return splitDefault(cps, cls);
        Scanner s = new Scanner(cps, cls, 0, cps.length);
        switch (this) {
            case GPT2 -> s.gpt2();
            case LLAMA3 -> s.llama3(3);
            case QWEN2 -> s.llama3(1);
            default -> throw new AssertionError(this);
        }
        return Arrays.copyOf(s.ends, s.n);
    }

    private static final byte LETTER = 1, NUMBER = 2, SPACE = 4;

    /** Class bits of the BMP, looked up instead of asking Character.getType per code point (the encode profile's top). */
    private static final byte[] BMP = new byte[0x10000];

    static {
        for (int cp = 0; cp < BMP.length; cp++) BMP[cp] = classOf(cp);
    }

    private static byte classOf(int cp) {
        return (byte) ((Unicode.isLetter(cp) ? LETTER : 0) | (Unicode.isNumber(cp) ? NUMBER : 0) | (Unicode.isWhitespace(cp) ? SPACE : 0));
    }

    /** The class bits of each code point, computed once per text (the scanners test each several times). */
    private static byte[] classify(int[] cps) {
        byte[] cls = new byte[cps.length];
        for (int i = 0; i < cps.length; i++) {
            int cp = cps[i];
            cls[i] = cp < 0x10000 ? BMP[cp] : classOf(cp);
        }
        return cls;
    }

    private static int[] splitDefault(int[] cps, byte[] cls) {
        int[] ends = cps.length == 0 ? new int[0] : new int[]{cps.length};
        ends = splitRuns(cps, ends, cp -> isPunctuation(cp) || "$+<=>^~|".indexOf(cp) >= 0, Integer.MAX_VALUE);
        Scanner all = new Scanner(cps, cls, 0, 0);
        int start = 0;
        for (int end : ends) {   // the gpt2 scanner within each piece, as llama.cpp's custom splitters honour offsets
            Scanner s = new Scanner(cps, cls, start, end);
            s.gpt2();
            for (int k = 0; k < s.n; k++) all.add(s.ends[k]);
            start = end;
        }
        ends = Arrays.copyOf(all.ends, all.n);
        ends = splitRuns(cps, ends, Unicode::isNumber, Integer.MAX_VALUE);
        return splitRuns(cps, ends, cp -> cp >= '0' && cp <= '9', 3);
    }

    /**
     * Splits each piece into its matches of {@code [class]+} (or of exactly {@code exact} class members when
     * {@code exact} is finite: {@code [0-9][0-9][0-9]}) and the stretches between them.
     */
    private static int[] splitRuns(int[] cps, int[] ends, java.util.function.IntPredicate in, int exact) {
        Scanner out = new Scanner(cps, null, 0, 0);
        int start = 0;
        for (int end : ends) {
            out.prevEnd = start;
            for (int i = start; i < end; ) {
                if (!in.test(cps[i])) { i++; continue; }
                int j = i;
                if (exact == Integer.MAX_VALUE) {
                    while (j < end && in.test(cps[j])) j++;
                } else {
                    while (j < end && j - i < exact && in.test(cps[j])) j++;
                    if (j - i < exact) { i++; continue; }
                }
                out.add(i);   // the stretch before the match (if any)
                out.add(j);
                i = j;
            }
            out.add(end);
            start = end;
        }
        return Arrays.copyOf(out.ends, out.n);
    }

    private static boolean isPunctuation(int cp) {
        return switch (Character.getType(cp)) {
            case Character.CONNECTOR_PUNCTUATION, Character.DASH_PUNCTUATION, Character.START_PUNCTUATION,
                 Character.END_PUNCTUATION, Character.INITIAL_QUOTE_PUNCTUATION, Character.FINAL_QUOTE_PUNCTUATION,
                 Character.OTHER_PUNCTUATION -> true;
            default -> false;
        };
    }

    /**
     * One scan over the piece {@code [lo, hi)} of {@code cps}; positions outside it read as "no flags", as llama.cpp's
     * {@code _get_flags}. Offsets in {@link #ends} are absolute.
     */
    private static final class Scanner {
        private static final int OUT = -1;
        final int[] cps;
        final byte[] cls;
        final int lo, hi;
        int[] ends = new int[16];
        int n, prevEnd;

        Scanner(int[] cps, byte[] cls, int lo, int hi) {
            this.cps = cps;
            this.cls = cls;
            this.lo = lo;
            this.hi = hi;
            this.prevEnd = lo;
        }

        int cpt(int pos) { return pos >= lo && pos < hi ? cps[pos] : OUT; }
        boolean letter(int pos) { return pos < hi && (cls[pos] & LETTER) != 0; }
        boolean number(int pos) { return pos < hi && (cls[pos] & NUMBER) != 0; }
        boolean space(int pos) { return pos < hi && (cls[pos] & SPACE) != 0; }
        /** A code point inside the piece that is not whitespace, letter or number (llama.cpp: {@code as_uint() != 0}). */
        boolean other(int pos) { return pos < hi && cls[pos] == 0; }

        int add(int end) {
            int len = end - prevEnd;
            if (len > 0) {
                if (n == ends.length) ends = Arrays.copyOf(ends, n * 2);
                ends[n++] = end;
            }
            prevEnd = end;
            return len;
        }

        /** {@code 's|'t|...} contraction length at {@code pos} (2, 3) or 0; case-insensitive for llama3/qwen2. */
        int contraction(int pos, boolean ignoreCase) {
            if (cps[pos] != '\'' || pos + 1 >= hi) return 0;
            int a = lower(cpt(pos + 1), ignoreCase);
            if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
            if (pos + 2 < hi) {
                int b = lower(cpt(pos + 2), ignoreCase);
                if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
            }
            return 0;
        }

        static int lower(int cp, boolean ignoreCase) { return ignoreCase && cp >= 0 ? Character.toLowerCase(cp) : cp; }

        void gpt2() {
            int end = hi;
            for (int pos = lo; pos < end; ) {
                int cpt = cps[pos];
                int c = contraction(pos, false);
                if (c > 0) { pos += add(pos + c); continue; }
                int p2 = cpt == ' ' ? pos + 1 : pos;   // flags2: the code point after an optional leading space
                if (letter(p2)) {
                    pos = p2;
                    while (letter(pos)) pos++;
                    add(pos);
                    continue;
                }
                if (number(p2)) {
                    pos = p2;
                    while (number(pos)) pos++;
                    add(pos);
                    continue;
                }
                if (other(p2)) {
                    pos = p2;
                    while (other(pos)) pos++;
                    add(pos);
                    continue;
                }
                int ws = 0;
                while (space(pos + ws)) ws++;
                if (ws > 1 && cpt(pos + ws) != OUT) {   // \s+(?!\S): leave the last space to the next piece
                    pos += ws - 1;
                    add(pos);
                    continue;
                }
                if (ws > 0) {
                    pos += ws;
                    add(pos);
                    continue;
                }
                add(++pos);
            }
        }

        /** llama3 ({@code maxDigits} 3) and qwen2 (1). */
        void llama3(int maxDigits) {
            int end = hi;
            for (int pos = lo; pos < end; ) {
                int cpt = cps[pos];
                int c = contraction(pos, true);
                if (c > 0) { pos += add(pos + c); continue; }
                // [^\r\n\p{L}\p{N}]?\p{L}+
                if (!(cpt == '\r' || cpt == '\n' || number(pos))) {
                    if (letter(pos) || letter(pos + 1)) {
                        pos++;
                        while (letter(pos)) pos++;
                        add(pos);
                        continue;
                    }
                }
                // \p{N}{1,3} (or \p{N})
                if (number(pos)) {
                    int ini = pos;
                    while (number(pos)) {
                        if (++pos - ini >= maxDigits) {
                            add(pos);
                            ini = pos;
                        }
                    }
                    add(pos);
                    continue;
                }
                // <space>?[^\s\p{L}\p{N}]+[\r\n]*   (llama.cpp tests the first code point's flags for "defined",
                // which inside the fragment always holds)
                int p2 = cpt == ' ' ? pos + 1 : pos;
                if (other(p2)) {
                    pos = p2;
                    while (other(pos)) pos++;
                    int c2 = cpt(pos);
                    while (c2 == '\r' || c2 == '\n') c2 = cpt(++pos);
                    add(pos);
                    continue;
                }
                int ws = 0, lastRn = 0;
                while (space(pos + ws)) {
                    int c2 = cps[pos + ws];
                    if (c2 == '\r' || c2 == '\n') lastRn = pos + ws + 1;
                    ws++;
                }
                if (lastRn > 0) {   // \s*[\r\n]+
                    pos = lastRn;
                    add(pos);
                    continue;
                }
                if (ws > 1 && cpt(pos + ws) != OUT) {
                    pos += ws - 1;
                    add(pos);
                    continue;
                }
                if (ws > 0) {
                    pos += ws;
                    add(pos);
                    continue;
                }
                add(++pos);
            }
        }
    }
}
