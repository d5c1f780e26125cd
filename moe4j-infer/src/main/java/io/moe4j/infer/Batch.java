package io.moe4j.infer;

/**
 * The tokens one forward step evaluates together: each with the sequence (KV-cache slot) it belongs to and
 * whether its next-token logits are wanted. A prompt is many tokens of one slot; a multi-sequence decode step is
 * one token of each of several slots; both mix freely. Positions are implicit: a slot's tokens continue where
 * its cache ends, in batch order.
 *
 * <p>Reusable: {@link #clear()} and add again; nothing is allocated after construction.
 */
public final class Batch {
    final int[] tokens;    // (capacity)
    final int[] slots;     // (capacity)
    final boolean[] wantLogits; // (capacity)
    int size;
    int outputs;

    public Batch(int capacity) {
        if (capacity < 1) throw new IllegalArgumentException("batch capacity must be >= 1, got " + capacity);
        tokens = new int[capacity];
        slots = new int[capacity];
        wantLogits = new boolean[capacity];
    }

    public int capacity() { return tokens.length; }
    public int size() { return size; }
    /** Tokens whose logits are wanted; their rows in the engine's logits are numbered 0.. in batch order. */
    public int outputs() { return outputs; }

    public Batch clear() {
        size = 0;
        outputs = 0;
        return this;
    }

    /** Appends {@code token} of sequence {@code slot}; returns its logits row index, or −1 if none is wanted. */
    public int add(int token, int slot, boolean logits) {
        if (size == tokens.length) throw new IllegalStateException("batch is full (" + tokens.length + " tokens)");
        tokens[size] = token;
        slots[size] = slot;
        wantLogits[size] = logits;
        size++;
        return logits ? outputs++ : -1;
    }

    public int token(int i) { return tokens[i]; }
    public int slot(int i) { return slots[i]; }
}
