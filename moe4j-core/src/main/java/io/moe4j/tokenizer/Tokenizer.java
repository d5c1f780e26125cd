package io.moe4j.tokenizer;

import java.util.List;

/**
 * Text ⇄ token ids. Implementations: byte-level BPE (trained by moe4j or loaded from a GGUF's {@code gpt2}
 * tokenizer), SentencePiece BPE (a GGUF's {@code llama} tokenizer), raw bytes.
 */
public interface Tokenizer {

    int vocabSize();

    /** Token ids of {@code text}; special-token strings (e.g. "<|im_start|>") are recognised when
     * {@code parseSpecial} is true, else encoded as plain text. Adds no BOS/EOS. */
    int[] encode(String text, boolean parseSpecial);

    default int[] encode(String text) { return encode(text, false); }

    /** Text of the ids (invalid UTF-8 from partial byte sequences becomes U+FFFD). */
    String decode(int[] ids);

    /** Raw bytes of one token (streaming output joins bytes across tokens before decoding UTF-8). */
    byte[] tokenBytes(int id);

    /** The token's vocabulary string as stored (for inspection and debugging). */
    String tokenText(int id);

    /** Beginning-of-sequence id, or −1. */
    int bos();

    /** End-of-sequence id, or −1. */
    int eos();

    /** Ids that end generation (EOS, end-of-turn, ...). */
    List<Integer> stopTokens();

    /** Whether the model expects a prompt to start with {@link #bos()} (GGUF {@code tokenizer.ggml.add_bos_token}). */
    default boolean addBos() { return false; }

    /** {@link #encode(String, boolean)} with BOS in front when {@link #addBos()} says so: a model's prompt. */
    default int[] encodePrompt(String text, boolean parseSpecial) {
        int[] ids = encode(text, parseSpecial);
        if (!addBos() || bos() < 0) return ids;
        int[] out = new int[ids.length + 1];
        out[0] = bos();
        System.arraycopy(ids, 0, out, 1, ids.length);
        return out;
    }
}
