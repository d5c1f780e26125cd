package io.moe4j.tokenizer;

/**
 * A vocabulary entry's kind, numbered exactly as GGUF's {@code tokenizer.ggml.token_type} (llama.cpp's
 * {@code llama_token_type}), so the ordinal-free {@link #id()} round-trips through a GGUF file.
 *
 * <p>What the kinds change: {@link #CONTROL} tokens (BOS, EOS, {@code <|im_start|>}) are matched in text only when
 * the caller asks for special-token parsing; {@link #USER_DEFINED} tokens are always split out of the text before
 * pre-tokenization; {@link #BYTE} tokens ({@code <0x0A>}) are SentencePiece's byte fallback.
 */
public enum TokenType {
    UNDEFINED(0), NORMAL(1), UNKNOWN(2), CONTROL(3), USER_DEFINED(4), UNUSED(5), BYTE(6);

    private final int id;

    TokenType(int id) { this.id = id; }

    /** The GGUF number. */
    public int id() { return id; }

    /** The kind for a GGUF number; unknown numbers read as {@link #UNDEFINED}, as in llama.cpp. */
    public static TokenType ofId(long id) {
        for (TokenType t : values()) if (t.id == id) return t;
        return UNDEFINED;
    }

    /** Split out of raw text before pre-tokenization (always for user-defined, only with parseSpecial otherwise). */
    public boolean special() { return this == CONTROL || this == USER_DEFINED || this == UNKNOWN; }
}
