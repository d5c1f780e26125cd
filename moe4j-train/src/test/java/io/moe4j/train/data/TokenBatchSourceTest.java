package io.moe4j.train.data;

import io.moe4j.train.data.BatchSource.ValidationSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class TokenBatchSourceTest {

    @TempDir
    Path tmp;

    private TokenCorpus corpus(io.moe4j.tokenizer.Tokenizer tok) throws IOException {
        Path dir = TokenCorpusTest.writeDocs(tmp.resolve("c"), 80, "prose", "code", "verse");
        return TokenCorpus.open(CorpusOptions.of(List.of(dir.toString())).withCacheDir(tmp.resolve("cache"))
                .withValFraction(0.3), tok);
    }

    private static int[] all(TokenCorpus c, Split s) {
        int[] ids = new int[Math.toIntExact(s == Split.TRAIN ? c.trainTokens() : c.validationTokens())];
        c.read(s, 0, ids, 0, ids.length);
        return ids;
    }

    @Test
    void seekingToAPositionReplaysTheSameBatches() throws IOException {
        TokenCorpus c = corpus(new ByteTokenizer());
        int batch = 3, seq = 16;
        TokenBatchSource a = c.batches(42);
        List<int[]> first = new ArrayList<>();
        long[] positions = new long[6];
        for (int i = 0; i < 6; i++) {
            positions[i] = a.position();
            int[] t = new int[batch * (seq + 1)];
            a.nextTrain(t, batch, seq);
            first.add(t);
        }
        // a fresh source (as after a restart) seeked to a saved position continues identically
        TokenBatchSource b = c.batches(42);
        b.seek(positions[3]);
        for (int i = 3; i < 6; i++) {
            int[] t = new int[batch * (seq + 1)];
            b.nextTrain(t, batch, seq);
            assertThat(t).isEqualTo(first.get(i));
        }
        assertThat(b.position()).isEqualTo(a.position()).isEqualTo(6L * batch);
        // the position counts rows, so another batch size sees the same rows
        TokenBatchSource one = c.batches(42);
        int[] row = new int[seq + 1];
        for (int r = 0; r < 6 * batch; r++) {
            one.nextTrain(row, 1, seq);
            int[] expected = Arrays.copyOfRange(first.get(r / batch), (r % batch) * (seq + 1), (r % batch + 1) * (seq + 1));
            assertThat(row).isEqualTo(expected);
        }
        // another seed, other windows
        int[] other = new int[batch * (seq + 1)];
        c.batches(43).nextTrain(other, batch, seq);
        assertThat(other).isNotEqualTo(first.getFirst());
    }

    @Test
    void trainingRowsAreWindowsOfTheTrainStreamAtSpreadOffsets() throws IOException {
        TokenCorpus c = corpus(new CodepointTokenizer()); // int32 cache
        int[] stream = all(c, Split.TRAIN);
        int seq = 24, batch = 50;
        TokenBatchSource s = c.batches(7);
        int[] t = new int[batch * (seq + 1)];
        long minOff = Long.MAX_VALUE, maxOff = -1;
        for (int step = 0; step < 20; step++) {
            long pos = s.position();
            s.nextTrain(t, batch, seq);
            for (int b = 0; b < batch; b++) {
                long off = s.trainOffset(pos + b, seq);
                assertThat(off).isBetween(0L, (long) stream.length - seq - 1);
                assertThat(Arrays.copyOfRange(t, b * (seq + 1), (b + 1) * (seq + 1)))
                        .isEqualTo(Arrays.copyOfRange(stream, (int) off, (int) off + seq + 1));
                minOff = Math.min(minOff, off);
                maxOff = Math.max(maxOff, off);
            }
        }
        // 1000 draws cover the stream from end to end
        assertThat(minOff).isLessThan(stream.length / 20);
        assertThat(maxOff).isGreaterThan(stream.length - seq - stream.length / 20);
        // the last window ends exactly at the stream's end when drawn: bounds are reachable, never exceeded
        assertThatThrownBy(() -> c.batches(0).nextTrain(new int[stream.length + 1], 1, stream.length))
                .isInstanceOf(CorpusException.class).hasMessageContaining("seqLen");
        int[] whole = new int[stream.length];
        c.batches(0).nextTrain(whole, 1, stream.length - 1);
        assertThat(whole).isEqualTo(stream);
    }

    @Test
    void validationBytesAreExactAndRowsCarryTheirDomain() throws IOException {
        // code points are 1–4 UTF-8 bytes, so token and byte counts differ
        TokenCorpus c = corpus(new CodepointTokenizer());
        int[] val = all(c, Split.VALIDATION);
        // independent expectation: rebuild the validation stream from the files and the documented split rule
        List<Integer> cps = new ArrayList<>();
        List<String> domainOf = new ArrayList<>();
        long textBytes = 0;
        List<String> names = new ArrayList<>(); // the pipeline reads a directory in sorted path order
        for (int i = 0; i < 80; i++) names.add("c/%s/f%03d.txt".formatted(List.of("prose", "code", "verse").get(i % 3), i));
        names.sort(null);
        for (String name : names) {
            String domain = name.split("/")[1];
            if (Split.of(name + "#0", 0.3, 0) != Split.VALIDATION) continue;
            String text = Files.readString(tmp.resolve(name));
            textBytes += text.getBytes(StandardCharsets.UTF_8).length;
            text.codePoints().forEach(cp -> {
                cps.add(cp);
                domainOf.add(domain);
            });
            cps.add(CodepointTokenizer.EOS);
            domainOf.add(domain);
        }
        assertThat(val).isEqualTo(cps.stream().mapToInt(Integer::intValue).toArray());

        // seqLen 1, batch 1: every token but the first is a target: bytes = all text bytes − first char's bytes
        TokenBatchSource s = c.batches(0);
        ValidationSet all = s.validation(1, 1, Integer.MAX_VALUE);
        assertThat(all.targetTokens()).isEqualTo(val.length - 1);
        String first = new String(Character.toChars(val[0]));
        assertThat(all.targetBytes()).isEqualTo(textBytes - first.getBytes(StandardCharsets.UTF_8).length);
        for (int r = 0; r < all.batches().size(); r++) {
            assertThat(all.rowDomains().get(r)).containsExactly(domainOf.get(r + 1));
        }

        // a general shape: bytes of exactly the target tokens, domain of the document with most targets
        int batch = 4, seq = 10, maxBatches = 5;
        ValidationSet v = s.validation(batch, seq, maxBatches);
        assertThat(v.batches()).hasSize(maxBatches);
        assertThat(v.targetTokens()).isEqualTo((long) maxBatches * batch * seq);
        long bytes = 0;
        // rows spread evenly over all seq-token slots of the stream, not taken from its start
        long slots = (val.length - 1) / seq, rows = (long) maxBatches * batch;
        assertThat(slots).isGreaterThan(2 * rows); // else the spreading would not be tested
        int lastStart = -1;
        for (int bi = 0; bi < maxBatches; bi++) {
            int[] t = v.batches().get(bi);
            for (int b = 0; b < batch; b++) {
                int start = (int) ((bi * batch + b) * slots / rows) * seq;
                lastStart = start;
                assertThat(Arrays.copyOfRange(t, b * (seq + 1), (b + 1) * (seq + 1)))
                        .isEqualTo(Arrays.copyOfRange(val, start, start + seq + 1));
                java.util.Map<String, Integer> count = new java.util.LinkedHashMap<>();
                for (int j = start + 1; j <= start + seq; j++) {
                    if (val[j] != CodepointTokenizer.EOS) {
                        bytes += new String(Character.toChars(val[j])).getBytes(StandardCharsets.UTF_8).length;
                    }
                    count.merge(domainOf.get(j), 1, Integer::sum);
                }
                String majority = count.entrySet().stream().max(java.util.Map.Entry.comparingByValue())
                        .orElseThrow().getKey();
                if (count.size() == 1 || count.values().stream().distinct().count() > 1) {
                    assertThat(v.rowDomains().get(bi)[b]).isEqualTo(majority);
                }
            }
        }
        assertThat(v.targetBytes()).isEqualTo(bytes);
        assertThat(lastStart).isGreaterThanOrEqualTo((int) ((slots * (rows - 1) / rows) * seq));
        // fixed: the same on every call and for any training position
        s.nextTrain(new int[3 * 11], 3, 10);
        ValidationSet again = s.validation(batch, seq, maxBatches);
        assertThat(again.targetBytes()).isEqualTo(v.targetBytes());
        for (int i = 0; i < maxBatches; i++) {
            assertThat(again.batches().get(i)).isEqualTo(v.batches().get(i));
            assertThat(again.rowDomains().get(i)).isEqualTo(v.rowDomains().get(i));
        }
    }

    @Test
    void spreadSlotIsExactEvenWhereTheProductOverflows() {
        assertThat(TokenBatchSource.spreadSlot(0, 7, 100)).isZero();
        assertThat(TokenBatchSource.spreadSlot(6, 7, 100)).isEqualTo(600 / 7);
        assertThat(TokenBatchSource.spreadSlot(5, 5, 5)).isEqualTo(5);
        long big = 1L << 40;
        assertThat(TokenBatchSource.spreadSlot(big - 1, big, 3 * big)).isEqualTo(3 * (big - 1));
    }

    @Test
    void validationTooSmallForOneBatchIsAClearError() throws IOException {
        TokenCorpus c = corpus(new ByteTokenizer());
        long n = c.validationTokens();
        assertThatThrownBy(() -> c.batches(0).validation(1, (int) n, 1))
                .isInstanceOf(CorpusException.class).hasMessageContaining("validation split has " + n + " tokens");
        assertThat(c.batches(0).validation(1, (int) n - 1, 1).batches()).hasSize(1);
    }

    @Test
    void badShapesAreRejected() throws IOException {
        TokenCorpus c = corpus(new ByteTokenizer());
        assertThatThrownBy(() -> c.batches(0).nextTrain(new int[10], 2, 8))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("batch × (seqLen + 1) = 18");
        assertThatThrownBy(() -> c.batches(0).seek(-1)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> c.batches(0).validation(0, 8, 1)).isInstanceOf(IllegalArgumentException.class);
    }
}
