package io.moe4j.tokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * What every vocabulary-based tokenizer holds: token strings (index = id), their {@link TokenType}s, optional
 * SentencePiece scores, the string → id map, and the ids with a role (BOS, EOS, the stop set).
 *
 * <p>Duplicate strings are allowed (GGUF files have them); like llama.cpp's {@code token_to_id}, lookup returns
 * the highest id. Immutable.
 */
public final class Vocabulary {
    private final List<String> tokens;
    private final TokenType[] types;
    private final float[] scores;   // null: no scores (byte-level BPE)
    private final Map<String, Integer> ids;
    private final int bos, eos;
    private final List<Integer> stops;
    private final boolean addBos;

    /**
     * @param scores  one per token, or {@code null}
     * @param bos     BOS id or −1; {@code eos} likewise
     * @param stops   ids that end generation besides EOS (end-of-turn, ...); EOS is added if missing
     * @param addBos  whether a prompt starts with BOS (GGUF {@code tokenizer.ggml.add_bos_token})
     */
    public Vocabulary(List<String> tokens, TokenType[] types, float[] scores, int bos, int eos, List<Integer> stops,
                      boolean addBos) {
        Objects.requireNonNull(tokens, "tokens");
        Objects.requireNonNull(types, "types");
        int n = tokens.size();
        if (n == 0) throw new IllegalArgumentException("empty vocabulary");
        if (types.length != n) throw new IllegalArgumentException("token types: " + types.length + " for " + n + " tokens");
        if (scores != null && scores.length != n) throw new IllegalArgumentException("scores: " + scores.length + " for " + n + " tokens");
        checkId("bos", bos, n);
        checkId("eos", eos, n);
        this.tokens = List.copyOf(tokens);
        this.types = types.clone();
        this.scores = scores == null ? null : scores.clone();
        Map<String, Integer> m = new HashMap<>(n * 2);
        for (int i = 0; i < n; i++) {
            if (tokens.get(i) == null) throw new IllegalArgumentException("token " + i + " is null");
            if (types[i] == null) throw new IllegalArgumentException("token type " + i + " is null");
            m.put(tokens.get(i), i);
        }
        this.ids = m;
        this.bos = bos;
        this.eos = eos;
        Set<Integer> s = new LinkedHashSet<>();
        if (eos >= 0) s.add(eos);
        for (int id : stops == null ? List.<Integer>of() : stops) {
            checkId("stop token", id, n);
            if (id >= 0) s.add(id);
        }
        this.stops = Collections.unmodifiableList(new ArrayList<>(s));
        this.addBos = addBos;
    }

    private static void checkId(String what, int id, int n) {
        if (id < -1 || id >= n) throw new IllegalArgumentException(what + " id " + id + " is outside the vocabulary of " + n + " tokens");
    }

    public int size() { return tokens.size(); }
    public String token(int id) { return tokens.get(id); }
    public List<String> tokens() { return tokens; }
    public TokenType type(int id) { return types[id]; }
    public TokenType[] types() { return types.clone(); }
    public float score(int id) { return scores == null ? 0f : scores[id]; }
    public float[] scores() { return scores == null ? null : scores.clone(); }
    public int bos() { return bos; }
    public int eos() { return eos; }
    public List<Integer> stops() { return stops; }
    public boolean addBos() { return addBos; }

    /** The id of {@code token}, or −1. */
    public int id(String token) {
        Integer i = ids.get(token);
        return i == null ? -1 : i;
    }

    @Override
    public String toString() {
        return "Vocabulary[" + size() + " tokens, bos " + bos + ", eos " + eos + ", stops " + stops + ", types "
                + Arrays.stream(types).distinct().toList() + "]";
    }
}
