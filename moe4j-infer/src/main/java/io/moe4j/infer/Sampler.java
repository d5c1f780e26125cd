package io.moe4j.infer;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Picks the next token from a logit vector, in llama.cpp's default order: repetition penalty → top-k → top-p →
 * min-p → temperature → draw. Top-p and min-p filter by the probabilities at temperature 1 (as llama.cpp's chain
 * does, temperature comes after them); the draw uses {@code softmax(logit / temperature)} over the survivors.
 * {@code temperature <= 0} is greedy: the argmax of the penalised logits (lowest id on ties), no randomness.
 *
 * <p>Repetition penalty (CTRL / llama.cpp): each distinct id among the last {@code repeatLastN} tokens of the
 * history has its logit divided by the penalty when positive, multiplied when negative.
 *
 * <p>Reproducible: the same seed and the same calls give the same tokens. Buffers are allocated once for the
 * vocabulary; {@link #sample} allocates nothing. Not thread-safe (one sampler per sequence).
 */
public final class Sampler {

    /**
     * @param temperature   ≤ 0: greedy
     * @param topK          keep the k most likely (≤ 0: all)
     * @param topP          keep the smallest set whose probability reaches p (≥ 1: all)
     * @param minP          keep tokens at least minP × the top probability (≤ 0: all)
     * @param repeatPenalty 1: off
     * @param repeatLastN   history window the penalty looks at
     * @param seed          random seed
     */
    public record Params(float temperature, int topK, float topP, float minP, float repeatPenalty, int repeatLastN, long seed) {
        public Params {
            if (!(temperature >= 0) && !(temperature < 0)) throw new IllegalArgumentException("temperature is NaN");
            if (!(topP > 0)) throw new IllegalArgumentException("topP must be > 0, got " + topP);
            if (!(minP >= 0 && minP <= 1)) throw new IllegalArgumentException("minP must be in [0, 1], got " + minP);
            if (!(repeatPenalty > 0)) throw new IllegalArgumentException("repeatPenalty must be > 0, got " + repeatPenalty);
            if (repeatLastN < 0) throw new IllegalArgumentException("repeatLastN must be >= 0, got " + repeatLastN);
        }

        /** Argmax, nothing else. */
        public static Params greedy() { return new Params(0f, 0, 1f, 0f, 1f, 0, 0); }

        /** llama.cpp's defaults: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05, no repetition penalty. */
        public static Params defaults(long seed) { return new Params(0.8f, 40, 0.95f, 0.05f, 1f, 64, seed); }
    }

    private final Params p;
    private final SplittableRandom random;
    private final float[] work;     // (V) penalised logits
    private final long[] keys;      // (V) sortable (logit, id) pairs of the candidates
    private final int[] ids;        // (V) candidates, most likely first
    private final double[] probs;   // (V) candidate probabilities

    public Sampler(Params p, int vocab) {
        if (vocab < 1) throw new IllegalArgumentException("vocab must be >= 1, got " + vocab);
        this.p = p;
        this.random = new SplittableRandom(p.seed());
        this.work = new float[vocab];
        this.keys = new long[vocab];
        this.ids = new int[vocab];
        this.probs = new double[vocab];
    }

    public Params params() { return p; }

    /** Samples from {@code logits} (length vocab) given the last {@code n} tokens of {@code history}. */
    public int sample(float[] logits, int[] history, int n) {
        int v = work.length;
        if (logits.length < v) throw new IllegalArgumentException("need " + v + " logits, got " + logits.length);
        System.arraycopy(logits, 0, work, 0, v);
        if (p.repeatPenalty() != 1f && p.repeatLastN() > 0) penalize(history, n);
        if (p.temperature() <= 0) return argmax(work, v);

        // Candidates, most likely first. Keys pack (logit, id) into one long: a float's bits, flipped for
        // negatives, order like the float; the complemented id in the low bits breaks ties towards the lower id.
        // With top-k, a size-k min-heap keeps the best while scanning (O(V log k), not a full sort of V). Without
        // top-k but with min-p, ids min-p drops anyway (logit < max + ln(minP)) are skipped before sorting, and
        // top-p's normaliser is summed over the whole vocabulary separately so its cut does not move.
        float floor = Float.NEGATIVE_INFINITY;
        double zAll = 0;
        if (p.topK() <= 0 && p.minP() > 0) {
            float max = Float.NEGATIVE_INFINITY;
            for (int i = 0; i < v; i++) if (work[i] > max) max = work[i];
            floor = max + (float) Math.log(p.minP()) - 1e-6f;
            for (int i = 0; i < v; i++) if (work[i] >= Float.NEGATIVE_INFINITY) zAll += Math.exp(work[i] - max);
        }
        int cap = p.topK() > 0 ? Math.min(p.topK(), v) : v, c = 0;
        for (int i = 0; i < v; i++) {
            float x = work[i];
            if (!(x >= floor)) continue;   // also drops NaN
            long key = ((long) sortable(x) << 32) | (0xFFFFFFFFL & ~i);
            if (c < cap) {
                keys[c] = key;
                siftUp(c++);
            } else if (key > keys[0]) {
                keys[0] = key;
                siftDown(c);
            }
        }
        if (c == 0) throw new IllegalArgumentException("all logits are NaN");
        Arrays.sort(keys, 0, c);
        int k = c;
        for (int j = 0; j < k; j++) ids[j] = ~(int) keys[c - 1 - j];

        // Probabilities at temperature 1 for top-p / min-p.
        double max = work[ids[0]], z = 0;
        for (int j = 0; j < k; j++) z += probs[j] = Math.exp(work[ids[j]] - max);
        if (zAll > 0) z = zAll;
        int keep = k;
        if (p.topP() < 1) {
            double cum = 0;
            for (int j = 0; j < k; j++) {
                cum += probs[j] / z;
                if (cum >= p.topP()) {
                    keep = j + 1;
                    break;
                }
            }
        }
        if (p.minP() > 0) {
            int j = 1;
            while (j < keep && probs[j] >= p.minP() * probs[0]) j++;
            keep = j;
        }

        // Temperature, then draw.
        double t = p.temperature(), zt = 0;
        for (int j = 0; j < keep; j++) zt += probs[j] = Math.exp((work[ids[j]] - max) / t);
        double u = random.nextDouble() * zt, acc = 0;
        for (int j = 0; j < keep; j++) {
            acc += probs[j];
            if (u < acc) return ids[j];
        }
        return ids[keep - 1];
    }

    /** Min-heap on keys[0, n): restore after appending at {@code i}. */
    private void siftUp(int i) {
        long x = keys[i];
        while (i > 0) {
            int parent = (i - 1) >>> 1;
            if (keys[parent] <= x) break;
            keys[i] = keys[parent];
            i = parent;
        }
        keys[i] = x;
    }

    /** Min-heap on keys[0, n): restore after replacing the root. */
    private void siftDown(int n) {
        long x = keys[0];
        int i = 0;
        while (true) {
            int child = 2 * i + 1;
            if (child >= n) break;
            if (child + 1 < n && keys[child + 1] < keys[child]) child++;
            if (keys[child] >= x) break;
            keys[i] = keys[child];
            i = child;
        }
        keys[i] = x;
    }

    private void penalize(int[] history, int n) {
        int from = Math.max(0, n - p.repeatLastN());
        float pen = p.repeatPenalty();
        for (int i = from; i < n; i++) {
            int id = history[i];
            if (id < 0 || id >= work.length) continue;
            boolean seen = false;   // each distinct id once, as llama.cpp counts them
            for (int j = from; j < i && !seen; j++) seen = history[j] == id;
            if (seen) continue;
            work[id] = work[id] > 0 ? work[id] / pen : work[id] * pen;
        }
    }

    private static int sortable(float f) {
        int b = Float.floatToIntBits(f == 0f ? 0f : f);   // −0 and +0 tie
        return b < 0 ? b ^ 0x7FFFFFFF : b;   // negative floats: larger magnitude sorts lower
    }

    static int argmax(float[] x, int n) {
        int best = 0;
        for (int i = 1; i < n; i++) if (x[i] > x[best] || Float.isNaN(x[best])) best = i;
        return best;
    }
}
