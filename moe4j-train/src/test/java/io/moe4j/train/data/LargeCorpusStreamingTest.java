package io.moe4j.train.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedWriter;
import java.io.IOException;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.zip.GZIPOutputStream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A corpus larger than the heap streams: 50 MB of text (one 45 MB file, a gzip file, small files) is tokenised
 * and sampled by a child JVM limited to a 40 MB heap — holding the big file in memory would need more than that.
 */
class LargeCorpusStreamingTest {

    @TempDir
    Path tmp;

    private static final String[] WORDS = {"the", "expert", "router", "token", "gate", "mixture", "of", "sparse",
            "layer", "and", "to", "café", "naïve", "日本", "weights", "loss", "batch"};

    private static long write(Writer w, SplittableRandom rnd, long chars) throws IOException {
        long n = 0;
        StringBuilder line = new StringBuilder();
        while (n < chars) {
            line.setLength(0);
            int words = 5 + rnd.nextInt(12);
            for (int i = 0; i < words; i++) line.append(i == 0 ? "" : " ").append(WORDS[rnd.nextInt(WORDS.length)]);
            line.append(rnd.nextInt(6) == 0 ? ".\n\n" : ".\n");
            w.write(line.toString());
            n += line.length();
        }
        return n;
    }

    @Test
    void fiftyMegabytesStreamThroughAFortyMegabyteHeap() throws Exception {
        Path corpus = Files.createDirectories(tmp.resolve("big"));
        SplittableRandom rnd = new SplittableRandom(3);
        try (Writer w = Files.newBufferedWriter(corpus.resolve("big.txt"))) {
            write(w, rnd, 45L << 20);
        }
        try (Writer w = new BufferedWriter(new OutputStreamWriter(new GZIPOutputStream(
                Files.newOutputStream(corpus.resolve("more.txt.gz")), 1 << 16), StandardCharsets.UTF_8))) {
            write(w, rnd, 4L << 20);
        }
        for (int i = 0; i < 20; i++) {
            try (Writer w = Files.newBufferedWriter(corpus.resolve("small%02d.txt".formatted(i)))) {
                write(w, rnd, 50_000);
            }
        }
        long textBytes = Files.size(corpus.resolve("big.txt"));
        for (int i = 0; i < 20; i++) textBytes += Files.size(corpus.resolve("small%02d.txt".formatted(i)));
        try (var in = new java.util.zip.GZIPInputStream(Files.newInputStream(corpus.resolve("more.txt.gz")))) {
            textBytes += in.transferTo(java.io.OutputStream.nullOutputStream());
        }
        assertThat(textBytes).isGreaterThan(50_000_000L);

        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx40m", "-XX:+UseSerialGC", "-cp", System.getProperty("java.class.path"),
                StreamingMain.class.getName(), corpus.toString(), tmp.resolve("cache").toString()));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(120, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).as(out).isZero();
        String line = out.lines().filter(l -> l.startsWith("tokens ")).findFirst().orElseThrow(() -> new AssertionError(out));
        String[] f = line.split(" ");
        long train = Long.parseLong(f[1]), val = Long.parseLong(f[2]), docs = Long.parseLong(f[4]);
        long bytes = Long.parseLong(f[6]), reports = Long.parseLong(f[8]);
        // byte tokenizer: every byte of text is a token, plus one EOS per document
        assertThat(bytes).isEqualTo(textBytes);
        assertThat(train + val).isEqualTo(textBytes + docs);
        assertThat(docs).isGreaterThan(50_000_000L / (2 * CorpusOptions.DEFAULT_DOC_CHARS)); // the big file was cut
        assertThat(val).isBetween((train + val) / 40, (train + val) / 10);
        assertThat(reports).isGreaterThanOrEqualTo(45); // ~ once per MiB
        assertThat(Long.parseLong(f[10])).isEqualTo(50);
    }
}
