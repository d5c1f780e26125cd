package io.moe4j.train.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class DocumentsTest {

    @TempDir
    Path tmp;

    @Test
    void forEachStreamsDocumentsWithIdsSplitsAndDomains() throws IOException {
        Path dir = TokenCorpusTest.writeDocs(tmp.resolve("c"), 12, "prose", "code");
        Files.writeString(dir.resolve("code/two.txt"), "first\n\f\nsecond\n");
        List<Documents.Document> docs = new ArrayList<>();
        CorpusOptions o = CorpusOptions.of(List.of(dir.toString())).withCacheDir(tmp.resolve("cache")).withValFraction(0.5);
        Documents.forEach(o, docs::add);
        assertThat(docs).hasSize(14);
        assertThat(docs).filteredOn(d -> d.source().name().equals("c/code/two.txt"))
                .extracting(Documents.Document::id, Documents.Document::text, Documents.Document::domain)
                .containsExactly(org.assertj.core.groups.Tuple.tuple("c/code/two.txt#0", "first\n", "code"),
                        org.assertj.core.groups.Tuple.tuple("c/code/two.txt#1", "second\n", "code"));
        for (Documents.Document d : docs) assertThat(d.split()).isEqualTo(Split.of(d.id(), 0.5, 0));
        assertThat(docs).extracting(Documents.Document::split).contains(Split.TRAIN, Split.VALIDATION);
    }

    @Test
    void sniffAcceptsTextAndRejectsBinaryAndOtherEncodings() throws IOException {
        assertThat(sniff("plain ascii\twith\ftabs\r\n".getBytes(StandardCharsets.UTF_8))).isNull();
        // a multi-byte character cut by the 8 KiB window is still text
        byte[] cut = ("x".repeat(8191) + "é").getBytes(StandardCharsets.UTF_8);
        assertThat(sniff(cut)).isNull();
        assertThat(sniff(new byte[]{'a', 0, 'b'})).startsWith("binary (contains NUL");
        byte[] controls = new byte[200];
        Arrays.fill(controls, (byte) 'a');
        for (int i = 0; i < 10; i++) controls[i * 20] = 0x01;
        assertThat(sniff(controls)).startsWith("binary (10 control bytes");
        assertThat(sniff("café".getBytes(StandardCharsets.ISO_8859_1))).startsWith("not UTF-8 text");
        // the stream is left at its start
        InputStream in = new java.io.BufferedInputStream(new ByteArrayInputStream("hello".getBytes(StandardCharsets.UTF_8)));
        Documents.sniff(in);
        assertThat(new String(in.readAllBytes(), StandardCharsets.UTF_8)).isEqualTo("hello");
    }

    private static String sniff(byte[] b) throws IOException {
        return Documents.sniff(new java.io.BufferedInputStream(new ByteArrayInputStream(b)));
    }

    @Test
    void utf8LengthMatchesTheEncoder() {
        Random rnd = new Random(1);
        String[] pieces = {"a", "é", "日", "\uD83D\uDE42", "\uD800", "\uDC00", "\n"};
        for (int t = 0; t < 200; t++) {
            StringBuilder sb = new StringBuilder();
            for (int i = rnd.nextInt(50); i > 0; i--) sb.append(pieces[rnd.nextInt(pieces.length)]);
            String s = sb.toString();
            assertThat(Documents.utf8Length(s)).as(s).isEqualTo(s.getBytes(StandardCharsets.UTF_8).length);
        }
    }

    @Test
    void corruptGzipIsAClearError() throws IOException {
        Path f = tmp.resolve("bad.txt.gz");
        Files.write(f, new byte[]{0x1f, (byte) 0x8b, 8, 0, 1, 2, 3});
        CorpusOptions o = CorpusOptions.of(List.of(f.toString())).withCacheDir(tmp.resolve("cache"));
        assertThatThrownBy(() -> TokenCorpus.open(o, new ByteTokenizer()))
                .isInstanceOf(CorpusException.class).hasMessageContaining("bad.txt.gz");
    }

    @Test
    void aCacheDirectoryInsideTheCorpusIsNotReadAsText() throws IOException {
        Path dir = TokenCorpusTest.writeDocs(tmp.resolve("c"), 20, "a");
        CorpusOptions o = CorpusOptions.of(List.of(dir.toString())).withCacheDir(dir.resolve("cache")).withValFraction(0.3);
        assertThat(TokenCorpus.open(o, new ByteTokenizer()).built()).isTrue();
        assertThat(TokenCorpus.open(o, new ByteTokenizer()).built()).isFalse();
    }
}
