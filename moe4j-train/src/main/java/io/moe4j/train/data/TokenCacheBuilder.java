package io.moe4j.train.data;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.moe4j.tokenizer.Tokenizer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.BufferedInputStream;
import java.io.DataOutputStream;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.Reader;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.TreeMap;
import java.util.zip.GZIPInputStream;

/**
 * Tokenises a corpus document by document into a cache directory:
 * <pre>
 *   train.tok   ids of the training documents, each followed by EOS (when the tokenizer has one);
 *               uint16 or int32 little-endian
 *   val.tok     the same for validation documents
 *   val.docs    per validation document: int64 first id index, int32 domain index (−1 = none), big-endian
 *   meta.json   {@link CacheMeta}
 * </pre>
 * Memory is one document plus write buffers, whatever the corpus size. Everything is written into a temporary
 * sibling directory that is renamed into place at the end, so a crash or an error leaves no half-built cache.
 */
final class TokenCacheBuilder {

    private static final Logger LOG = LoggerFactory.getLogger(TokenCacheBuilder.class);
    private static final int SNIFF_BYTES = 8192;
    private static final long PROGRESS_EVERY = 1 << 20;

    private final CorpusOptions options;
    private final Tokenizer tok;
    private final String tokenizerHash;
    private final List<TextSource> sources;
    private final CorpusProgress progress;
    private final int width;

    // per-domain statistics of each split
    private final TreeMap<String, DomainStats> trainStats = new TreeMap<>();
    private final TreeMap<String, DomainStats> valStats = new TreeMap<>();
    private final List<String> skipped = new ArrayList<>();
    private final List<String> domains = new ArrayList<>();

    private long bytesRead;
    private long bytesTotal;
    private long lastReported;

    TokenCacheBuilder(CorpusOptions options, Tokenizer tok, String tokenizerHash, List<TextSource> sources,
                      CorpusProgress progress) {
        this.options = options;
        this.tok = tok;
        this.tokenizerHash = tokenizerHash;
        this.sources = sources;
        this.progress = progress;
        this.width = tok.vocabSize() <= 65536 ? 2 : 4;
    }

    /** Builds the cache for {@code key} into {@code dir} (which must not exist yet). */
    void build(String key, Path dir) throws IOException {
        Files.createDirectories(dir.getParent());
        Path tmp = Files.createTempDirectory(dir.getParent(), dir.getFileName() + ".tmp-");
        try {
            CacheMeta meta;
            try (TokenWriter train = new TokenWriter(Files.newOutputStream(tmp.resolve("train.tok")), width);
                 TokenWriter val = new TokenWriter(Files.newOutputStream(tmp.resolve("val.tok")), width);
                 DataOutputStream valDocs = new DataOutputStream(new java.io.BufferedOutputStream(
                         Files.newOutputStream(tmp.resolve("val.docs")), 1 << 16))) {
                for (TextSource s : sources) bytesTotal += s.size();
                long valDocCount = 0;
                for (TextSource s : sources) valDocCount += tokenise(s, train, val, valDocs);
                meta = finish(key, train.count(), val.count(), valDocCount);
            }
            new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT)
                    .writeValue(tmp.resolve("meta.json").toFile(), meta);
            try {
                Files.move(tmp, dir, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
            } catch (java.nio.file.FileSystemException e) {
                if (!Files.isRegularFile(dir.resolve("meta.json"))) throw e;
                // another process built the same key meanwhile: same inputs, same content; keep theirs
                LOG.info("token cache {} was built concurrently; using that one", dir);
                deleteTree(tmp);
            }
        } catch (IOException | RuntimeException | Error e) {
            deleteTree(tmp);
            throw e;
        }
    }

    /** Tokenises one source; returns the number of validation documents it contributed. */
    private long tokenise(TextSource s, TokenWriter train, TokenWriter val, DataOutputStream valDocs)
            throws IOException {
        long valDocCount = 0;
        try (CountingInputStream raw = new CountingInputStream(open(s))) {
            InputStream in = new BufferedInputStream(s.gzip() ? new GZIPInputStream(raw, 1 << 16) : raw, 1 << 16);
            String why = sniff(in);
            if (why != null) {
                LOG.warn("corpus: skipping {} ({}): {}", s.name(), s.location(), why);
                skipped.add(s.name() + ": " + why);
                bytesRead += s.size();
                return 0;
            }
            // past the sniffed prefix, malformed UTF-8 becomes U+FFFD (counted as its 3 UTF-8 bytes)
            CharsetDecoder dec = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPLACE).onUnmappableCharacter(CodingErrorAction.REPLACE);
            Reader reader = new InputStreamReader(in, dec);
            DocumentSplitter docs = new DocumentSplitter(reader, options.docChars());
            String domain = s.domain() == null ? DomainStats.UNLABELLED : s.domain();
            int domainIndex = s.domain() == null ? -1 : domainIndex(s.domain());
            int k = 0;
            long base = bytesRead;
            for (String text; (text = docs.next()) != null; k++) {
                String id = s.name() + "#" + k;
                Split split = Split.of(id, options.valFraction(), options.splitSeed());
                int[] ids = tok.encode(text, false);
                TokenWriter w = split == Split.TRAIN ? train : val;
                if (split == Split.VALIDATION) {
                    valDocs.writeLong(val.count());
                    valDocs.writeInt(domainIndex);
                    valDocCount++;
                }
                w.write(ids, tok.vocabSize(), s.name());
                if (tok.eos() >= 0) w.write(tok.eos());
                long n = ids.length + (tok.eos() >= 0 ? 1 : 0);
                (split == Split.TRAIN ? trainStats : valStats)
                        .merge(domain, new DomainStats(domain, 1, utf8Length(text), n),
                                (a, b) -> a.plus(b.documents(), b.bytes(), b.tokens()));
                bytesRead = base + raw.count();
                if (bytesRead - lastReported >= PROGRESS_EVERY) report(train, val, s);
            }
            bytesRead = base + s.size();
            report(train, val, s);
        }
        return valDocCount;
    }

    private void report(TokenWriter train, TokenWriter val, TextSource s) {
        lastReported = bytesRead;
        progress.update(Math.min(bytesRead, bytesTotal), bytesTotal, train.count() + val.count(), s.name());
    }

    private CacheMeta finish(String key, long trainTokens, long valTokens, long valDocCount) {
        CorpusStats stats = new CorpusStats(List.copyOf(trainStats.values()), List.copyOf(valStats.values()), skipped);
        long trainDocs = CorpusStats.total(stats.train()).documents();
        String what = sources.size() + " source file(s)" + (skipped.isEmpty() ? "" : ", skipped: " + skipped);
        if (trainDocs + valDocCount == 0) throw new CorpusException("corpus is empty: no text in " + what);
        if (trainDocs == 0) {
            throw new CorpusException("corpus training split is empty: all " + valDocCount
                    + " documents went to validation (valFraction " + options.valFraction() + ")");
        }
        if (options.valFraction() > 0 && valDocCount == 0) {
            throw new CorpusException("corpus validation split is empty: none of the " + trainDocs
                    + " documents was drawn for validation (valFraction " + options.valFraction() + ", docChars "
                    + options.docChars() + "); raise valFraction, lower docChars for more, smaller documents, "
                    + "or add text");
        }
        List<String> keys = sources.stream().map(TextSource::keyLine).toList();
        return new CacheMeta(CacheMeta.FORMAT, key, tokenizerHash, tok.vocabSize(), tok.eos(), width,
                options.valFraction(), options.docChars(), options.splitSeed(), keys, trainTokens, valTokens,
                valDocCount, List.copyOf(domains), stats);
    }

    private int domainIndex(String d) {
        int i = domains.indexOf(d);
        if (i >= 0) return i;
        domains.add(d);
        return domains.size() - 1;
    }

    private static InputStream open(TextSource s) {
        try {
            return s.opener().open();
        } catch (IOException e) {
            throw new CorpusException("corpus file '" + s.location() + "' cannot be read: " + e.getMessage(), e);
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

    static void deleteTree(Path p) {
        if (!Files.exists(p)) return;
        try (var s = Files.walk(p)) {
            for (Path q : s.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(q);
        } catch (IOException e) {
            LOG.warn("could not delete {}: {}", p, e.toString());
        }
    }

    /** Buffered little-endian writer of uint16 or int32 ids. */
    static final class TokenWriter implements AutoCloseable {
        private final OutputStream out;
        private final int width;
        private final byte[] buf = new byte[1 << 16];
        private int pos;
        private long count;

        TokenWriter(OutputStream out, int width) {
            this.out = out;
            this.width = width;
        }

        void write(int[] ids, int vocab, String where) throws IOException {
            for (int id : ids) {
                if (id < 0 || id >= vocab) {
                    throw new IllegalStateException("tokenizer returned id " + id + " outside [0, " + vocab
                            + ") for " + where);
                }
                write(id);
            }
        }

        void write(int id) throws IOException {
            if (pos + 4 > buf.length) flush();
            buf[pos++] = (byte) id;
            buf[pos++] = (byte) (id >>> 8);
            if (width == 4) {
                buf[pos++] = (byte) (id >>> 16);
                buf[pos++] = (byte) (id >>> 24);
            }
            count++;
        }

        long count() {
            return count;
        }

        private void flush() throws IOException {
            out.write(buf, 0, pos);
            pos = 0;
        }

        @Override
        public void close() throws IOException {
            flush();
            out.close();
        }
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
