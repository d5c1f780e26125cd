package io.moe4j.train.data;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.moe4j.tokenizer.Tokenizer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.DataInputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;

/**
 * A tokenised corpus: the train and validation token streams of a cache directory, memory-mapped (the heap holds
 * neither), with their statistics. {@link #open} reuses the cache whose key matches — tokenizer fingerprint, the
 * resolved source files (name, domain, location, size, modification time or content hash) and the cutting
 * options — and builds it otherwise; changing any of them gives a new key, hence a rebuild.
 *
 * <p>Non-goal: cleaning up caches of old keys (they are separate directories under the cache dir; delete at will).
 */
public final class TokenCorpus {

    private static final Logger LOG = LoggerFactory.getLogger(TokenCorpus.class);
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final Tokenizer tok;
    private final Path dir;
    private final CacheMeta meta;
    private final boolean built;
    private final MemorySegment train;   // (trainTokens) uint16 or int32 LE
    private final MemorySegment val;     // (valTokens)
    private final long[] valDocStart;    // (valDocuments) first token index of each validation document
    private final int[] valDocDomain;    // (valDocuments) index into meta.domains(), −1 = none
    private final int[] tokenUtf8;       // (vocabSize) UTF-8 bytes of each token's text; 0 for BOS/EOS

    private TokenCorpus(Tokenizer tok, Path dir, CacheMeta meta, boolean built) throws IOException {
        this.tok = tok;
        this.dir = dir;
        this.meta = meta;
        this.built = built;
        // an automatic arena: the mappings live as long as this object is reachable, no close() to forget
        Arena arena = Arena.ofAuto();
        this.train = map(dir.resolve("train.tok"), meta.trainTokens() * meta.tokenBytes(), arena);
        this.val = map(dir.resolve("val.tok"), meta.valTokens() * meta.tokenBytes(), arena);
        int n = Math.toIntExact(meta.valDocuments());
        this.valDocStart = new long[n];
        this.valDocDomain = new int[n];
        try (DataInputStream in = new DataInputStream(new java.io.BufferedInputStream(
                Files.newInputStream(dir.resolve("val.docs"))))) {
            for (int i = 0; i < n; i++) {
                valDocStart[i] = in.readLong();
                valDocDomain[i] = in.readInt();
            }
        }
        this.tokenUtf8 = new int[tok.vocabSize()];
        for (int id = 0; id < tokenUtf8.length; id++) {
            if (id == tok.eos() || id == tok.bos()) continue;
            byte[] b = tok.tokenBytes(id);
            tokenUtf8[id] = b == null ? 0 : b.length;
        }
    }

    /** Opens the token cache of this corpus, building it first when no cache has the key. */
    public static TokenCorpus open(CorpusOptions options, Tokenizer tok, CorpusProgress progress) {
        Path cacheRoot = options.cacheDir().toAbsolutePath().normalize();
        // a cache directory inside a source directory must not feed on itself (its meta.json would change the key)
        List<TextSource> sources = Sources.resolve(options.sources()).stream()
                .filter(s -> s.location().startsWith("classpath:") || !Path.of(s.location()).startsWith(cacheRoot))
                .toList();
        String tokenizerHash = TokenizerFingerprint.of(tok);
        String key = key(options, tokenizerHash, sources);
        Path dir = options.cacheDir().resolve(key.substring(0, 24)).toAbsolutePath();
        try {
            CacheMeta meta = readMeta(dir, key);
            boolean built = false;
            if (meta == null) {
                if (Files.exists(dir) && readMeta(dir, key) == null) { // re-read: another process may just have finished
                    LOG.warn("token cache {} is incomplete or damaged; rebuilding", dir);
                    TokenCacheBuilder.deleteTree(dir);
                }
                meta = readMeta(dir, key);
            }
            if (meta == null) {
                LOG.info("tokenising {} source file(s) into {}", sources.size(), dir);
                new TokenCacheBuilder(options, tok, tokenizerHash, sources, progress == null ? CorpusProgress.NONE
                        : progress).build(key, dir);
                meta = readMeta(dir, key);
                if (meta == null) throw new IllegalStateException("token cache " + dir + " unreadable after build");
                built = true;
            }
            return new TokenCorpus(tok, dir, meta, built);
        } catch (IOException e) {
            throw new UncheckedIOException("token cache " + dir + ": " + e.getMessage(), e);
        }
    }

    public static TokenCorpus open(CorpusOptions options, Tokenizer tok) {
        return open(options, tok, CorpusProgress.NONE);
    }

    /** The batches of this corpus: random training windows drawn with {@code seed}, the fixed validation set. */
    public TokenBatchSource batches(long seed) {
        return new TokenBatchSource(this, seed);
    }

    // ---- cache key and files

    static String key(CorpusOptions o, String tokenizerHash, List<TextSource> sources) {
        StringBuilder sb = new StringBuilder()
                .append("format ").append(CacheMeta.FORMAT).append('\n')
                .append("tokenizer ").append(tokenizerHash).append('\n')
                .append("valFraction ").append(Double.toHexString(o.valFraction())).append('\n')
                .append("docChars ").append(o.docChars()).append('\n')
                .append("splitSeed ").append(o.splitSeed()).append('\n');
        for (TextSource s : sources) sb.append(s.keyLine()).append('\n');
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256")
                    .digest(sb.toString().getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }

    /** The meta of a complete cache with this key in dir, else null (missing, other key, truncated files). */
    private static CacheMeta readMeta(Path dir, String key) {
        Path m = dir.resolve("meta.json");
        if (!Files.isRegularFile(m)) return null;
        try {
            CacheMeta meta = new ObjectMapper().readValue(m.toFile(), CacheMeta.class);
            if (meta.format() != CacheMeta.FORMAT || !key.equals(meta.key())) return null;
            if (Files.size(dir.resolve("train.tok")) != meta.trainTokens() * meta.tokenBytes()) return null;
            if (Files.size(dir.resolve("val.tok")) != meta.valTokens() * meta.tokenBytes()) return null;
            if (Files.size(dir.resolve("val.docs")) != meta.valDocuments() * 12) return null;
            return meta;
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    private static MemorySegment map(Path file, long bytes, Arena arena) throws IOException {
        if (bytes == 0) return MemorySegment.ofArray(new byte[0]);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            return ch.map(FileChannel.MapMode.READ_ONLY, 0, bytes, arena);
        }
    }

    // ---- reading

    /** Copies {@code n} ids of a split starting at token {@code from} into {@code dst[off ..]}. */
    void read(Split split, long from, int[] dst, int off, int n) {
        MemorySegment s = split == Split.TRAIN ? train : val;
        if (meta.tokenBytes() == 4) {
            MemorySegment.copy(s, I32, from * 4, dst, off, n);
        } else {
            long base = from * 2;
            for (int i = 0; i < n; i++) dst[off + i] = Short.toUnsignedInt(s.get(U16, base + 2L * i));
        }
    }

    /** UTF-8 bytes of the text of token {@code id} (0 for BOS and EOS, which stand for no text). */
    int utf8Bytes(int id) {
        return tokenUtf8[id];
    }

    /** Index of the validation document holding token {@code t} (validation must have a document). */
    int valDocumentAt(long t) {
        int lo = 0, hi = valDocStart.length - 1;
        while (lo < hi) { // last document whose start ≤ t
            int mid = (lo + hi + 1) >>> 1;
            if (valDocStart[mid] <= t) lo = mid;
            else hi = mid - 1;
        }
        return lo;
    }

    long valDocStart(int doc) {
        return doc < valDocStart.length ? valDocStart[doc] : meta.valTokens();
    }

    String valDocDomain(int doc) {
        int d = valDocDomain[doc];
        return d < 0 ? null : meta.domains().get(d);
    }

    int valDocuments() {
        return valDocStart.length;
    }

    // ---- what callers look at

    public long trainTokens() {
        return meta.trainTokens();
    }

    public long validationTokens() {
        return meta.valTokens();
    }

    public CorpusStats stats() {
        return meta.stats();
    }

    public CacheMeta meta() {
        return meta;
    }

    /** The cache directory. */
    public Path directory() {
        return dir;
    }

    /** True when {@link #open} tokenised the corpus, false when it reused a cache. */
    public boolean built() {
        return built;
    }

    public Tokenizer tokenizer() {
        return tok;
    }
}
