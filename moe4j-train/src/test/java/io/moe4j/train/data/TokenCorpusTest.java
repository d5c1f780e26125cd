package io.moe4j.train.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.zip.GZIPInputStream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

class TokenCorpusTest {

    @TempDir
    Path tmp;

    /** n small documents "doc <i> ..." under dir/<domain>/, one file each, with a unique marker per document. */
    static Path writeDocs(Path dir, int n, String... domains) throws IOException {
        for (int i = 0; i < n; i++) {
            String domain = domains[i % domains.length];
            Path f = dir.resolve(domain).resolve("f%03d.txt".formatted(i));
            Files.createDirectories(f.getParent());
            Files.writeString(f, "<doc%03d> text of %s number %d: café 日本 🙂\n".formatted(i, domain, i));
        }
        return dir;
    }

    private CorpusOptions options(Path corpus) {
        return CorpusOptions.of(List.of(corpus.toString())).withCacheDir(tmp.resolve("cache")).withValFraction(0.3);
    }

    private static String stream(TokenCorpus c, Split split) {
        long n = split == Split.TRAIN ? c.trainTokens() : c.validationTokens();
        int[] ids = new int[Math.toIntExact(n)];
        c.read(split, 0, ids, 0, ids.length);
        // EOS (256) shown as '|'
        StringBuilder sb = new StringBuilder();
        List<Byte> bytes = new ArrayList<>();
        for (int id : ids) {
            if (id == 256) {
                sb.append(utf8(bytes)).append('|');
                bytes.clear();
            } else bytes.add((byte) id);
        }
        return sb.append(utf8(bytes)).toString();
    }

    private static String utf8(List<Byte> b) {
        byte[] a = new byte[b.size()];
        for (int i = 0; i < a.length; i++) a[i] = b.get(i);
        return new String(a, StandardCharsets.UTF_8);
    }

    @Test
    void splitIsByDocumentDeterministicAndDisjoint() throws IOException {
        Path corpus = writeDocs(tmp.resolve("c"), 60, "prose", "code");
        TokenCorpus a = TokenCorpus.open(options(corpus), new ByteTokenizer());
        String train = stream(a, Split.TRAIN), val = stream(a, Split.VALIDATION);
        int inVal = 0;
        for (int i = 0; i < 60; i++) {
            String marker = "<doc%03d>".formatted(i);
            boolean t = train.contains(marker), v = val.contains(marker);
            assertThat(t ^ v).as("%s in exactly one split", marker).isTrue();
            // the split is the hash of the document id alone, as documented
            String domain = i % 2 == 0 ? "prose" : "code";
            Split expected = Split.of("c/%s/f%03d.txt#0".formatted(domain, i), 0.3, 0);
            assertThat(v ? Split.VALIDATION : Split.TRAIN).isEqualTo(expected);
            if (v) inVal++;
        }
        assertThat(inVal).isBetween(8, 30); // ~18 expected of 60
        // every document is followed by EOS
        assertThat(train.chars().filter(ch -> ch == '|').count() + val.chars().filter(ch -> ch == '|').count())
                .isEqualTo(60);

        // the same corpus in another cache directory gives byte-identical token files
        TokenCorpus b = TokenCorpus.open(options(corpus).withCacheDir(tmp.resolve("cache2")), new ByteTokenizer());
        for (String f : List.of("train.tok", "val.tok", "val.docs")) {
            assertThat(Files.readAllBytes(b.directory().resolve(f))).isEqualTo(Files.readAllBytes(a.directory().resolve(f)));
        }
        // another split seed gives another split
        TokenCorpus c = TokenCorpus.open(options(corpus).withSplitSeed(1), new ByteTokenizer());
        assertThat(stream(c, Split.VALIDATION)).isNotEqualTo(val);

        // adding a file moves no existing document between splits
        Files.writeString(corpus.resolve("prose/zz-new.txt"), "<docnew> more\n");
        TokenCorpus d = TokenCorpus.open(options(corpus), new ByteTokenizer());
        String val2 = stream(d, Split.VALIDATION);
        for (int i = 0; i < 60; i++) {
            String marker = "<doc%03d>".formatted(i);
            assertThat(val2.contains(marker)).isEqualTo(val.contains(marker));
        }
    }

    @Test
    void domainStatisticsCountDocumentsBytesAndTokens() throws IOException {
        Path corpus = writeDocs(tmp.resolve("c"), 40, "prose", "code");
        TokenCorpus c = TokenCorpus.open(options(corpus), new ByteTokenizer());
        Map<String, Long> docs = new java.util.TreeMap<>(), bytes = new java.util.TreeMap<>(), fileBytes = new java.util.TreeMap<>();
        for (String domain : List.of("prose", "code")) {
            try (var s = Files.list(corpus.resolve(domain))) {
                for (Path p : s.toList()) fileBytes.merge(domain, Files.size(p), Long::sum);
            }
        }
        for (List<DomainStats> split : List.of(c.stats().train(), c.stats().validation())) {
            for (DomainStats d : split) {
                docs.merge(d.domain(), d.documents(), Long::sum);
                // byte tokenizer: tokens = bytes + one EOS per document
                assertThat(d.tokens()).isEqualTo(d.bytes() + d.documents());
                bytes.merge(d.domain(), d.bytes(), Long::sum);
            }
        }
        assertThat(bytes).isEqualTo(fileBytes);
        assertThat(docs).isEqualTo(Map.of("code", 20L, "prose", 20L));
        assertThat(CorpusStats.total(c.stats().train()).tokens()).isEqualTo(c.trainTokens());
        String table = c.stats().table();
        assertThat(table.lines()).hasSize(1 + 2 * 3); // header, then code, prose, total per split
        assertThat(table.lines().skip(1).map(l -> l.split(" +")[0] + " " + l.split(" +")[1]))
                .containsExactly("train code", "train prose", "train total", "validation code", "validation prose",
                        "validation total");
        assertThat(CorpusStats.total(c.stats().validation()).tokens()).isEqualTo(c.validationTokens());
    }

    @Test
    void cacheIsReusedAndRebuiltWhenTokenizerSourcesOrSizesChange() throws IOException {
        Path corpus = writeDocs(tmp.resolve("c"), 30, "a");
        CorpusOptions o = options(corpus);
        TokenCorpus first = TokenCorpus.open(o, new ByteTokenizer());
        assertThat(first.built()).isTrue();
        TokenCorpus again = TokenCorpus.open(o, new ByteTokenizer());
        assertThat(again.built()).isFalse();
        assertThat(again.directory()).isEqualTo(first.directory());

        // sizes
        TokenCorpus docChars = TokenCorpus.open(o.withDocChars(300), new ByteTokenizer());
        assertThat(docChars.built()).isTrue();
        assertThat(docChars.directory()).isNotEqualTo(first.directory());
        assertThat(TokenCorpus.open(o.withValFraction(0.5), new ByteTokenizer()).built()).isTrue();
        // tokenizer: without EOS, other ids
        TokenCorpus noEos = TokenCorpus.open(o, new ByteTokenizer(false));
        assertThat(noEos.built()).isTrue();
        assertThat(noEos.meta().eos()).isEqualTo(-1);
        TokenCorpus cp = TokenCorpus.open(o, new CodepointTokenizer());
        assertThat(cp.built()).isTrue();
        assertThat(cp.meta().tokenBytes()).isEqualTo(4);
        assertThat(first.meta().tokenBytes()).isEqualTo(2);
        // content: same size, new modification time
        Path f = corpus.resolve("a/f000.txt");
        Files.writeString(f, Files.readString(f).replace("text", "TEXT"));
        Files.setLastModifiedTime(f, FileTime.fromMillis(Files.getLastModifiedTime(f).toMillis() + 5000));
        TokenCorpus changed = TokenCorpus.open(o, new ByteTokenizer());
        assertThat(changed.built()).isTrue();
        assertThat(stream(changed, Split.TRAIN) + stream(changed, Split.VALIDATION)).contains("TEXT");
        assertThat(TokenCorpus.open(o, new ByteTokenizer()).built()).isFalse();

        // a temporary directory abandoned by a killed build more than a day ago is removed by the next build
        Path abandoned = Files.createDirectories(tmp.resolve("cache").resolve(
                changed.directory().getFileName() + ".tmp-123"));
        Files.writeString(abandoned.resolve("train.tok"), "partial");
        Files.setLastModifiedTime(abandoned, FileTime.fromMillis(System.currentTimeMillis() - 2L * 24 * 3600 * 1000));

        // a damaged cache (truncated token file) is rebuilt, not trusted
        Path train = changed.directory().resolve("train.tok");
        byte[] bytes = Files.readAllBytes(train);
        Files.write(train, java.util.Arrays.copyOf(bytes, bytes.length - 2));
        TokenCorpus repaired = TokenCorpus.open(o, new ByteTokenizer());
        assertThat(repaired.built()).isTrue();
        assertThat(Files.readAllBytes(repaired.directory().resolve("train.tok"))).isEqualTo(bytes);
        // no temporary directories are left behind
        try (var s = Files.list(tmp.resolve("cache"))) {
            assertThat(s.map(p -> p.getFileName().toString()).filter(n -> n.contains(".tmp-")).toList()).isEmpty();
        }
    }

    @Test
    void concurrentOpensOfOneCorpusAgreeAndLeaveNoTemporaryFiles() throws Exception {
        Path corpus = writeDocs(tmp.resolve("c"), 40, "a", "b");
        CorpusOptions o = options(corpus);
        var start = new java.util.concurrent.CountDownLatch(1);
        try (var pool = java.util.concurrent.Executors.newFixedThreadPool(3)) {
            List<java.util.concurrent.Future<TokenCorpus>> fs = new ArrayList<>();
            for (int i = 0; i < 3; i++) {
                fs.add(pool.submit(() -> {
                    start.await();
                    return TokenCorpus.open(o, new ByteTokenizer());
                }));
            }
            start.countDown();
            String train = null;
            for (var f : fs) {
                TokenCorpus c = f.get();
                String t = stream(c, Split.TRAIN);
                if (train == null) train = t;
                assertThat(t).isEqualTo(train);
            }
        }
        try (var s = Files.list(tmp.resolve("cache"))) {
            assertThat(s.toList()).hasSize(1);
        }
    }

    @Test
    void binaryFilesAreSkippedWithAReason() throws IOException {
        Path corpus = writeDocs(tmp.resolve("c"), 30, "a");
        Files.write(corpus.resolve("a/image.png"), new byte[]{(byte) 0x89, 'P', 'N', 'G', 0, 0, 0, 13, 1, 2});
        Files.write(corpus.resolve("a/latin1.txt"), "caf\u00e9 cr\u00e8me".getBytes(StandardCharsets.ISO_8859_1));
        TokenCorpus c = TokenCorpus.open(options(corpus), new ByteTokenizer());
        assertThat(c.stats().skipped()).hasSize(2);
        assertThat(c.stats().skipped().get(0)).startsWith("c/a/image.png: binary");
        assertThat(c.stats().skipped().get(1)).startsWith("c/a/latin1.txt: not UTF-8");
        assertThat(stream(c, Split.TRAIN) + stream(c, Split.VALIDATION)).doesNotContain("PNG").doesNotContain("cr");
    }

    @Test
    void clearErrors() throws IOException {
        ByteTokenizer tok = new ByteTokenizer();
        CorpusOptions base = options(tmp);
        // a path or glob that matches nothing
        assertThatThrownBy(() -> TokenCorpus.open(base.withSources(tmp.resolve("missing").toString()), tok))
                .isInstanceOf(CorpusException.class).hasMessageContaining("missing").hasMessageContaining("no such file");
        Files.createDirectories(tmp.resolve("empty"));
        assertThatThrownBy(() -> TokenCorpus.open(base.withSources(tmp.resolve("empty").toString()), tok))
                .isInstanceOf(CorpusException.class).hasMessageContaining("matches no file");
        assertThatThrownBy(() -> TokenCorpus.open(base.withSources(tmp + "/empty/*.txt"), tok))
                .isInstanceOf(CorpusException.class).hasMessageContaining("matches no file");
        // files with no text, or only binaries: empty corpus
        Files.writeString(tmp.resolve("empty/blank.txt"), "  \n\n\t\n");
        Files.write(tmp.resolve("empty/x.bin"), new byte[100]);
        assertThatThrownBy(() -> TokenCorpus.open(base.withSources(tmp.resolve("empty").toString()), tok))
                .isInstanceOf(CorpusException.class).hasMessageContaining("corpus is empty")
                .hasMessageContaining("x.bin: binary");
        // one small document: the validation split ends up empty
        Files.writeString(tmp.resolve("one.txt"), "a single short document\n");
        assertThatThrownBy(() -> TokenCorpus.open(base.withSources(tmp.resolve("one.txt").toString())
                .withValFraction(0.01), tok))
                .isInstanceOf(CorpusException.class).hasMessageContaining("validation split is empty")
                .hasMessageContaining("valFraction");
        // bad options
        assertThatThrownBy(() -> base.withValFraction(1.0)).isInstanceOf(CorpusException.class)
                .hasMessageContaining("valFraction");
        assertThatThrownBy(() -> CorpusOptions.of(List.of())).isInstanceOf(CorpusException.class)
                .hasMessageContaining("no sources");
        // nothing half-built was left in the cache dir
        try (var s = Files.list(tmp.resolve("cache"))) {
            assertThat(s.toList()).isEmpty();
        } catch (java.nio.file.NoSuchFileException e) {
            // never created: fine
        }
    }

    @Test
    void unreadableFileIsAnError() throws IOException {
        assumeFalse("root".equals(System.getProperty("user.name")), "root reads any file");
        Path f = tmp.resolve("secret.txt");
        Files.writeString(f, "text\n");
        f.toFile().setReadable(false);
        assertThatThrownBy(() -> TokenCorpus.open(options(f), new ByteTokenizer()))
                .isInstanceOf(CorpusException.class).hasMessageContaining("secret.txt").hasMessageContaining("not readable");
    }

    @Test
    void progressIsReportedUpToTheTotal() throws IOException {
        Path corpus = writeDocs(tmp.resolve("c"), 30, "a");
        List<long[]> calls = new ArrayList<>();
        Set<String> names = new HashSet<>();
        TokenCorpus c = TokenCorpus.open(options(corpus), new ByteTokenizer(), (read, total, tokens, source) -> {
            calls.add(new long[]{read, total, tokens});
            names.add(source);
        });
        assertThat(calls).hasSize(30); // once per file at least; these are < 1 MiB each
        long total = 0;
        try (var s = Files.walk(corpus)) {
            for (Path p : s.filter(Files::isRegularFile).toList()) total += Files.size(p);
        }
        for (int i = 1; i < calls.size(); i++) {
            assertThat(calls.get(i)[0]).isGreaterThanOrEqualTo(calls.get(i - 1)[0]);
            assertThat(calls.get(i)[2]).isGreaterThanOrEqualTo(calls.get(i - 1)[2]);
        }
        long[] last = calls.getLast();
        assertThat(last[0]).isEqualTo(total);
        assertThat(last[1]).isEqualTo(total);
        assertThat(last[2]).isEqualTo(c.trainTokens() + c.validationTokens());
        assertThat(names).hasSize(30);
    }

    @Test
    void bundledCorpusHasThreeBalancedPublicDomainOrOwnDomains() throws IOException {
        CorpusOptions o = CorpusOptions.of(List.of("bundled")).withCacheDir(tmp.resolve("cache"));
        TokenCorpus c = TokenCorpus.open(o, new ByteTokenizer());
        long all = CorpusStats.total(c.stats().train()).bytes() + CorpusStats.total(c.stats().validation()).bytes();
        // bytes = the decompressed files minus their form-feed lines ("\f\n", 2 bytes)
        long expected = 0;
        for (TextSource s : Sources.bundled(null)) {
            byte[] text;
            try (InputStream in = new GZIPInputStream(s.opener().open())) {
                text = in.readAllBytes();
            }
            String str = new String(text, StandardCharsets.UTF_8);
            assertThat(str).as(s.name()).doesNotContainIgnoringCase("Project Gutenberg"); // trademark removed
            expected += text.length - 2L * str.lines().filter(l -> l.equals("\f")).count();
        }
        assertThat(all).isEqualTo(expected);
        assertThat(all).isBetween(2_000_000L, 3_000_000L);
        for (List<DomainStats> split : List.of(c.stats().train(), c.stats().validation())) {
            assertThat(split).extracting(DomainStats::domain).containsExactly("code", "drama", "novel");
        }
        for (DomainStats d : c.stats().train()) {
            assertThat((double) d.bytes() / all).as(d.domain()).isBetween(0.2, 0.5);
        }
        long valDocs = CorpusStats.total(c.stats().validation()).documents();
        long trainDocs = CorpusStats.total(c.stats().train()).documents();
        assertThat((double) valDocs / (valDocs + trainDocs)).isBetween(0.05, 0.15);
    }
}
