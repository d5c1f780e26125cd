package io.moe4j.infer;

import io.moe4j.tensor.quant.Fp16;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Keys and values of past positions, per layer, for several independent sequences ("slots"), allocated once.
 *
 * <pre>
 *   K of layer l: (slots, capacity, kRow)   V of layer l: (slots, capacity, vRow)   in F32 or F16
 *   K element (slot, pos, j) at index (slot·capacity + pos)·kRow + j   (V likewise with vRow)
 * </pre>
 * Keys are stored after RoPE (and Q/K norm), as llama.cpp stores them, so a decode step only computes its own
 * token. {@code vRow = 0} means values are read from the keys (multi-head latent attention: the compressed
 * latent is both, see {@link Attention}), and no V memory is allocated.
 *
 * <p>F16 halves the memory and the bytes attention reads per step at the cost of rounding K and V to 11-bit
 * mantissas (llama.cpp's default); F32 is exact and is what the differential tests against llama.cpp use.
 *
 * <p>Each slot has a length (positions filled). The engine appends; {@link #clear(int)} restarts a slot. Not
 * thread-safe for writes of one cell; attention reads rows from many threads.
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
    private final int layers, slots, capacity, kRow, vRow;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment[] k;   // per layer (slots, capacity, kRow)
    private final MemorySegment[] v;   // per layer (slots, capacity, vRow); null when vRow = 0
    private final int[] length;        // (slots) positions filled

    /** A cache whose K and V rows both have {@code kvDim} elements. */
    public KvCache(Type type, int layers, int slots, int capacity, int kvDim) {
        this(type, layers, slots, capacity, kvDim, kvDim);
    }

    public KvCache(Type type, int layers, int slots, int capacity, int kRow, int vRow) {
        if (layers < 1 || slots < 1 || capacity < 1 || kRow < 1 || vRow < 0) {
            throw new IllegalArgumentException("KV cache needs layers, slots, capacity, kRow >= 1 and vRow >= 0, got "
                    + layers + ", " + slots + ", " + capacity + ", " + kRow + ", " + vRow);
        }
        this.type = type;
        this.layers = layers;
        this.slots = slots;
        this.capacity = capacity;
        this.kRow = kRow;
        this.vRow = vRow;
        long cells = (long) slots * capacity;
        this.k = new MemorySegment[layers];
        this.v = new MemorySegment[layers];
        for (int l = 0; l < layers; l++) {
            k[l] = arena.allocate(Math.multiplyExact(cells * kRow, (long) type.bytes), 64);
            if (vRow > 0) v[l] = arena.allocate(Math.multiplyExact(cells * vRow, (long) type.bytes), 64);
        }
        this.length = new int[slots];
    }

    public Type type() { return type; }
    public int slots() { return slots; }
    public int capacity() { return capacity; }
    /** Elements of one K row (all KV heads of one position). */
    public int kRow() { return kRow; }
    /** Elements of one V row; 0 when values are read from the keys. */
    public int vRow() { return vRow; }

    /** Positions filled in {@code slot}. */
    public int length(int slot) { return length[slot]; }

    /** Forgets everything in {@code slot}. */
    public void clear(int slot) { length[slot] = 0; }

    void setLength(int slot, int n) { length[slot] = n; }

    /**
     * Forgets all but the first {@code n} positions of {@code slot} (a chat whose re-rendered prompt differs from
     * what the cache holds after position n). The cells stay; the next tokens overwrite them.
     */
    public void truncate(int slot, int n) {
        if (n < 0 || n > length[slot]) throw new IllegalArgumentException("cannot truncate slot " + slot + " of length " + length[slot] + " to " + n);
        length[slot] = n;
    }

    /** Bytes of native memory held. */
    public long byteSize() { return (long) layers * (k[0].byteSize() + (v[0] == null ? 0 : v[0].byteSize())); }

    private long cell(int slot, int pos) { return (long) slot * capacity + pos; }

    /** Stores kRow floats of K (and vRow of V, if any) for (layer, slot, pos) from F32 segments at float offsets. */
    void store(int layer, int slot, int pos, MemorySegment kSrc, long kOff, MemorySegment vSrc, long vOff) {
        put(k[layer], cell(slot, pos) * kRow, kSrc, kOff, kRow);
        if (vRow > 0) put(v[layer], cell(slot, pos) * vRow, vSrc, vOff, vRow);
    }

    private void put(MemorySegment dst, long at, MemorySegment src, long srcOff, int n) {
        if (type == Type.F32) {
            MemorySegment.copy(src, srcOff * 4, dst, at * 4, (long) n * 4);
        } else {
            for (int j = 0; j < n; j++) dst.setAtIndex(F16, at + j, Fp16.encode(src.getAtIndex(F32, srcOff + j)));
        }
    }

    MemorySegment k(int layer) { return k[layer]; }
    /** The V segment of a layer, or the K segment when values are read from the keys. */
    MemorySegment v(int layer) { return vRow > 0 ? v[layer] : k[layer]; }

    /** Element index of (slot, pos, 0) in {@link #k}. */
    long kOffset(int slot, int pos) { return cell(slot, pos) * kRow; }

    /** Element index of (slot, pos, 0) in {@link #v} (in K when vRow = 0). */
    long vOffset(int slot, int pos) { return cell(slot, pos) * (vRow > 0 ? vRow : kRow); }

    /** Decodes n F16 elements at element index {@code at} of {@code seg} into dst (float offset dstOff). */
    static void decodeF16(MemorySegment seg, long at, int n, MemorySegment dst, long dstOff) {
        for (int j = 0; j < n; j++) dst.setAtIndex(F32, dstOff + j, Fp16.decode(seg.getAtIndex(F16, at + j)));
    }

    @Override
    public void close() {
        if (arena.scope().isAlive()) arena.close();
    }
}
