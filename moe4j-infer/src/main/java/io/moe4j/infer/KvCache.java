package io.moe4j.infer;

import io.moe4j.tensor.quant.Fp16;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Keys and values of past positions, per layer, for several independent sequences ("slots"), allocated once.
 *
 * <pre>
 *   K, V of layer l: (slots, capacity, kvDim) in {@link Type#F32} or {@link Type#F16}
 *   element (slot, pos, j) at index (slot·capacity + pos)·kvDim + j
 * </pre>
 * Keys are stored after RoPE (and Q/K norm), as llama.cpp stores them, so a decode step only computes its own
 * token. F16 halves the memory and the bytes attention reads per step at the cost of rounding K and V to 11-bit
 * mantissas (llama.cpp's default); F32 is exact and is what the differential tests against llama.cpp use.
 *
 * <p>Each slot has a length (positions filled). The engine appends; {@link #clear(int)} restarts a slot. Not
 * thread-safe for writes; attention reads rows from many threads.
 */
public final class KvCache implements AutoCloseable {
    /** Element type of the cache. */
    public enum Type {
        F32(4), F16(2);
        final int bytes;
        Type(int bytes) { this.bytes = bytes; }
    }

    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT;
    private static final ValueLayout.OfShort F16 = ValueLayout.JAVA_SHORT;

    private final Type type;
    private final int layers, slots, capacity, kvDim;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment[] k;   // per layer (slots, capacity, kvDim)
    private final MemorySegment[] v;   // per layer (slots, capacity, kvDim)
    private final int[] length;        // (slots) positions filled

    public KvCache(Type type, int layers, int slots, int capacity, int kvDim) {
        if (layers < 1 || slots < 1 || capacity < 1 || kvDim < 1) {
            throw new IllegalArgumentException("KV cache needs layers, slots, capacity and kvDim >= 1, got "
                    + layers + ", " + slots + ", " + capacity + ", " + kvDim);
        }
        this.type = type;
        this.layers = layers;
        this.slots = slots;
        this.capacity = capacity;
        this.kvDim = kvDim;
        long bytes = Math.multiplyExact(Math.multiplyExact((long) slots * capacity, (long) kvDim), (long) type.bytes);
        this.k = new MemorySegment[layers];
        this.v = new MemorySegment[layers];
        for (int l = 0; l < layers; l++) {
            k[l] = arena.allocate(bytes, 64);
            v[l] = arena.allocate(bytes, 64);
        }
        this.length = new int[slots];
    }

    public Type type() { return type; }
    public int slots() { return slots; }
    public int capacity() { return capacity; }
    public int kvDim() { return kvDim; }

    /** Positions filled in {@code slot}. */
    public int length(int slot) { return length[slot]; }

    /** Forgets everything in {@code slot}. */
    public void clear(int slot) { length[slot] = 0; }

    void setLength(int slot, int n) { length[slot] = n; }

    /** Bytes of native memory held. */
    public long byteSize() { return 2L * layers * k[0].byteSize(); }

    private long index(int slot, int pos) { return ((long) slot * capacity + pos) * kvDim; }

    /** Stores kvDim floats of K and of V for (layer, slot, pos) from F32 segments at float offsets. */
    void store(int layer, int slot, int pos, MemorySegment kSrc, long kOff, MemorySegment vSrc, long vOff) {
        long i = index(slot, pos);
        if (type == Type.F32) {
            MemorySegment.copy(kSrc, kOff * 4, k[layer], i * 4, (long) kvDim * 4);
            MemorySegment.copy(vSrc, vOff * 4, v[layer], i * 4, (long) kvDim * 4);
        } else {
            MemorySegment kd = k[layer], vd = v[layer];
            for (int j = 0; j < kvDim; j++) {
                kd.setAtIndex(F16, i + j, Fp16.encode(kSrc.getAtIndex(F32, kOff + j)));
                vd.setAtIndex(F16, i + j, Fp16.encode(vSrc.getAtIndex(F32, vOff + j)));
            }
        }
    }

    /** The K segment of a layer in F32 mode, with the float offset of (slot, pos, 0); see {@link #kOffset}. */
    MemorySegment k(int layer) { return k[layer]; }
    MemorySegment v(int layer) { return v[layer]; }

    /** Element offset of (slot, pos, 0) in {@link #k} / {@link #v}. */
    long offset(int slot, int pos) { return index(slot, pos); }

    /** Decodes n F16 elements at element index {@code at} of {@code seg} into dst (float offset dstOff). */
    static void decodeF16(MemorySegment seg, long at, int n, MemorySegment dst, long dstOff) {
        for (int j = 0; j < n; j++) dst.setAtIndex(F32, dstOff + j, Fp16.decode(seg.getAtIndex(F16, at + j)));
    }

    @Override
    public void close() {
        if (arena.scope().isAlive()) arena.close();
    }
}
