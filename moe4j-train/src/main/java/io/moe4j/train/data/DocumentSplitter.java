package io.moe4j.train.data;

import java.io.IOException;
import java.io.Reader;

/**
 * Cuts a character stream into documents of bounded size, holding at most one document in memory (so a 50 GB file
 * streams). Boundaries, in order of preference:
 * <ol>
 *   <li>a line holding only a form feed ({@code \f}) — an explicit document break (the line itself is dropped);</li>
 *   <li>a blank line once the document has reached {@code targetChars} — documents end between paragraphs;</li>
 *   <li>the end of a line once it has reached {@code 2 · targetChars} (text without blank lines);</li>
 *   <li>anywhere at {@code 2 · targetChars} inside a line longer than that (never inside a surrogate pair).</li>
 * </ol>
 * The text of the documents is the input minus form-feed lines and a leading byte-order mark: nothing else is
 * changed, so UTF-8 byte counts stay exact. Documents that are only whitespace are skipped.
 */
final class DocumentSplitter {

    private final Reader in;
    private final int target;
    private final int hardLimit;
    private final char[] buf = new char[1 << 16];
    private int bufPos;
    private int bufLen;
    private boolean eof;
    private boolean first = true;
    private final StringBuilder doc = new StringBuilder();
    private int lineStart; // index in doc where the current (unfinished) line starts

    DocumentSplitter(Reader in, int targetChars) {
        if (targetChars < 1) throw new IllegalArgumentException("targetChars must be ≥ 1, was " + targetChars);
        this.in = in;
        this.target = targetChars;
        this.hardLimit = (int) Math.min(Integer.MAX_VALUE - 16, 2L * targetChars);
    }

    /** The next document, or null at the end of the stream. */
    String next() throws IOException {
        while (true) {
            if (bufPos == bufLen) {
                if (eof) return doc.isEmpty() ? null : emit(doc.length(), doc.length());
                bufLen = in.read(buf, 0, buf.length);
                bufPos = 0;
                if (bufLen <= 0) {
                    bufLen = 0;
                    eof = true;
                    continue;
                }
                if (first) {
                    first = false;
                    if (buf[0] == '\uFEFF') bufPos = 1;
                }
                continue;
            }
            char c = buf[bufPos++];
            doc.append(c);
            String d = null;
            if (c == '\n') {
                d = endOfLine();
            } else if (doc.length() >= hardLimit) {
                // a line longer than the hard limit: cut before it if it does not start the document, else inside it
                int cut = lineStart > 0 ? lineStart : doc.length();
                if (Character.isHighSurrogate(doc.charAt(cut - 1))) cut--;
                d = emit(cut, cut);
            }
            if (d != null) return d;
        }
    }

    private String endOfLine() {
        int end = doc.length();
        if (isFormFeedLine(lineStart, end)) return emit(lineStart, end);
        if (end >= hardLimit || (end >= target && isBlank(lineStart, end))) return emit(end, end);
        lineStart = end;
        return null;
    }

    /** Takes doc[0, textEnd) as a document and drops doc[0, consumed); null when the document is only whitespace. */
    private String emit(int textEnd, int consumed) {
        String d = isBlank(0, textEnd) ? null : doc.substring(0, textEnd);
        doc.delete(0, consumed);
        lineStart = 0;
        return d;
    }

    private boolean isFormFeedLine(int from, int to) {
        // "\f\n" or "\f\r\n"
        int n = to - from;
        return (n == 2 || (n == 3 && doc.charAt(from + 1) == '\r')) && doc.charAt(from) == '\f';
    }

    private boolean isBlank(int from, int to) {
        for (int i = from; i < to; i++) if (!Character.isWhitespace(doc.charAt(i))) return false;
        return true;
    }
}
