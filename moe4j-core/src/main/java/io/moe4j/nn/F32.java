package io.moe4j.nn;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/** Element access and allocation helpers for F32 data in memory segments (native byte order, index in floats). */
public final class F32 {
    private F32() {}

    public static final ValueLayout.OfFloat LAYOUT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.nativeOrder());

    public static float get(MemorySegment s, long i) { return s.getAtIndex(LAYOUT, i); }

    public static void set(MemorySegment s, long i, float v) { s.setAtIndex(LAYOUT, i, v); }

    /** A zeroed, 64-byte aligned buffer of {@code n} floats. */
    public static MemorySegment alloc(Arena arena, long n) { return arena.allocate(Math.max(1, n) * 4, 64); }

    /** Copies floats [off, off+n) of {@code s} to a new array. */
    public static float[] toArray(MemorySegment s, long off, int n) {
        float[] out = new float[n];
        MemorySegment.copy(s, LAYOUT, off * 4, out, 0, n);
        return out;
    }

    /** Copies {@code v} into {@code s} at float offset {@code off}. */
    public static void copyIn(float[] v, MemorySegment s, long off) {
        MemorySegment.copy(v, 0, s, LAYOUT, off * 4, v.length);
    }

    /** Zeroes floats [off, off+n). */
    public static void zero(MemorySegment s, long off, long n) { s.asSlice(off * 4, n * 4).fill((byte) 0); }
}
