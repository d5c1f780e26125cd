package io.moe4j.infer;

import io.moe4j.gguf.GgmlType;
import io.moe4j.gguf.GgufArray;
import io.moe4j.gguf.GgufWriter;
import io.moe4j.infer.tokenizer.GgufTokenizers;
import io.moe4j.tensor.DType;
import io.moe4j.tensor.quant.Quant;
import io.moe4j.tokenizer.BpeTrainer;
import io.moe4j.tokenizer.ByteLevelBpe;
import io.moe4j.tokenizer.GgufVocab;
import io.moe4j.tokenizer.PreTokenizer;
import io.moe4j.tokenizer.TokenType;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

/**
 * Random-weight GGUF models of named shapes, for benchmarks and tests without network: the speed of a model
 * depends on its shape and tensor types, not on what the weights learned. Written streaming (each tensor is
 * generated and quantized straight into the output by a {@link GgufWriter.TensorProducer}), so a 7 GB model
 * needs only one tensor's worth of memory.
 *
 * <p>Weights: uniform with the variance of N(0, 1/fan_in) (embeddings N(0,1)-sized), norm gains near 1, so
 * activations stay O(1) and routing spreads over the experts. Each tensor has its own generator seeded from
 * (seed, name): the same seed gives the same file. Matrices are stored in the requested type (Q8_0, Q4_0, F16, F32);
 * norms and the router stay F32, as llama-quantize leaves them.
 *
 * <p>Tokenizer: a real byte-level BPE (the {@code gpt2} GGUF model) trained by {@link BpeTrainer} on a generated
 * pseudo-English corpus to the shape's vocabulary size, with {@code <|endoftext|>} as BOS/EOS, ChatML
 * {@code <|im_start|>} / {@code <|im_end|>} and a ChatML chat template; if the corpus yields fewer merges the rest
 * are unused {@code <|extra_N|>} tokens. llama.cpp loads these files.
 */
public final class RandomModels {

    /**
     * A model shape. {@code arch}: {@code olmoe} (full-width Q/K norms) or {@code llama} (Mixtral-style).
     */
    public record Shape(String name, String arch, int layers, int dim, int heads, int kvHeads, int experts,
                        int expertsUsed, int expertFf, int vocab, int contextLength) {
        public Shape {
            if (dim % heads != 0 || heads % kvHeads != 0) throw new IllegalArgumentException(name + ": need dim % heads == 0 and heads % kvHeads == 0");
            if (expertsUsed < 1 || expertsUsed > experts) throw new IllegalArgumentException(name + ": need 1 <= expertsUsed <= experts");
            if (vocab < 300) throw new IllegalArgumentException(name + ": vocab must be >= 300 (256 bytes + specials + merges)");
        }

        public int headDim() { return dim / heads; }

        /** Parameters (embeddings, attention, experts, router, norms, output). */
        public long parameters() {
            long hd = headDim(), attn = (long) dim * hd * (2L * heads + 2L * kvHeads);
            long ffn = 3L * experts * expertFf * dim + (long) experts * dim;
            return 2L * vocab * dim + (long) layers * (attn + ffn + 2L * dim) + dim;
        }
    }

    /** OLMoE-1B-7B: 16 layers, d 2048, 16 heads, 64 experts of 1024, top-8, vocab 50304 (≈ 7.4 GB at Q8_0). */
    public static final Shape OLMOE_1B_7B = new Shape("olmoe-1b-7b", "olmoe", 16, 2048, 16, 16, 64, 8, 1024, 50304, 4096);
    /** Mixtral-like small: 8 layers, d 1024, 8 query / 2 KV heads, 8 experts of 3584, top-2, vocab 32000. */
    public static final Shape MIXTRAL_SMALL = new Shape("mixtral-small", "llama", 8, 1024, 8, 2, 8, 2, 3584, 32000, 4096);
    /** A few-MB model for tests: 2 layers, d 64, 4 query / 2 KV heads, 4 experts of 64, top-2, vocab 512. */
    public static final Shape TINY = new Shape("tiny", "llama", 2, 64, 4, 2, 4, 2, 64, 512, 512);

    /** {@link #TINY} as {@code olmoe} (full-width Q/K norms, as many KV heads as query heads): the OLMoE writer path. */
    public static final Shape TINY_OLMOE = new Shape("tiny-olmoe", "olmoe", 2, 64, 4, 4, 8, 2, 64, 512, 512);

    public static final List<Shape> SHAPES = List.of(OLMOE_1B_7B, MIXTRAL_SMALL, TINY, TINY_OLMOE);

    public static final String CHATML = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}"
            + "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    private RandomModels() {}

    /** The shape named {@code name} (case-insensitive), or an IllegalArgumentException listing the names. */
    public static Shape shape(String name) {
        for (Shape s : SHAPES) if (s.name().equalsIgnoreCase(name)) return s;
        throw new IllegalArgumentException("unknown model shape '" + name + "' (known: " + SHAPES.stream().map(Shape::name).toList() + ")");
    }

    /** Writes a random model of {@code shape} with matrices in {@code type} to {@code out} (atomically). */
    public static void write(Shape shape, GgmlType type, long seed, Path out) throws IOException {
        if (type != GgmlType.Q8_0 && type != GgmlType.Q4_0 && type != GgmlType.F16 && type != GgmlType.F32) {
            throw new IllegalArgumentException("type must be Q8_0, Q4_0, F16 or F32, got " + type);
        }
        Shape s = shape;
        String a = s.arch() + ".";
        GgufWriter g = new GgufWriter()
                .putString("general.architecture", s.arch())
                .putString("general.name", "moe4j-random-" + s.name() + "-" + type.name().toLowerCase(Locale.ROOT))
                .putU32("general.file_type", type == GgmlType.Q8_0 ? 7 : type == GgmlType.Q4_0 ? 2 : type == GgmlType.F16 ? 1 : 0)
                .putU32(a + "context_length", s.contextLength())
                .putU32(a + "embedding_length", s.dim())
                .putU32(a + "block_count", s.layers())
                .putU32(a + "feed_forward_length", s.expertFf())
                .putU32(a + "attention.head_count", s.heads())
                .putU32(a + "attention.head_count_kv", s.kvHeads())
                .putU32(a + "rope.dimension_count", s.headDim())
                .putF32(a + "rope.freq_base", 10000f)
                .putF32(a + "attention.layer_norm_rms_epsilon", 1e-5f)
                .putU32(a + "expert_count", s.experts())
                .putU32(a + "expert_used_count", s.expertsUsed());
        GgufTokenizers.put(g, vocabulary(s.vocab()));
        g.putString(GgufTokenizers.CHAT_TEMPLATE, CHATML);

        int d = s.dim(), hd = s.headDim(), q = s.heads() * hd, kv = s.kvHeads() * hd, e = s.experts(), f = s.expertFf();
        matrix(g, seed, "token_embd.weight", type, 1f, d, s.vocab());
        for (int l = 0; l < s.layers(); l++) {
            String b = "blk." + l + ".";
            norm(g, seed, b + "attn_norm.weight", d);
            matrix(g, seed, b + "attn_q.weight", type, scale(d), d, q);
            matrix(g, seed, b + "attn_k.weight", type, scale(d), d, kv);
            matrix(g, seed, b + "attn_v.weight", type, scale(d), d, kv);
            matrix(g, seed, b + "attn_output.weight", type, scale(q), q, d);
            if (s.arch().equals("olmoe")) {
                norm(g, seed, b + "attn_q_norm.weight", q);
                norm(g, seed, b + "attn_k_norm.weight", kv);
            }
            norm(g, seed, b + "ffn_norm.weight", d);
            matrix(g, seed, b + "ffn_gate_inp.weight", GgmlType.F32, scale(d), d, e);
            matrix(g, seed, b + "ffn_gate_exps.weight", type, scale(d), d, f, e);
            matrix(g, seed, b + "ffn_down_exps.weight", type, scale(f), f, d, e);
            matrix(g, seed, b + "ffn_up_exps.weight", type, scale(d), d, f, e);
        }
        norm(g, seed, "output_norm.weight", d);
        matrix(g, seed, "output.weight", type, scale(d), d, s.vocab());
        g.write(out);
    }

    private static float scale(int fanIn) { return (float) (1 / Math.sqrt(fanIn)); }

    /** A tensor of GGUF dims ne (rows of ne[0]) with uniform entries of standard deviation std, generated row-parallel. */
    private static void matrix(GgufWriter g, long seed, String name, GgmlType type, float std, long... ne) {
        int cols = (int) ne[0];
        long rows = 1;
        for (int i = 1; i < ne.length; i++) rows *= ne[i];
        long rowBytes = type.byteSize(cols);
        DType dt = type.dtype();
        float half = std * (float) Math.sqrt(3);   // U(-a, a) has std a/√3
        long nRows = rows;
        long base = seed * 0x9E3779B97F4A7C15L + name.hashCode();
        // dst is confined to the writer's thread: rows are generated and quantized in parallel into heap
        // buffers, a group of chunks at a time, then copied in on this thread
        g.addTensor(name, type, ne, dst -> {
            int chunk = 64, group = 4 * Runtime.getRuntime().availableProcessors();
            long chunks = (nRows + chunk - 1) / chunk;
            byte[][] bufs = new byte[group][];
            for (long c0 = 0; c0 < chunks; c0 += group) {
                long first = c0;
                int n = (int) Math.min(group, chunks - c0);
                IntStream.range(0, n).parallel().forEach(j -> {
                    long c = first + j, r0 = c * chunk, r1 = Math.min(nRows, r0 + chunk);
                    byte[] buf = bufs[j] != null && bufs[j].length == (r1 - r0) * rowBytes ? bufs[j] : new byte[(int) ((r1 - r0) * rowBytes)];
                    MemorySegment seg = MemorySegment.ofArray(buf);
                    float[] row = new float[cols];
                    SplittableRandom r = new SplittableRandom(base + 31L * c);
                    for (long i = r0; i < r1; i++) {
                        for (int k = 0; k < cols; k++) row[k] = (float) (r.nextDouble() * 2 - 1) * half;
                        Quant.quantize(dt, row, 0, seg, (i - r0) * rowBytes, cols);
                    }
                    bufs[j] = buf;
                });
                for (int j = 0; j < n; j++) {
                    MemorySegment.copy(MemorySegment.ofArray(bufs[j]), 0, dst, (c0 + j) * chunk * rowBytes, bufs[j].length);
                }
            }
        });
    }

    private static void norm(GgufWriter g, long seed, String name, int dim) {
        float[] v = new float[dim];
        SplittableRandom r = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + name.hashCode());
        for (int i = 0; i < dim; i++) v[i] = 1f + 0.1f * (float) (r.nextDouble() * 2 - 1);
        g.addTensor(name, GgmlType.F32, new long[]{dim}, dst -> MemorySegment.copy(v, 0, dst, java.lang.foreign.ValueLayout.JAVA_FLOAT, 0, dim));
    }

    /**
     * A byte-level BPE of exactly {@code size} tokens trained on {@link #corpus}: bytes, merges, then
     * {@code <|endoftext|>} (BOS and EOS), {@code <|im_start|>}, {@code <|im_end|>}, then unused fillers if the
     * corpus ran out of merges.
     */
    public static GgufVocab vocabulary(int size) {
        List<String> specials = List.of("<|endoftext|>", "<|im_start|>", "<|im_end|>");
        ByteLevelBpe bpe = new BpeTrainer().vocabSize(size).minFrequency(2).specials(specials)
                .bos("<|endoftext|>").eos("<|endoftext|>").addBos(false).preTokenizer(PreTokenizer.GPT2)
                .train(corpus(Math.max(2000, size * 2)));
        GgufVocab v = bpe.toGguf();
        if (v.tokens().size() >= size) return v;
        List<String> tokens = new ArrayList<>(v.tokens());
        TokenType[] types = Arrays.copyOf(v.types(), size);
        for (int i = tokens.size(); i < size; i++) {
            tokens.add("<|extra_" + i + "|>");
            types[i] = TokenType.UNUSED;
        }
        return new GgufVocab(v.model(), v.pre(), tokens, types, null, v.merges(), v.bos(), v.eos(), v.unk(), v.addBos(), v.addSpacePrefix());
    }

    /**
     * Pseudo-English text: a lexicon of {@code words} distinct words built from syllables, used in sentences with
     * Zipf-like frequencies (every word at least twice, so BPE can merge it whole), plus digits and punctuation.
     */
    static List<String> corpus(int words) {
        String[] onsets = {"", "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "th", "st", "pr", "tr", "ch", "sh", "gr", "bl"};
        String[] nuclei = {"a", "e", "i", "o", "u", "ea", "ou", "ai", "io", "y"};
        String[] codas = {"", "", "n", "r", "s", "t", "l", "nd", "st", "ng", "m", "ck"};
        SplittableRandom r = new SplittableRandom(42);
        List<String> lexicon = new ArrayList<>(words);
        java.util.Set<String> seen = new java.util.HashSet<>();
        while (lexicon.size() < words) {
            StringBuilder w = new StringBuilder();
            int syll = 1 + r.nextInt(4);
            for (int i = 0; i < syll; i++) w.append(onsets[r.nextInt(onsets.length)]).append(nuclei[r.nextInt(nuclei.length)]).append(codas[r.nextInt(codas.length)]);
            if (seen.add(w.toString())) lexicon.add(w.toString());
        }
        List<String> texts = new ArrayList<>();
        StringBuilder sb = new StringBuilder();
        String[] punct = {".", ",", "!", "?", ";", ":"};
        for (int pass = 0; pass < 2; pass++) {
            for (int i = 0; i < words; i++) {
                String w = lexicon.get(i);
                sb.append(sb.isEmpty() ? Character.toUpperCase(w.charAt(0)) + w.substring(1) : w);
                // Zipf-like: low-rank words recur more often
                int extra = (int) (8.0 / (1 + i / 50.0));
                for (int j = 0; j < extra; j++) sb.append(' ').append(lexicon.get(r.nextInt(Math.min(words, 1 + i))));
                if (r.nextInt(10) == 0) sb.append(' ').append(r.nextInt(1000));
                sb.append(r.nextInt(6) == 0 ? punct[r.nextInt(punct.length)] + " " : " ");
                if (sb.length() > 2000) {
                    texts.add(sb.toString());
                    sb.setLength(0);
                }
            }
        }
        if (!sb.isEmpty()) texts.add(sb.toString());
        return texts;
    }
}
