package io.moe4j.infer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Generates for several sequences at once, each in its own cache slot: the prompts are packed into shared forward
 * batches, then every decode step evaluates one token of each unfinished sequence in a single {@link Engine#forward}
 * — so each layer's weights, and each chosen expert's weights, are read once per step for all of them. Results
 * equal running {@link Generator} on each request alone (same samplers), up to float summation order.
 *
 * <p>Request {@code r} uses slot {@code r}, which is cleared first; the engine needs as many slots as requests.
 */
public final class BatchGenerator {

    /** One sequence to continue: its prompt, sampler (one per request: samplers hold state), budget and stop ids. */
    public record Request(int[] prompt, Sampler sampler, int maxTokens, int[] stopIds) {
        public Request {
            if (prompt.length == 0) throw new IllegalArgumentException("empty prompt");
            if (maxTokens < 0) throw new IllegalArgumentException("maxTokens must be >= 0, got " + maxTokens);
        }
    }

    /** Receives each generated id of request {@code request}; returns false to stop that request. */
    @FunctionalInterface
    public interface Listener {
        boolean onToken(int request, int id);
    }

    private final Engine engine;

    public BatchGenerator(Engine engine) {
        this.engine = engine;
    }

    public List<Generator.Result> generate(List<Request> requests, Listener listener) {
        int n = requests.size();
        KvCache cache = engine.cache();
        if (n > cache.slots()) throw new IllegalArgumentException(n + " requests need " + n + " cache slots, the engine has " + cache.slots());
        int vocab = engine.vocab();
        float[][] logits = new float[n][vocab];
        int[][] history = new int[n][];
        int[] len = new int[n], generated = new int[n];
        Generator.Stop[] stop = new Generator.Stop[n];
        for (int r = 0; r < n; r++) {
            Request q = requests.get(r);
            cache.clear(r);
            history[r] = Arrays.copyOf(q.prompt(), q.prompt().length + q.maxTokens());
            len[r] = q.prompt().length;
        }

        // Prompts, packed: a batch fills with tokens of one prompt after another.
        Batch b = engine.newBatch();
        int[] rowOwner = new int[engine.maxOutputs()];
        for (int r = 0; r < n; r++) {
            int[] p = requests.get(r).prompt();
            for (int i = 0; i < p.length; i++) {
                boolean last = i == p.length - 1;
                if (b.size() == b.capacity() || (last && b.outputs() == engine.maxOutputs())) flush(b, rowOwner, logits);
                int row = b.add(p[i], r, last);
                if (row >= 0) rowOwner[row] = r;
            }
        }
        if (b.size() > 0) flush(b, rowOwner, logits);

        // Decode: sample every unfinished request, then one forward with all of their new tokens.
        boolean[] active = new boolean[n];
        for (int r = 0; r < n; r++) active[r] = requests.get(r).maxTokens() > 0;
        for (int r = 0; r < n; r++) if (!active[r]) stop[r] = Generator.Stop.MAX_TOKENS;
        while (true) {
            b.clear();
            for (int r = 0; r < n; r++) {
                if (!active[r]) continue;
                Request q = requests.get(r);
                int id = q.sampler().sample(logits[r], history[r], len[r]);
                history[r][len[r]++] = id;
                generated[r]++;
                boolean go = listener == null || listener.onToken(r, id);
                Generator.Stop s = null;
                if (contains(q.stopIds(), id)) s = Generator.Stop.STOP_TOKEN;
                else if (!go) s = Generator.Stop.LISTENER;
                else if (generated[r] == q.maxTokens()) s = Generator.Stop.MAX_TOKENS;
                else if (cache.length(r) >= cache.capacity()) s = Generator.Stop.CONTEXT_FULL;
                if (s != null) {
                    stop[r] = s;
                    active[r] = false;
                    continue;
                }
                if (b.size() == b.capacity() || b.outputs() == engine.maxOutputs()) flush(b, rowOwner, logits);
                rowOwner[b.add(id, r, true)] = r;
            }
            if (b.size() == 0) break;
            flush(b, rowOwner, logits);
        }
        List<Generator.Result> out = new ArrayList<>(n);
        for (int r = 0; r < n; r++) {
            out.add(new Generator.Result(Arrays.copyOfRange(history[r], requests.get(r).prompt().length, len[r]), stop[r]));
        }
        return out;
    }

    private void flush(Batch b, int[] rowOwner, float[][] logits) {
        engine.forward(b);
        for (int row = 0; row < b.outputs(); row++) engine.logits(row, logits[rowOwner[row]]);
        b.clear();
    }

    private static boolean contains(int[] a, int x) {
        if (a == null) return false;
        for (int v : a) if (v == x) return true;
        return false;
    }
}
