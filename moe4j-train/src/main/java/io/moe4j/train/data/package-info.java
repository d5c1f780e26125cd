/**
 * The training data pipeline: text in, token batches out.
 *
 * <pre>
 *   source specs ──Sources──▶ TextSource files (name, domain) ──DocumentSplitter──▶ documents (≤ ~2·docChars)
 *     ──Split.of(hash of "name#k")──▶ train | validation ──Tokenizer.encode + EOS──▶ token cache (memory-mapped)
 *     ──TokenBatchSource──▶ random training windows (counter-based RNG) · fixed validation windows with bytes/domains
 * </pre>
 *
 * <p>Entry point: {@code TokenCorpus.open(CorpusOptions.of(List.of("bundled")), tokenizer, progress).batches(seed)}
 * gives the trainer its {@link io.moe4j.train.data.BatchSource}. "bundled" is the corpus shipped in the jar
 * ({@code resources/corpus/}, see its SOURCES.md); {@code dev/real-corpus} builds a larger two-domain one.
 *
 * <p>Design: documents are the unit of the split (a document never lands in both), the split depends on the
 * document id only, and everything derived from the corpus is cached on disk under a key of all its inputs, so a
 * run reuses the tokens of the previous one and a resumed run sees bit-identical batches. Memory stays one
 * document plus buffers however large the corpus.
 *
 * <p>Non-goals: shuffling documents (random window offsets already decorrelate batches), sequence packing with
 * attention masks (windows may span an EOS, as in GPT-2 training), deduplication, network sources.
 */
package io.moe4j.train.data;
