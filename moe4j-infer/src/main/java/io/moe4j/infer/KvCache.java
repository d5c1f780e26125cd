package io.moe4j.infer;

import io.moe4j.tensor.quant.Fp16;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Keys and values of past positions, per layer, for several independent sequences ("slots").
 *
 * <pre>
 *   K of layer l: (slots, heads, reserved, kRow/heads)   V of layer l: (slots, heads, reserved, vRow/heads)
 *   K element (slot, head, pos, j) at index ((slot·heads + head)·reserved + pos)·(kRow/heads) + j   (V likewise)
 * </pre>
 * Head-major: one KV head's keys (and values) of consecutive positions are consecutive in memory, so a decode
 * step's attention streams each head's history instead of gathering one short piece every {@code kRow} elements
 * (with positions outermost, one OLMoE head's keys were 8 KB apart and attention took 17 % of a 400-position
 * decode, perf).
 * Memory grows with use, not with the context length: {@code capacity} is the most positions a slot may hold,
 * {@code reserved ≤ capacity} the positions allocated now. The cache starts with {@link #INITIAL_POSITIONS}
 * and {@link #reserve} doubles it (a layer at a time: new segment, copy the filled rows, free the old) when a
 * forward step would pass it. Why: a cache preallocated for the full context is all resident (arenas zero their
 * memory) — 4096 positions of an OLMoE-1B-7B-shaped model in F32 are 1 GB before the first token, for a prompt
 * that may need 20 positions. The cost of growing is one copy of the filled part per doubling.
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

    /** Positions per slot allocated at first (or the capacity, if smaller). */
    public static final int INITIAL_POSITIONS = 256;

    private final Type type;
    private final int layers, slots, capacity, kRow, vRow, heads, kHead, vHead;
    private int reserved;                // positions per slot allocated now, ≤ capacity
    private final Arena[] arenas;        // per layer: owns k[l] and v[l], closed when the layer grows
    private final MemorySegment[] k;     // per layer (slots, heads, reserved, kHead)
    private final MemorySegment[] v;     // per layer (slots, heads, reserved, vHead); null when vRow = 0
    private final int[] length;          // (slots) positions filled

    /** A cache whose K and V rows both have {@code kvDim} elements. */
    public KvCache(Type type, int layers, int slots, int capacity, int kvDim) {
        this(type, layers, slots, capacity, kvDim, kvDim);
    }

    public KvCache(Type type, int layers, int slots, int capacity, int kRow, int vRow) {
        this(type, layers, slots, capacity, kRow, vRow, 1);
    }

    /** A cache whose rows split into {@code heads} KV heads, each stored head-major (see the class comment). */
    public KvCache(Type type, int layers, int slots, int capacity, int kRow, int vRow, int heads) {
        if (layers < 1 || slots < 1 || capacity < 1 || kRow < 1 || vRow < 0 || heads < 1) {
            throw new IllegalArgumentException("KV cache needs layers, slots, capacity, kRow, heads >= 1 and vRow >= 0, got "
                    + layers + ", " + slots + ", " + capacity + ", " + kRow + ", " + vRow + ", " + heads);
        }
        if (kRow % heads != 0 || vRow % heads != 0 || (vRow == 0 && heads != 1)) {
            throw new IllegalArgumentException("KV rows of " + kRow + " / " + vRow + " elements do not split into " + heads + " heads");
        }
        this.heads = heads;
        this.kHead = kRow / heads;
        this.vHead = vRow / heads;
        this.type = type;
        this.layers = layers;
        this.slots = slots;
        this.capacity = capacity;
        this.kRow = kRow;
        this.vRow = vRow;
        // the full size must be addressable even if it is never reached
        Math.multiplyExact(Math.multiplyExact((long) slots * capacity, (long) Math.max(kRow, vRow)), (long) type.bytes);
        this.k = new MemorySegment[layers];
        this.v = new MemorySegment[layers];
        this.arenas = new Arena[layers];
        this.length = new int[slots];
        this.reserved = Math.min(capacity, INITIAL_POSITIONS);
        for (int l = 0; l < layers; l++) allocate(l, reserved);
    }

    /** Points layer l at fresh zeroed segments of {@code positions} per slot in a new arena (the old one stays open). */
    private void allocate(int l, int positions) {
        Arena a = Arena.ofShared();
        long cells = (long) slots * positions;
        k[l] = a.allocate(cells * kRow * type.bytes, 64);
        if (vRow > 0) v[l] = a.allocate(cells * vRow * type.bytes, 64);
        arenas[l] = a;
    }

    /**
     * Makes room for {@code positions} positions in every slot (at most {@link #capacity()}): grows the allocation
     * to at least double its size, copying the filled rows of each slot, one layer at a time so that the extra
     * memory at any moment is one layer's. Not thread-safe with reads (the engine calls it before a forward step).
     */
    public void reserve(int positions) {
        if (positions > capacity) throw new IllegalArgumentException(positions + " positions exceed the cache capacity " + capacity);
        if (positions <= reserved) return;
        int grown = (int) Math.min(capacity, Math.max(positions, 2L * reserved));
        int old = reserved;
        for (int l = 0; l < layers; l++) {
            Arena oldArena = arenas[l];
            MemorySegment ok = k[l], ov = v[l];
            allocate(l, grown);
            for (int s = 0; s < slots; s++) {
                long n = length[s];
                for (int h = 0; h < heads; h++) {
                    long from = (long) s * heads + h;
                    MemorySegment.copy(ok, from * old * kHead * type.bytes, k[l], from * grown * kHead * type.bytes, n * kHead * type.bytes);
                    if (vRow > 0) MemorySegment.copy(ov, from * old * vHead * type.bytes, v[l], from * grown * vHead * type.bytes, n * vHead * type.bytes);
                }
            }
            oldArena.close();
        }
        reserved = grown;
    }

    /** Positions per slot allocated now (≤ capacity); grows by {@link #reserve}. */
    public int reserved() { return reserved; }

    public Type type() { return type; }
    public int slots() { return slots; }
    /** The most positions a slot may hold (the context length); memory is allocated for {@link #reserved()}. */
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

    /** Bytes of native memory held now. */
    public long byteSize() { return (long) layers * (k[0].byteSize() + (v[0] == null ? 0 : v[0].byteSize())); }

    /** Cell index of (slot, head, pos): times the head width, the element index of its first element. */
    private long cell(int slot, int head, int pos) { return ((long) slot * heads + head) * reserved + pos; }

    /** Stores kRow floats of K (and vRow of V, if any) for (layer, slot, pos) from F32 segments at float offsets. */
    void store(int layer, int slot, int pos, MemorySegment kSrc, long kOff, MemorySegment vSrc, long vOff) {
        if (pos >= reserved) throw new IllegalStateException("position " + pos + " not reserved (" + reserved + "): call reserve first");
        for (int h = 0; h < heads; h++) {
            put(k[layer], cell(slot, h, pos) * kHead, kSrc, kOff + (long) h * kHead, kHead);
            if (vRow > 0) put(v[layer], cell(slot, h, pos) * vHead, vSrc, vOff + (long) h * vHead, vHead);
        }
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

    /** Element index of (slot, head, pos, 0) in {@link #k}; positions of one head are {@code kRow/heads} apart. */
    long kOffset(int slot, int head, int pos) { return cell(slot, head, pos) * kHead; }

    /** Element index of (slot, head, pos, 0) in {@link #v} (in K when vRow = 0). */
    long vOffset(int slot, int head, int pos) { return cell(slot, head, pos) * (vRow > 0 ? vHead : kHead); }

    /** KV heads the rows are split into. */
    public int heads() { return heads; }

    /** Decodes n F16 elements at element index {@code at} of {@code seg} into dst (float offset dstOff). */
    static void decodeF16(MemorySegment seg, long at, int n, MemorySegment dst, long dstOff) {
        for (int j = 0; j < n; j++) dst.setAtIndex(F32, dstOff + j, Fp16.decode(seg.getAtIndex(F16, at + j)));
    }

    @Override
    public void close() {
        for (Arena a : arenas) if (a != null && a.scope().isAlive()) a.close();
    }
}
