package io.moe4j.tokenizer;

import java.util.List;
import java.util.Objects;

/**
 * A tokenizer as GGUF metadata wants it ({@code tokenizer.ggml.*}), as plain data, so the code that writes GGUF
 * files (moe4j-infer) needs no knowledge of tokenizer internals and core needs no GGUF classes.
 *
 * @param model          {@code tokenizer.ggml.model}: "gpt2" (byte-level BPE) or "llama" (SentencePiece)
 * @param pre            {@code tokenizer.ggml.pre}, or {@code null} (SentencePiece has none)
 * @param tokens         {@code tokenizer.ggml.tokens}
 * @param types          {@code tokenizer.ggml.token_type}
 * @param scores         {@code tokenizer.ggml.scores}, or {@code null}
 * @param merges         {@code tokenizer.ggml.merges}, or {@code null} (SentencePiece)
 * @param bos            {@code tokenizer.ggml.bos_token_id}, −1 for none; {@code eos}, {@code unk} likewise
 * @param addBos         {@code tokenizer.ggml.add_bos_token}
 * @param addSpacePrefix {@code tokenizer.ggml.add_space_prefix} (SentencePiece only)
 */
public record GgufVocab(String model, String pre, List<String> tokens, TokenType[] types, float[] scores,
                        List<String> merges, int bos, int eos, int unk, boolean addBos, boolean addSpacePrefix) {
    public GgufVocab {
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(tokens, "tokens");
        Objects.requireNonNull(types, "types");
        if (types.length != tokens.size()) throw new IllegalArgumentException(types.length + " token types for " + tokens.size() + " tokens");
        if (scores != null && scores.length != tokens.size()) throw new IllegalArgumentException(scores.length + " scores for " + tokens.size() + " tokens");
    }

    /** Token types as GGUF's int32 numbers. */
    public int[] typeIds() {
        int[] t = new int[types.length];
        for (int i = 0; i < t.length; i++) t[i] = types[i].id();
        return t;
    }
}
