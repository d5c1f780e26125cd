package io.moe4j.train.data;

import io.moe4j.tokenizer.Tokenizer;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * A hash that changes when a tokenizer would tokenise differently, for keying token caches. The {@link Tokenizer}
 * interface has no identity of its own, so this hashes what it exposes: vocabulary size, special ids, every token's
 * bytes, and the encoding of a probe text (two BPE tokenizers with one vocabulary but different merges differ there).
 * Cost: one pass over the vocabulary (~10 ms for 50 k tokens).
 */
public final class TokenizerFingerprint {

    private static final String PROBE = """
            The quick brown fox jumps over the lazy dog. "Don't," she said -- 1,234.56; x += y[i] * 2;
            public static void main(String[] args) { return; }   tabs\tand  spaces
            Ünïcödé café naïve — 日本語のテキスト, русский текст, emoji 🙂🚀, ﬁ ligature.
            """;

    private TokenizerFingerprint() {
    }

    public static String of(Tokenizer tok) {
        MessageDigest md;
        try {
            md = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
        int v = tok.vocabSize();
        update(md, tok.getClass().getName().getBytes(StandardCharsets.UTF_8));
        updateInt(md, v);
        updateInt(md, tok.bos());
        updateInt(md, tok.eos());
        for (int id : tok.stopTokens()) updateInt(md, id);
        for (int id = 0; id < v; id++) {
            byte[] b;
            try {
                b = tok.tokenBytes(id);
            } catch (RuntimeException e) { // a special token without bytes
                b = null;
            }
            if (b == null) updateInt(md, -1);
            else update(md, b);
        }
        for (int id : tok.encode(PROBE, false)) updateInt(md, id);
        return HexFormat.of().formatHex(md.digest());
    }

    private static void update(MessageDigest md, byte[] b) {
        updateInt(md, b.length);
        md.update(b);
    }

    private static void updateInt(MessageDigest md, int x) {
        md.update((byte) (x >>> 24));
        md.update((byte) (x >>> 16));
        md.update((byte) (x >>> 8));
        md.update((byte) x);
    }
}
