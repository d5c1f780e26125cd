package io.moe4j.infer;

import io.moe4j.tokenizer.Tokenizer;

import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * Generated token ids → text that is safe to print as soon as it is known, for streaming output.
 *
 * <p>UTF-8 across tokens: a byte-level token may end inside a character (an emoji split over several tokens), so
 * the bytes of all tokens are joined and only complete characters are released; the incomplete tail waits for the
 * next token (invalid bytes become U+FFFD, as in {@link Tokenizer#decode}). Stop strings: text that could be the
 * start of a stop string is held back until it is clear it is not; when a stop string appears, the text before it
 * is released, the rest is dropped and {@link #stopped()} turns true. Stop token ids (EOS, end of turn) are never
 * printed. Allocates per token only the released string.
 */
public final class TextStream {
    private final Tokenizer tokenizer;
    private final List<String> stops;
    private final int[] stopIds;
    private final CharsetDecoder utf8 = StandardCharsets.UTF_8.newDecoder()
            .onMalformedInput(CodingErrorAction.REPLACE).onUnmappableCharacter(CodingErrorAction.REPLACE);
    private ByteBuffer bytes = ByteBuffer.allocate(64);      // undecoded bytes (an incomplete character at most)
    private CharBuffer chars = CharBuffer.allocate(64);
    private final StringBuilder pending = new StringBuilder();   // decoded text not yet released
    private final StringBuilder all = new StringBuilder();       // everything released
    private boolean stopped;

    /**
     * @param stops   stop strings (empty strings are ignored)
     * @param stopIds token ids that end generation and are not printed (may be null)
     */
    public TextStream(Tokenizer tokenizer, List<String> stops, int[] stopIds) {
        this.tokenizer = tokenizer;
        this.stops = stops.stream().filter(s -> !s.isEmpty()).toList();
        this.stopIds = stopIds == null ? new int[0] : stopIds.clone();
    }

    /** Adds a generated id; returns the text that can be printed now (possibly empty). */
    public String push(int id) {
        if (stopped) return "";
        for (int s : stopIds) if (s == id) return "";
        byte[] b = tokenizer.tokenBytes(id);
        if (bytes.remaining() < b.length) {
            ByteBuffer bigger = ByteBuffer.allocate(bytes.capacity() + b.length + 64);
            bytes.flip();
            bigger.put(bytes);
            bytes = bigger;
        }
        bytes.put(b);
        decode(false);
        return release(false);
    }

    /** Ends the stream: releases what was held back (an incomplete character as U+FFFD). */
    public String finish() {
        if (stopped) return "";
        decode(true);
        return release(true);
    }

    /** Whether a stop string was seen. */
    public boolean stopped() { return stopped; }

    /** All text released so far. */
    public String text() { return all.toString(); }

    private void decode(boolean end) {
        bytes.flip();
        if (chars.capacity() < bytes.remaining() + 4) chars = CharBuffer.allocate(bytes.remaining() + 64);
        chars.clear();
        utf8.decode(bytes, chars, end);   // stops before an incomplete sequence at the end unless end
        if (end) {
            utf8.flush(chars);
            utf8.reset();
        }
        bytes.compact();
        chars.flip();
        pending.append(chars);
    }

    private String release(boolean end) {
        int cut = pending.length();
        for (String s : stops) {
            int at = pending.indexOf(s);
            if (at >= 0 && at < cut) {
                cut = at;
                stopped = true;
            }
        }
        if (!stopped && !end) {
            // hold back the longest tail that is a proper prefix of a stop string
            for (String s : stops) {
                for (int len = Math.min(s.length() - 1, pending.length()); len > 0; len--) {
                    if (endsWithPrefix(pending, s, len)) {
                        cut = Math.min(cut, pending.length() - len);
                        break;
                    }
                }
            }
        }
        String out = pending.substring(0, cut);
        pending.delete(0, stopped ? pending.length() : cut);
        all.append(out);
        return out;
    }

    /** Whether {@code text} ends with the first {@code len} chars of {@code s}. */
    private static boolean endsWithPrefix(StringBuilder text, String s, int len) {
        int off = text.length() - len;
        for (int i = 0; i < len; i++) if (text.charAt(off + i) != s.charAt(i)) return false;
        return true;
    }
}
