package io.moe4j.tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * Turns generated token ids into text one id at a time, for printing while generating: a token may end inside a
 * UTF-8 sequence (byte-level BPE and byte fallback split "é" or "🙂" across tokens), so the bytes of an incomplete
 * trailing sequence are held back until the next token completes them, and only whole characters are returned.
 * The concatenation of all {@link #push} results and {@link #finish()} equals {@link Tokenizer#decode} of the ids,
 * except that SentencePiece's leading-space removal applies to the first token only as decode does.
 *
 * <p>Not thread-safe (one per generation). Cost: O(bytes of the token) per push.
 */
public final class StreamingDecoder {
    private final Tokenizer tokenizer;
    private byte[] pending = new byte[16];
    private int n;
    private boolean first = true;

    public StreamingDecoder(Tokenizer tokenizer) { this.tokenizer = tokenizer; }

    /** The text that {@code id} completes (possibly empty). */
    public String push(int id) {
        byte[] b = tokenizer.tokenBytes(id);
        int from = 0;
        if (first && tokenizer instanceof SentencePieceBpe spm && spm.addSpacePrefix() && b.length > 0 && b[0] == ' ') from = 1;
        first = false;
        if (n + b.length - from > pending.length) pending = Arrays.copyOf(pending, Math.max(pending.length * 2, n + b.length));
        System.arraycopy(b, from, pending, n, b.length - from);
        n += b.length - from;
        int complete = completePrefix(pending, n);
        String s = new String(pending, 0, complete, StandardCharsets.UTF_8);
        System.arraycopy(pending, complete, pending, 0, n - complete);
        n -= complete;
        return s;
    }

    /** What is still held back (an incomplete sequence at the end of the output), as U+FFFD; resets the decoder. */
    public String finish() {
        String s = new String(pending, 0, n, StandardCharsets.UTF_8);
        n = 0;
        first = true;
        return s;
    }

    /**
     * Length of the longest prefix that does not end inside a possibly-valid UTF-8 sequence: the last up-to-3 bytes
     * are held back only if they start a multi-byte sequence that is still missing continuation bytes. Invalid
     * bytes are not held (they decode to U+FFFD now, as decode would).
     */
    static int completePrefix(byte[] b, int n) {
        for (int back = 1; back <= Math.min(3, n); back++) {
            int c = b[n - back] & 0xFF;
            if ((c & 0xC0) == 0x80) continue;   // continuation byte: look further back for the lead
            int need = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 1;   // else ASCII or never valid
            return need > back ? n - back : n;
        }
        return n;
    }
}
