package io.moe4j.moe.router;

import io.moe4j.moe.MoeConfig;
import io.moe4j.moe.Routing;
import io.moe4j.nn.CounterRng;
import io.moe4j.nn.Param;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.List;
import java.util.PriorityQueue;

/**
 * Hash routing (Hash Layers, Roller et al. 2021; spec §4.11): a fixed table {@code h: token id → expert} chooses
 * the expert, {@code y_t = FFN_{h(v_t)}(x_t)} with combine weight 1.
 *
 * <p>The default table is the paper's random hash: each of the {@code vocabSize} ids gets an expert drawn uniformly
 * from a {@link CounterRng} seeded by {@code seed}, so the table is a pure function of (vocabSize, E, seed).
 * {@link #balancedTable} builds the balanced hash from corpus frequencies. The table is the router's only state and
 * belongs in checkpoints ({@link #table()}, {@link #loadTable(int[])}); it is fixed before training.
 *
 * <p>No router parameters, no logits (the Routing's logits are 0 and its scores one-hot), no auxiliary loss, no
 * gradient: {@code balanceLoss} is ignored (there are no router probabilities to balance); jitter and the z-loss
 * are rejected by {@link Routers}. Capacity, if configured, is the layer's, in position order (lingvo
 * {@code HashGatingOnLogits}). Deterministic, causal-safe and batch-invariant.
 *
 * <p>Non-goals: the paper's bigram, clustered and multi-hash variants (unverified details, spec §6 item 6).
 */
public final class HashRouter implements Router {
    private final int e, vocab;
    private final int[] table; // (vocabSize) token id → expert

    public HashRouter(MoeConfig c) {
        this.e = c.numExperts();
        this.vocab = c.vocabSize();
        this.table = randomTable(vocab, e, c.seed());
    }

    /** A router using the balanced hash of {@code frequency} (one count per token id, length vocabSize). */
    public static HashRouter balanced(MoeConfig c, long[] frequency) {
        HashRouter r = new HashRouter(c);
        r.loadTable(balancedTable(frequency, c.numExperts()));
        return r;
    }

    @Override public String name() { return "hash"; }
    @Override public int slots() { return 1; }
    @Override public List<Param> params() { return List.of(); }

    /** A copy of the table, token id → expert (for checkpoints). */
    public int[] table() { return table.clone(); }

    /** Replaces the table (checkpoint loading, a balanced hash); every entry must be an expert index. */
    public void loadTable(int[] t) {
        if (t.length != vocab) {
            throw new IllegalArgumentException("hash table has " + t.length + " entries, moe.vocabSize = " + vocab);
        }
        for (int v = 0; v < vocab; v++) {
            if (t[v] < 0 || t[v] >= e) {
                throw new IllegalArgumentException("hash table entry " + v + " = " + t[v] + " is not an expert in [0, " + e + ")");
            }
        }
        System.arraycopy(t, 0, table, 0, vocab);
    }

    /** Random hash: expert of id v = ⌊U_v · E⌋, U_v uniform from draw 0 of a CounterRng(seed). */
    public static int[] randomTable(int vocabSize, int numExperts, long seed) {
        CounterRng rng = new CounterRng(seed ^ 0x3c6ef372fe94f82bL);
        long draw = rng.next();
        int[] t = new int[vocabSize];
        for (int v = 0; v < vocabSize; v++) t[v] = (int) (rng.uniform(draw, v) * numExperts);
        return t;
    }

    /**
     * Balanced hash (spec §4.11; the paper's construction is <b>unverified</b>, spec §6 item 6): token ids in
     * decreasing frequency (ties: lower id first), each to the currently least-loaded expert (ties: fewer ids, then
     * lower index). Greedy, so the expert loads differ by at most the largest single-id frequency: the last id added
     * to the heaviest expert went to the lightest one. Ids that never occur (frequency 0) add no load and would all
     * land on the lightest expert, so they are dealt round-robin instead (our choice; the paper does not say).
     */
    public static int[] balancedTable(long[] frequency, int numExperts) {
        if (numExperts < 1) throw new IllegalArgumentException("numExperts must be >= 1, got " + numExperts);
        int vocabSize = frequency.length;
        Integer[] order = new Integer[vocabSize];
        for (int v = 0; v < vocabSize; v++) {
            if (frequency[v] < 0) throw new IllegalArgumentException("frequency of token " + v + " is negative: " + frequency[v]);
            order[v] = v;
        }
        Arrays.sort(order, (a, b) -> Long.compare(frequency[b], frequency[a])); // stable: equal counts keep id order
        long[] load = new long[numExperts];
        int[] ids = new int[numExperts];
        PriorityQueue<Integer> heap = new PriorityQueue<>(numExperts, (a, b) -> {
            int c = Long.compare(load[a], load[b]);
            if (c == 0) c = Integer.compare(ids[a], ids[b]);
            return c != 0 ? c : Integer.compare(a, b);
        });
        for (int x = 0; x < numExperts; x++) heap.add(x);
        int[] t = new int[vocabSize];
        int unseen = 0;
        for (int v : order) {
            if (frequency[v] == 0) {
                t[v] = unseen++ % numExperts;
                continue;
            }
            int x = heap.poll();
            t[v] = x;
            load[x] += frequency[v];
            ids[x]++;
            heap.add(x);
        }
        return t;
    }

    @Override
    public void forward(MemorySegment x, long xOff, int t, int[] tokenIds, Routing r, boolean training) {
        if (tokenIds == null) {
            throw new IllegalArgumentException("the hash router needs the token ids: call MoeLayer.forward with tokenIds");
        }
        if (tokenIds.length < t) {
            throw new IllegalArgumentException("the hash router got " + tokenIds.length + " token ids for " + t + " tokens");
        }
        Arrays.fill(r.logits, 0, t * e, 0f);
        Arrays.fill(r.scores, 0, t * e, 0f);
        for (int i = 0; i < t; i++) {
            int id = tokenIds[i];
            if (id < 0 || id >= vocab) {
                throw new IllegalArgumentException("token id " + id + " at position " + i + " is outside [0, moe.vocabSize = "
                        + vocab + ")");
            }
            int ex = table[id];
            r.scores[i * e + ex] = 1f;
            r.assign(i, 0, ex, 1f);
        }
    }

    /** Nothing to do: the combine weight is the constant 1 and the router has no parameters and ignores x. */
    @Override
    public void backward(MemorySegment x, long xOff, int t, Routing r, float[] dWeight, MemorySegment dx, long dxOff) {}
}
