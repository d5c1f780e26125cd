package io.moe4j.train.export;

import java.util.List;

/**
 * The tokenizer as a GGUF file carries it ({@code tokenizer.ggml.*}): what an exported model needs so that
 * llama.cpp (or moe4j's own loader) tokenizes exactly as training did.
 *
 * @param model      "gpt2" (byte-level BPE) or "llama" (SentencePiece)
 * @param pre        pre-tokenizer name ("llama-bpe", "qwen2", "gpt2", or "default")
 * @param tokens     token strings by id (byte-level BPE: in GPT-2's byte-to-unicode alphabet)
 * @param tokenTypes llama_token_type per id (1 normal, 2 unknown, 3 control, 4 user-defined, 6 byte)
 * @param merges     "a b" merge rules in rank order (gpt2 model), empty otherwise
 * @param scores     SentencePiece scores (llama model), null otherwise
 * @param bos        beginning-of-sequence id, or −1
 * @param eos        end-of-sequence id, or −1
 */
public record GgufVocab(String model, String pre, List<String> tokens, int[] tokenTypes, List<String> merges,
                        float[] scores, int bos, int eos) {
    public GgufVocab {
        if (tokenTypes.length != tokens.size()) {
            throw new IllegalArgumentException("tokenTypes has " + tokenTypes.length + " entries for " + tokens.size() + " tokens");
        }
        if (scores != null && scores.length != tokens.size()) {
            throw new IllegalArgumentException("scores has " + scores.length + " entries for " + tokens.size() + " tokens");
        }
    }
}
