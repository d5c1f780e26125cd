package io.moe4j.moe.router;

/**
 * Packs (non-negative score, index) into one {@code long} whose natural order is (score ascending, index
 * descending), so that reading a sorted key array from the end yields the spec's order (§3.3): higher score
 * first, then the lower index. Lets the variable-count routers rank rows with a primitive sort or heap, without
 * boxing or comparators on the hot path.
 *
 * <p>Valid for finite scores ≥ 0 (probabilities, ReLU outputs): their IEEE bits are monotone in the value.
 * −0.0 is folded into +0.0 so it cannot sort below every other key.
 */
final class RankKeys {
    private RankKeys() {}

    static long key(float score, int index) {
        return ((long) Float.floatToRawIntBits(score + 0f) << 32) | (~index & 0xFFFF_FFFFL);
    }

    static int index(long key) {
        return ~(int) key;
    }
}
