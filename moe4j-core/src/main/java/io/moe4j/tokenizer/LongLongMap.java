package io.moe4j.tokenizer;

import java.util.Arrays;

/**
 * A hash map from non-negative long keys to long values, open addressing with linear probing: the pair tables of
 * BPE (key {@code left << 32 | right}) are looked up once per candidate pair, and a boxed {@code HashMap<Long, …>}
 * spends more time allocating keys than hashing. Not thread-safe for writes; concurrent reads of a map no longer
 * written are fine. Non-goals: removal (BPE tables only grow; the trainer zeroes counts instead).
 */
final class LongLongMap {
    private static final long EMPTY = -1;   // keys are >= 0

    private long[] keys;
    private long[] values;
    private int size, mask;

    LongLongMap(int expected) {
        int cap = Integer.highestOneBit(Math.max(16, expected * 2) - 1) << 1;
        keys = new long[cap];
        values = new long[cap];
        Arrays.fill(keys, EMPTY);
        mask = cap - 1;
    }

    int size() { return size; }

    private static int hash(long k) {
        long h = k * 0x9E3779B97F4A7C15L;   // Fibonacci hashing: spreads the (left, right) halves over all bits
        return (int) (h ^ (h >>> 32));
    }

    /** The value of {@code key}, or {@code missing}. */
    long get(long key, long missing) {
        for (int i = hash(key) & mask; ; i = (i + 1) & mask) {
            long k = keys[i];
            if (k == key) return values[i];
            if (k == EMPTY) return missing;
        }
    }

    /** Sets {@code key} to {@code value} unless present; returns true if it was added. */
    boolean putIfAbsent(long key, long value) {
        int i = slot(key);
        if (keys[i] == key) return false;
        insert(i, key, value);
        return true;
    }

    /** Sets {@code key} to {@code value}. */
    void put(long key, long value) {
        int i = slot(key);
        if (keys[i] == key) values[i] = value;
        else insert(i, key, value);
    }

    /** Adds {@code delta} to the value of {@code key} (0 if absent) and returns the new value. */
    long add(long key, long delta) {
        int i = slot(key);
        if (keys[i] == key) return values[i] += delta;
        insert(i, key, delta);
        return delta;
    }

    private int slot(long key) {
        if (key < 0) throw new IllegalArgumentException("negative key " + key);
        int i = hash(key) & mask;
        while (keys[i] != EMPTY && keys[i] != key) i = (i + 1) & mask;
        return i;
    }

    private void insert(int i, long key, long value) {
        keys[i] = key;
        values[i] = value;
        if (++size * 2 > keys.length) grow();
    }

    private void grow() {
        long[] ok = keys, ov = values;
        keys = new long[ok.length * 2];
        values = new long[ok.length * 2];
        Arrays.fill(keys, EMPTY);
        mask = keys.length - 1;
        for (int j = 0; j < ok.length; j++) {
            if (ok[j] == EMPTY) continue;
            int i = hash(ok[j]) & mask;
            while (keys[i] != EMPTY) i = (i + 1) & mask;
            keys[i] = ok[j];
            values[i] = ov[j];
        }
    }

    /** Calls {@code f} for every entry. */
    void forEach(java.util.function.LongBinaryOperator f) {
        for (int j = 0; j < keys.length; j++) if (keys[j] != EMPTY) f.applyAsLong(keys[j], values[j]);
    }
}
