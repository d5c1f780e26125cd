package io.moe4j.train.data;

import java.util.List;

/**
 * {@code meta.json} of a token cache directory: what the cache was built from and what it holds. Written last
 * (inside the temporary directory that is then renamed), so a cache with a readable meta is complete.
 *
 * @param format          layout version of the cache files
 * @param key             the cache key (hash of everything below the line)
 * @param tokenizer       {@link TokenizerFingerprint} of the tokenizer
 * @param vocabSize       tokenizer vocabulary size
 * @param eos             end-of-text id written after every document, or −1 (tokenizer without one)
 * @param tokenBytes      bytes per stored id: 2 (uint16, vocabulary ≤ 65 536) or 4 (int32)
 * @param valFraction     validation share of documents
 * @param docChars        target document size
 * @param splitSeed       seed of the split hash
 * @param sources         the sources' cache-key lines
 * @param trainTokens     ids in train.tok
 * @param valTokens       ids in val.tok
 * @param valDocuments    entries in val.docs
 * @param domains         domain labels; val.docs refers to them by index
 * @param stats           per-domain statistics and skipped files
 */
public record CacheMeta(int format, String key, String tokenizer, int vocabSize, int eos, int tokenBytes,
                        double valFraction, int docChars, long splitSeed, List<String> sources,
                        long trainTokens, long valTokens, long valDocuments, List<String> domains,
                        CorpusStats stats) {

    public static final int FORMAT = 1;
}
