package io.moe4j.train.data;

import java.nio.file.Path;
import java.util.List;

/**
 * Child process of {@link LargeCorpusStreamingTest}: builds the token cache of a corpus directory with a small heap
 * (-Xmx given by the parent), draws batches, and prints what it saw.
 */
public final class StreamingMain {

    public static void main(String[] args) {
        CorpusOptions o = CorpusOptions.of(List.of(args[0])).withCacheDir(Path.of(args[1])).withValFraction(0.05);
        long[] reports = new long[1];
        TokenCorpus c = TokenCorpus.open(o, new ByteTokenizer(), (read, total, tokens, source) -> reports[0]++);
        TokenBatchSource s = c.batches(1);
        int[] t = new int[8 * 257];
        long sum = 0;
        for (int i = 0; i < 100; i++) {
            s.nextTrain(t, 8, 256);
            for (int x : t) sum += x;
        }
        var v = s.validation(8, 256, 50);
        long docs = CorpusStats.total(c.stats().train()).documents() + CorpusStats.total(c.stats().validation()).documents();
        long bytes = CorpusStats.total(c.stats().train()).bytes() + CorpusStats.total(c.stats().validation()).bytes();
        Runtime rt = Runtime.getRuntime();
        System.out.println("tokens " + c.trainTokens() + " " + c.validationTokens() + " docs " + docs + " bytes " + bytes
                + " reports " + reports[0] + " valBatches " + v.batches().size() + " checksum " + sum
                + " maxHeap " + rt.maxMemory());
    }
}
