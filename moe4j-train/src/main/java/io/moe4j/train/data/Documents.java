package io.moe4j.train.data;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.BufferedInputStream;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.function.Consumer;

/**
 * The documents of a corpus as text, streamed source by source: what the token cache is built from, and what a
 * tokenizer is trained on ({@code forEach(options, d -> { if (d.split() == Split.TRAIN) ... })} — train the
 * tokenizer on the training split only, so validation stays unseen).
 *
 * <p>A source is skipped, with a warning, when its first 8 KiB do not look like UTF-8 text (see {@link #sniff});
 * past that prefix, malformed UTF-8 becomes U+FFFD.
 */
public final class Documents {

    private static final Logger LOG = LoggerFactory.getLogger(Documents.class);
    private static final int SNIFF_BYTES = 8192;

    private Documents() {
    }

    /**
     * One document.
     *
     * @param id     "<source name>#<index>", the input of the split hash
     * @param source the file it comes from
     * @param index  its index within the source
     * @param split  train or validation
     * @param text   the text, verbatim
     */
    public record Document(String id, TextSource source, int index, Split split, String text) {
        /** The source's domain label, or null. */
        public String domain() {
            return source.domain();
        }
    }

    /** Receives documents and the stored bytes of the source consumed so far (for progress). */
    @FunctionalInterface
    interface Sink {
        void accept(Document d, long storedBytesRead) throws IOException;
    }

    /** Every document of the corpus, in source order; unreadable sources throw, binary ones are skipped. */
    public static void forEach(CorpusOptions options, Consumer<Document> action) {
        for (TextSource s : Sources.resolve(options.sources())) {
            try {
                read(s, options, (d, n) -> action.accept(d));
            } catch (IOException e) {
                throw new UncheckedIOException("reading " + s.location() + ": " + e.getMessage(), e);
            }
        }
    }

    /** Streams the documents of one source into sink; returns null, or why the source was skipped. */
    static String read(TextSource s, CorpusOptions options, Sink sink) throws IOException {
        try (CountingInputStream raw = new CountingInputStream(open(s))) {
            DocumentSplitter docs;
            try {
                InputStream in = new BufferedInputStream(s.gzip()
                        ? new java.util.zip.GZIPInputStream(raw, 1 << 16) : raw, 1 << 16);
                String why = sniff(in);
                if (why != null) {
                    LOG.warn("corpus: skipping {} ({}): {}", s.name(), s.location(), why);
                    return why;
                }
                CharsetDecoder dec = StandardCharsets.UTF_8.newDecoder()
                        .onMalformedInput(CodingErrorAction.REPLACE).onUnmappableCharacter(CodingErrorAction.REPLACE);
                docs = new DocumentSplitter(new InputStreamReader(in, dec), options.docChars());
            } catch (IOException e) {
                throw unreadable(s, e);
            }
            for (int k = 0; ; k++) {
                String text;
                try {
                    text = docs.next();
                } catch (IOException e) { // a read error, a truncated or corrupt gzip stream
                    throw unreadable(s, e);
                }
                if (text == null) return null;
                String id = s.name() + "#" + k;
                // IOExceptions of the sink (writing the cache) pass through unchanged
                sink.accept(new Document(id, s, k, Split.of(id, options.valFraction(), options.splitSeed()), text),
                        raw.count());
            }
        }
    }

    private static CorpusException unreadable(TextSource s, IOException e) {
        return new CorpusException("corpus file '" + s.location() + "' cannot be read"
                + (s.gzip() ? " as gzip" : "") + ": " + e, e);
    }

    private static InputStream open(TextSource s) {
        try {
            return s.opener().open();
        } catch (IOException e) {
            throw unreadable(s, e);
        }
    }

    /**
     * Why the stream does not look like UTF-8 text, or null if it does: a NUL byte, invalid UTF-8, or more than 1 %
     * control characters (other than tab, newlines, form feed, escape) in the first 8 KiB. Leaves the stream where
     * it was.
     */
    static String sniff(InputStream in) throws IOException {
        in.mark(SNIFF_BYTES);
        byte[] b = in.readNBytes(SNIFF_BYTES);
        in.reset();
        int controls = 0;
        for (byte x : b) {
            if (x == 0) return "binary (contains NUL bytes)";
            if ((x & 0xFF) < 0x20 && x != '\t' && x != '\n' && x != '\r' && x != '\f' && x != 0x1B) controls++;
        }
        if (controls * 100L > b.length) return "binary (" + controls + " control bytes in the first " + b.length + ")";
        CharsetDecoder dec = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer bb = ByteBuffer.wrap(b);
        CoderResult r = dec.decode(bb, CharBuffer.allocate(b.length), b.length < SNIFF_BYTES);
        // a multi-byte character cut by the 8 KiB window is an underflow with bytes left: fine
        if (r.isError()) return "not UTF-8 text (invalid byte sequence at offset " + bb.position() + ")";
        return null;
    }

    /** UTF-8 length of a string without encoding it (lone surrogates count as '?' = 1 byte, as String.getBytes). */
    static long utf8Length(CharSequence s) {
        long n = 0;
        for (int i = 0, len = s.length(); i < len; i++) {
            char c = s.charAt(i);
            if (c < 0x80) n += 1;
            else if (c < 0x800) n += 2;
            else if (Character.isHighSurrogate(c) && i + 1 < len && Character.isLowSurrogate(s.charAt(i + 1))) {
                n += 4;
                i++;
            } else if (Character.isSurrogate(c)) n += 1;
            else n += 3;
        }
        return n;
    }

    /** Counts the bytes read through it (progress in stored bytes, also for gzip sources). */
    private static final class CountingInputStream extends FilterInputStream {
        private long count;

        CountingInputStream(InputStream in) {
            super(in);
        }

        @Override
        public int read() throws IOException {
            int b = super.read();
            if (b >= 0) count++;
            return b;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            int n = super.read(b, off, len);
            if (n > 0) count += n;
            return n;
        }

        @Override
        public long skip(long n) throws IOException {
            long k = super.skip(n);
            count += k;
            return k;
        }

        long count() {
            return count;
        }
    }
}
