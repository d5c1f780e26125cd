package io.moe4j.train.data;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.moe4j.tokenizer.Tokenizer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.DataOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.TreeMap;

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
        deleteAbandoned(dir);
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
        String domain = s.domain() == null ? DomainStats.UNLABELLED : s.domain();
        int domainIndex = s.domain() == null ? -1 : domainIndex(s.domain());
        long base = bytesRead;
        long[] valDocCount = {0};
        String skip = Documents.read(s, options, (d, stored) -> {
            int[] ids = tok.encode(d.text(), false);
            TokenWriter w = d.split() == Split.TRAIN ? train : val;
            if (d.split() == Split.VALIDATION) {
                valDocs.writeLong(val.count());
                valDocs.writeInt(domainIndex);
                valDocCount[0]++;
            }
            w.write(ids, tok.vocabSize(), d.id());
            if (tok.eos() >= 0) w.write(tok.eos());
            long n = ids.length + (tok.eos() >= 0 ? 1 : 0);
            (d.split() == Split.TRAIN ? trainStats : valStats)
                    .merge(domain, new DomainStats(domain, 1, Documents.utf8Length(d.text()), n),
                            (a, b) -> a.plus(b.documents(), b.bytes(), b.tokens()));
            bytesRead = base + stored;
            if (bytesRead - lastReported >= PROGRESS_EVERY) report(train, val, s);
        });
        if (skip != null) skipped.add(s.name() + ": " + skip);
        bytesRead = base + s.size();
        report(train, val, s);
        return valDocCount[0];
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

    /** Removes temporary directories of this key left by a killed build (older than a day: not a running one). */
    private static void deleteAbandoned(Path dir) throws IOException {
        long cutoff = System.currentTimeMillis() - 24L * 3600 * 1000;
        try (var s = Files.newDirectoryStream(dir.getParent(), dir.getFileName() + ".tmp-*")) {
            for (Path p : s) {
                if (Files.getLastModifiedTime(p).toMillis() < cutoff) {
                    LOG.info("removing abandoned {}", p);
                    deleteTree(p);
                }
            }
        }
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
}
