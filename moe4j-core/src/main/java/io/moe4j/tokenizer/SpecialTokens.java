package io.moe4j.tokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Splits special-token strings out of text before pre-tokenization, as llama.cpp's
 * {@code tokenizer_st_partition}: candidates are the {@link TokenType#special()} tokens, longest text first; each in
 * turn is cut out of every remaining text fragment, left to right. Control and unknown tokens take part only when
 * the caller parses specials; user-defined tokens always do (as in Hugging Face tokenizers).
 */
final class SpecialTokens {
    /** A piece of the partition: raw text to tokenize ({@code token < 0}) or a special token id. */
    record Fragment(String text, int token) {
        boolean isText() { return token < 0; }
    }

    private final int[] ids;          // candidates, longest text first
    private final String[] texts;
    private final boolean[] alwaysSplit;
    private final Map<Character, int[]> byFirstChar = new HashMap<>();   // first char → candidate indices

    SpecialTokens(List<String> tokens, TokenType[] types) {
        List<Integer> c = new ArrayList<>();
        for (int i = 0; i < tokens.size(); i++) if (types[i].special() && !tokens.get(i).isEmpty()) c.add(i);
        // llama.cpp sorts by byte length with an unstable sort; ties between equal-length specials that overlap in
        // the text are the only place the order could matter, and none of the supported vocabularies has them.
        c.sort(Comparator.<Integer>comparingInt(i -> -Unicode.utf8(tokens.get(i)).length).thenComparingInt(i -> i));
        ids = new int[c.size()];
        texts = new String[c.size()];
        alwaysSplit = new boolean[c.size()];
        for (int k = 0; k < ids.length; k++) {
            ids[k] = c.get(k);
            texts[k] = tokens.get(ids[k]);
            alwaysSplit[k] = types[ids[k]] == TokenType.USER_DEFINED;
            int[] prev = byFirstChar.getOrDefault(texts[k].charAt(0), new int[0]);
            int[] next = Arrays.copyOf(prev, prev.length + 1);
            next[prev.length] = k;
            byFirstChar.put(texts[k].charAt(0), next);
        }
    }

    /**
     * Which candidates occur in {@code text} at all, in one pass over it. Vocabularies carry hundreds of specials
     * (Qwen2: 290 "[PAD…]" user-defined tokens) and searching the text once per special dominated encoding; the
     * exact longest-first splitting below then runs over the few that occur.
     */
    private boolean[] occurring(String text, boolean parseSpecial) {
        boolean[] found = new boolean[ids.length];
        for (int i = 0; i < text.length(); i++) {
            int[] cands = byFirstChar.get(text.charAt(i));
            if (cands == null) continue;
            for (int k : cands) {
                if ((parseSpecial || alwaysSplit[k]) && text.startsWith(texts[k], i)) found[k] = true;
            }
        }
        return found;
    }

    boolean isEmpty() { return ids.length == 0; }

    List<Fragment> partition(String text, boolean parseSpecial) {
        List<Fragment> frags = new ArrayList<>();
        if (text.isEmpty()) return frags;
        frags.add(new Fragment(text, -1));
        if (ids.length == 0) return frags;
        boolean[] found = occurring(text, parseSpecial);
        for (int k = 0; k < ids.length; k++) {
            if (!found[k]) continue;   // also skips control tokens when not parsing specials
            String special = texts[k];
            List<Fragment> next = null;
            for (int f = 0; f < frags.size(); f++) {
                Fragment frag = frags.get(f);
                int at = frag.isText() ? frag.text().indexOf(special) : -1;
                if (at < 0) {
                    if (next != null) next.add(frag);
                    continue;
                }
                if (next == null) next = new ArrayList<>(frags.subList(0, f));
                String s = frag.text();
                int from = 0;
                while (at >= 0) {
                    if (at > from) next.add(new Fragment(s.substring(from, at), -1));
                    next.add(new Fragment(null, ids[k]));
                    from = at + special.length();
                    at = s.indexOf(special, from);
                }
                if (from < s.length()) next.add(new Fragment(s.substring(from), -1));
            }
            if (next != null) frags = next;
        }
        return frags;
    }
}
