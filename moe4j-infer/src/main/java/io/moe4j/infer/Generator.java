package io.moe4j.infer;

import java.util.Arrays;

/**
 * Text generation over token ids: evaluates a prompt in one sequence (cache slot), then samples and feeds back
 * one token at a time until a stop id, the token budget, a full context or the listener says stop. Streaming:
 * the listener sees each id as soon as it is sampled. Tokenization is the caller's business.
 *
 * <p>A stop id is reported to the listener and included in the result, but not evaluated (there is nothing to
 * predict after it).
 */
public final class Generator {

    /** Receives each generated id; returns false to stop after it. */
    @FunctionalInterface
    public interface Listener {
        boolean onToken(int id);
    }

    public enum Stop { STOP_TOKEN, MAX_TOKENS, CONTEXT_FULL, LISTENER }

    /**
     * The generated ids (prompt excluded), why generation ended, and wall time: {@code promptNanos} evaluating the
     * prompt (up to its logits), {@code decodeNanos} the rest (sampling, listener, one forward per further token).
     */
    public record Result(int[] tokens, Stop reason, long promptNanos, long decodeNanos) {
        public Result(int[] tokens, Stop reason) { this(tokens, reason, 0, 0); }
    }

    private final Engine engine;
    private final Sampler sampler;

    public Generator(Engine engine, Sampler sampler) {
        if (sampler == null || engine == null) throw new NullPointerException();
        this.engine = engine;
        this.sampler = sampler;
    }

    /**
     * Continues the sequence in {@code slot} (which may already hold tokens) with {@code prompt}, then generates
     * up to {@code maxTokens} ids.
     */
    public Result generate(int slot, int[] prompt, int maxTokens, int[] stopIds, Listener listener) {
        if (prompt.length == 0) throw new IllegalArgumentException("empty prompt");
        if (maxTokens < 0) throw new IllegalArgumentException("maxTokens must be >= 0, got " + maxTokens);
        int[] history = Arrays.copyOf(prompt, prompt.length + maxTokens);
        int n = prompt.length, generated = 0;
        long t0 = System.nanoTime();
        float[] logits = engine.evaluate(slot, prompt);
        long t1 = System.nanoTime();
        Batch one = new Batch(1);
        KvCache cache = engine.cache();
        Stop reason = Stop.MAX_TOKENS;
        while (generated < maxTokens) {
            int id = sampler.sample(logits, history, n);
            history[n++] = id;
            generated++;
            boolean go = listener == null || listener.onToken(id);
            if (contains(stopIds, id)) {
                reason = Stop.STOP_TOKEN;
                break;
            }
            if (!go) {
                reason = Stop.LISTENER;
                break;
            }
            if (generated == maxTokens) break;
            if (cache.length(slot) >= cache.capacity()) {
                reason = Stop.CONTEXT_FULL;
                break;
            }
            one.clear().add(id, slot, true);
            engine.forward(one);
            engine.logits(0, logits);
        }
        return new Result(Arrays.copyOfRange(history, prompt.length, n), reason, t1 - t0, System.nanoTime() - t1);
    }

    private static boolean contains(int[] a, int x) {
        if (a == null) return false;
        for (int v : a) if (v == x) return true;
        return false;
    }
}
