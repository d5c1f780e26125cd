package io.moe4j.train.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.tuple;

class SourcesTest {

    @TempDir
    Path tmp;

    private Path touch(String rel) throws IOException {
        Path p = tmp.resolve(rel);
        Files.createDirectories(p.getParent());
        Files.writeString(p, rel + "\n");
        return p;
    }

    @Test
    void directoriesGlobsFilesAndDomainLabels() throws IOException {
        touch("corpus/bible/02-exodus.txt");
        touch("corpus/bible/01-genesis.txt");
        touch("corpus/code/java/util/List.java");
        touch("corpus/README.txt");
        touch("corpus/.git/config");
        touch("corpus/code/.hidden.java");
        touch("notes/a.md");
        touch("notes/deep/b.md");
        touch("notes/c.txt");

        assertThat(Sources.resolve(List.of(tmp.resolve("corpus").toString())))
                .extracting(TextSource::name, TextSource::domain)
                .containsExactly(tuple("corpus/README.txt", null),
                        tuple("corpus/bible/01-genesis.txt", "bible"),
                        tuple("corpus/bible/02-exodus.txt", "bible"),
                        tuple("corpus/code/java/util/List.java", "code"));

        assertThat(Sources.resolve(List.of("notes=" + tmp + "/notes/**.md")))
                .extracting(TextSource::name, TextSource::domain)
                .containsExactly(tuple("a.md", "notes"), tuple("deep/b.md", "notes"));
        assertThat(Sources.resolve(List.of(tmp + "/notes/*.md"))).extracting(TextSource::name).containsExactly("a.md");
        assertThat(Sources.resolve(List.of(tmp + "/notes/**/*.md")))
                .extracting(TextSource::name).containsExactly("a.md", "deep/b.md");

        // a plain file; the same name twice is made unique (document ids must not collide)
        TextSource f = Sources.resolve(List.of("prose=" + tmp.resolve("notes/c.txt"))).getFirst();
        assertThat(f.name()).isEqualTo("c.txt");
        assertThat(f.domain()).isEqualTo("prose");
        assertThat(f.size()).isEqualTo(Files.size(tmp.resolve("notes/c.txt")));
        assertThat(Sources.resolve(List.of(tmp + "/notes/c.txt", tmp + "/notes/c.txt")))
                .extracting(TextSource::name).containsExactly("c.txt", "c.txt~2");
    }

    @Test
    void bundledCorpusIsListedWithDomains() {
        assertThat(Sources.resolve(List.of("bundled")))
                .extracting(TextSource::name, TextSource::domain, TextSource::gzip)
                .containsExactly(tuple("bundled/drama-shakespeare.txt", "drama", true),
                        tuple("bundled/novel-austen-pride-and-prejudice.txt", "novel", true),
                        tuple("bundled/code-moe4j-java.txt", "code", true));
        long compressed = Sources.bundled(null).stream().mapToLong(TextSource::size).sum();
        assertThat(compressed).isLessThan(3_000_000L);
    }

    @Test
    void specsThatMatchNothingAreErrorsNamingTheSpec() {
        assertThatThrownBy(() -> Sources.resolve(List.of(tmp + "/nope.txt")))
                .isInstanceOf(CorpusException.class).hasMessageContaining("nope.txt");
        assertThatThrownBy(() -> Sources.resolve(List.of(tmp + "/*.nothing")))
                .isInstanceOf(CorpusException.class).hasMessageContaining("*.nothing").hasMessageContaining("matches no file");
        assertThatThrownBy(() -> Sources.resolve(List.of(tmp + "/missingdir/*.txt")))
                .isInstanceOf(CorpusException.class).hasMessageContaining("missingdir");
        assertThatThrownBy(() -> Sources.resolve(List.of(" ")))
                .isInstanceOf(CorpusException.class).hasMessageContaining("empty source");
    }
}
