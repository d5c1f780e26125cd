package io.moe4j.infer.tokenizer;

import io.moe4j.gguf.GgufArray;
import io.moe4j.gguf.GgufFile;
import io.moe4j.gguf.GgufValue;
import io.moe4j.gguf.GgufValueType;
import io.moe4j.gguf.GgufWriter;
import io.moe4j.tokenizer.ByteLevelBpe;
import io.moe4j.tokenizer.GgufVocab;
import io.moe4j.tokenizer.PreTokenizer;
import io.moe4j.tokenizer.SentencePieceBpe;
import io.moe4j.tokenizer.TokenType;
import io.moe4j.tokenizer.Tokenizer;
import io.moe4j.tokenizer.Vocabulary;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Tokenizers from GGUF metadata ({@code tokenizer.ggml.*}), read the way llama.cpp's {@code llama_vocab::load}
 * reads them, and the inverse for writers.
 *
 * <p>What is copied from llama.cpp because it changes token ids: the default special ids when a key is absent
 * ({@code llama}: unk 0, bos 1, eos 2; {@code gpt2}: bos = eos = 11, dropped if outside the vocabulary); the
 * defaults of {@code add_bos_token} (true for {@code llama} and {@code llama-bpe}); tokens whose text names an
 * end-of-turn ({@code <|im_end|>}, {@code <|eot_id|>}, ...) becoming control tokens and stop tokens even when the
 * file types them as normal; empty token strings read as {@code [EMPTY_<id>]}.
 *
 * <p>Errors: a missing or mistyped key, or arrays of inconsistent length, give one {@link IllegalArgumentException}
 * naming the file and the key. Non-goals: the {@code bert}, {@code t5}, {@code rwkv} models and pre-tokenizers
 * other than {@link PreTokenizer}'s (refused by name; an absent {@code tokenizer.ggml.pre} means "default", as in
 * llama.cpp).
 */
public final class GgufTokenizers {
    public static final String MODEL = "tokenizer.ggml.model", PRE = "tokenizer.ggml.pre", TOKENS = "tokenizer.ggml.tokens",
            TYPES = "tokenizer.ggml.token_type", SCORES = "tokenizer.ggml.scores", MERGES = "tokenizer.ggml.merges",
            BOS = "tokenizer.ggml.bos_token_id", EOS = "tokenizer.ggml.eos_token_id", UNK = "tokenizer.ggml.unknown_token_id",
            EOT = "tokenizer.ggml.eot_token_id", EOM = "tokenizer.ggml.eom_token_id", PAD = "tokenizer.ggml.padding_token_id",
            ADD_BOS = "tokenizer.ggml.add_bos_token", ADD_SPACE_PREFIX = "tokenizer.ggml.add_space_prefix",
            CHAT_TEMPLATE = "tokenizer.chat_template";

    /** llama.cpp's end-of-generation texts (src/llama-vocab.cpp, "special_eog_ids"). */
    private static final Set<String> EOG_TEXTS = Set.of("<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
            "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>", "<end_of_utterance>");

    private GgufTokenizers() {}

    /** The tokenizer described by {@code gguf}'s metadata. */
    public static Tokenizer load(GgufFile gguf) {
        String where = gguf.name();
        String model = string(gguf, MODEL, where);
        boolean spm = switch (model) {
            case "llama" -> true;
            case "gpt2" -> false;
            default -> throw new IllegalArgumentException(where + ": " + MODEL + " = '" + model + "' is not supported (gpt2, llama)");
        };
        List<String> tokens = new ArrayList<>(strings(gguf, TOKENS, where));
        int n = tokens.size();
        if (n == 0) throw new IllegalArgumentException(where + ": " + TOKENS + " is empty");
        for (int i = 0; i < n; i++) if (tokens.get(i).isEmpty()) tokens.set(i, "[EMPTY_" + i + "]");

        TokenType[] types = new TokenType[n];
        GgufArray ty = array(gguf, TYPES, where, false);
        if (ty != null) {
            if (ty.elementType() != GgufValueType.INT32) throw new IllegalArgumentException(where + ": " + TYPES + " must be an INT32 array, it holds " + ty.elementType());
            if (ty.size() < n) throw new IllegalArgumentException(where + ": " + TYPES + " has " + ty.size() + " entries for " + n + " tokens");
            for (int i = 0; i < n; i++) types[i] = TokenType.ofId(ty.getLong(i));
        } else {
            Arrays.fill(types, TokenType.NORMAL);
        }
        float[] scores = null;
        GgufArray sc = array(gguf, SCORES, where, false);
        if (sc != null) {
            if (sc.elementType() != GgufValueType.FLOAT32 && sc.elementType() != GgufValueType.INT32) {
                throw new IllegalArgumentException(where + ": " + SCORES + " must be a FLOAT32 or INT32 array, it holds " + sc.elementType());
            }
            if (sc.size() < n) throw new IllegalArgumentException(where + ": " + SCORES + " has " + sc.size() + " entries for " + n + " tokens");
            scores = new float[n];
            for (int i = 0; i < n; i++) scores[i] = sc.getFloat(i);
        }

        PreTokenizer pre = null;
        if (!spm) {
            GgufValue pv = gguf.get(PRE);
            if (pv != null && pv.type() != GgufValueType.STRING) throw new IllegalArgumentException(where + ": " + PRE + " must be a STRING, it is a " + pv.type());
            String preName = pv == null ? "default" : pv.asString();   // absent: llama.cpp warns and uses "default"
            pre = PreTokenizer.ofGgufName(preName);
            if (pre == null) {
                throw new IllegalArgumentException(where + ": " + PRE + " = '" + preName + "' is not supported (" +
                        Arrays.stream(PreTokenizer.values()).map(PreTokenizer::ggufName).toList() + ")");
            }
        }
        int bos = id(gguf, BOS, spm ? 1 : 11, n, where);
        int eos = id(gguf, EOS, spm ? 2 : 11, n, where);
        int unk = id(gguf, UNK, spm ? 0 : -1, n, where);
        int eot = id(gguf, EOT, -1, n, where), eom = id(gguf, EOM, -1, n, where);
        boolean addBos = bool(gguf, ADD_BOS, spm || pre == PreTokenizer.LLAMA3, where);

        // End-of-turn-looking tokens are control tokens and stop generation, whatever the file says.
        List<Integer> stops = new ArrayList<>();
        for (int id : new int[]{eot, eom}) if (id >= 0) stops.add(id);
        for (int i = 0; i < n; i++) {
            if (EOG_TEXTS.contains(tokens.get(i))) {
                stops.add(i);
                if (types[i] != TokenType.CONTROL) types[i] = TokenType.CONTROL;
            }
        }
        for (int id : new int[]{eot, eom}) if (id >= 0 && types[id] == TokenType.NORMAL) types[id] = TokenType.CONTROL;

        try {
            Vocabulary vocab = new Vocabulary(tokens, types, scores, bos, eos, stops, addBos);
            if (spm) return new SentencePieceBpe(vocab, unk, bool(gguf, ADD_SPACE_PREFIX, true, where));
            return new ByteLevelBpe(vocab, strings(gguf, MERGES, where), pre);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(where + ": inconsistent tokenizer metadata: " + e.getMessage(), e);
        }
    }

    /**
     * Writes {@code v} as {@code tokenizer.ggml.*} metadata. Refuses what llama.cpp cannot load: duplicate token
     * strings (it asserts they are unique) and a SentencePiece vocabulary without all 256 {@code <0xXX>} byte tokens
     * (it aborts while loading the model).
     */
    public static GgufWriter put(GgufWriter w, GgufVocab v) {
        Map<String, Integer> seen = new HashMap<>();
        for (int i = 0; i < v.tokens().size(); i++) {
            Integer prev = seen.put(v.tokens().get(i), i);
            if (prev != null) throw new IllegalArgumentException("token " + i + " '" + v.tokens().get(i) + "' duplicates token " + prev + "; llama.cpp refuses duplicate tokens");
        }
        if (v.model().equals("llama")) {
            for (int b = 0; b < 256; b++) {
                if (!seen.containsKey(String.format("<0x%02X>", b))) {
                    throw new IllegalArgumentException(String.format("SentencePiece vocabulary lacks the byte token <0x%02X>; llama.cpp needs all 256", b));
                }
            }
        }
        w.putString(MODEL, v.model());
        if (v.pre() != null) w.putString(PRE, v.pre());
        w.putArray(TOKENS, GgufArray.ofStrings(v.tokens()));
        if (v.scores() != null) w.putArray(SCORES, GgufArray.ofFloats(v.scores()));
        w.putArray(TYPES, GgufArray.ofInts(v.typeIds()));
        if (v.merges() != null) w.putArray(MERGES, GgufArray.ofStrings(v.merges()));
        if (v.bos() >= 0) w.putU32(BOS, v.bos());
        if (v.eos() >= 0) w.putU32(EOS, v.eos());
        if (v.unk() >= 0) w.putU32(UNK, v.unk());
        w.putBool(ADD_BOS, v.addBos());
        if (v.model().equals("llama")) w.putBool(ADD_SPACE_PREFIX, v.addSpacePrefix());
        return w;
    }

    private static GgufValue value(GgufFile g, String key, String where, boolean required) {
        GgufValue v = g.get(key);
        if (v == null && required) throw new IllegalArgumentException(where + ": missing metadata key " + key);
        return v;
    }

    private static String string(GgufFile g, String key, String where) {
        GgufValue v = value(g, key, where, true);
        if (v.type() != GgufValueType.STRING) throw new IllegalArgumentException(where + ": " + key + " must be a STRING, it is a " + v.type());
        return v.asString();
    }

    private static GgufArray array(GgufFile g, String key, String where, boolean required) {
        GgufValue v = value(g, key, where, required);
        if (v == null) return null;
        if (v.type() != GgufValueType.ARRAY) throw new IllegalArgumentException(where + ": " + key + " must be an ARRAY, it is a " + v.type());
        return v.asArray();
    }

    private static List<String> strings(GgufFile g, String key, String where) {
        GgufArray a = array(g, key, where, true);
        if (a.elementType() != GgufValueType.STRING) throw new IllegalArgumentException(where + ": " + key + " must be a STRING array, it holds " + a.elementType());
        return a.strings();
    }

    /** An id key; absent → {@code fallback} (dropped to −1 if outside the vocabulary, as llama.cpp does). */
    private static int id(GgufFile g, String key, int fallback, int n, String where) {
        GgufValue v = g.get(key);
        if (v == null) return fallback < n ? fallback : -1;
        if (!v.type().isInteger()) throw new IllegalArgumentException(where + ": " + key + " must be an integer, it is a " + v.type());
        long id = v.asLong();
        if (id < 0 || id >= n) throw new IllegalArgumentException(where + ": " + key + " = " + id + " is outside the vocabulary of " + n + " tokens");
        return (int) id;
    }

    private static boolean bool(GgufFile g, String key, boolean fallback, String where) {
        GgufValue v = g.get(key);
        if (v == null) return fallback;
        if (v.type() != GgufValueType.BOOL) throw new IllegalArgumentException(where + ": " + key + " must be a BOOL, it is a " + v.type());
        return v.asBoolean();
    }
}
