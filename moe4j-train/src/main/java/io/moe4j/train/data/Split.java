package io.moe4j.train.data;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/**
 * The train/validation split, decided per document by a hash of its id alone: a document keeps its split when
 * other files are added or removed, and no document is ever in both. Non-goal: exact fractions — the validation
 * share is {@code fraction} in expectation, over documents (not tokens).
 */
public enum Split {
    TRAIN, VALIDATION;

    /** The split of the document {@code id} ("bundled/drama-shakespeare.txt#12") under {@code fraction, seed}. */
    public static Split of(String id, double fraction, long seed) {
        return unit(id, seed) < fraction ? VALIDATION : TRAIN;
    }

    /** A uniform number in [0, 1) from SHA-256(seed, id). */
    static double unit(String id, long seed) {
        MessageDigest md;
        try {
            md = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
        for (int i = 7; i >= 0; i--) md.update((byte) (seed >>> (8 * i)));
        byte[] h = md.digest(id.getBytes(StandardCharsets.UTF_8));
        long x = 0;
        for (int i = 0; i < 8; i++) x = (x << 8) | (h[i] & 0xFF);
        return (x >>> 11) * 0x1.0p-53;
    }
}
