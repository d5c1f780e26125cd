package io.moe4j.train;

import io.moe4j.tokenizer.Tokenizer;
import io.moe4j.train.model.CausalLm;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Text continuation with a trained {@link CausalLm}: greedy (temperature 0) or sampled with temperature and
 * optional top-k, seeded. The context is the last {@code maxSeqLen} tokens (the training model has no KV cache,
 * so each token recomputes the prefix — fine for samples, not a serving path).
 */
public final class Generator {
    private Generator() {}

    /** Token ids of the continuation of {@code prompt} (at most {@code maxNew}; stops at a stop token). */
    public static int[] continueIds(CausalLm model, int[] prompt, int maxNew, double temperature, int topK, long seed,
                                    java.util.List<Integer> stopTokens) {
        if (prompt.length == 0) throw new IllegalArgumentException("the prompt is empty (it must encode to at least one token)");
        if (temperature < 0) throw new IllegalArgumentException("temperature must be >= 0, got " + temperature);
        int v = model.config().vocabSize(), ctx = model.config().maxSeqLen();
        int[] seq = Arrays.copyOf(prompt, prompt.length + maxNew);
        int len = prompt.length, produced = 0;
        float[] logits = new float[v];
        SplittableRandom rng = new SplittableRandom(seed);
        while (produced < maxNew) {
            int from = Math.max(0, len - ctx);
            model.nextLogits(Arrays.copyOfRange(seq, from, len), len - from, logits);
            int next = temperature == 0 ? argmax(logits) : sample(logits, temperature, topK, rng);
            if (stopTokens != null && stopTokens.contains(next)) break;
            seq[len++] = next;
            produced++;
        }
        return Arrays.copyOfRange(seq, prompt.length, len);
    }

    /** The prompt's continuation as text. */
    public static String continueText(CausalLm model, Tokenizer tok, String prompt, int maxNew, double temperature,
                                      int topK, long seed) {
        int[] ids = continueIds(model, tok.encode(prompt), maxNew, temperature, topK, seed, tok.stopTokens());
        return tok.decode(ids);
    }

    static int argmax(float[] x) {
        int best = 0;
        for (int i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
        return best;
    }

    static int sample(float[] logits, double temperature, int topK, SplittableRandom rng) {
        int v = logits.length;
        double cutoff = Double.NEGATIVE_INFINITY;
        if (topK > 0 && topK < v) {
            float[] sorted = logits.clone();
            Arrays.sort(sorted);
            cutoff = sorted[v - topK];
        }
        double max = Double.NEGATIVE_INFINITY;
        for (float l : logits) max = Math.max(max, l);
        double[] p = new double[v];
        double sum = 0;
        for (int i = 0; i < v; i++) {
            p[i] = logits[i] >= cutoff ? Math.exp((logits[i] - max) / temperature) : 0;
            sum += p[i];
        }
        double u = rng.nextDouble() * sum;
        for (int i = 0; i < v; i++) {
            u -= p[i];
            if (u < 0) return i;
        }
        return argmax(logits);
    }
}
