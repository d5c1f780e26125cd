package io.moe4j.moe.variant;

import io.moe4j.kernel.Kernels;
import io.moe4j.nn.F32;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.List;

/**
 * MoLE's re-parameterisation (spec §4.16, JieShibo/MoLE {@code reparameterize.py}): since an expert's input depends
 * only on the token id, every expert output is precomputed once per vocabulary entry,
 * <pre>
 *   LUT[v, l, e, :] = FFN_{l,e}( RMSNorm_expert,l(Emb[v]) )        (V, L, E, d), layer then expert then d
 * </pre>
 * and inference reads {@code E·d} values per token per layer instead of running E MLPs. The table replaces the
 * expert weights; its size is {@code V·L·E·d} values (property 3), which is why the reference stores it in fp16 and
 * keeps it off the accelerator.
 *
 * <p>Storage {@link Storage#F16} halves the bytes at ~3 significant digits (Float.floatToFloat16, round to
 * nearest even); {@link Storage#F32} reproduces the training forward to F32 rounding.
 */
public final class MoleLookupTable {
    /** Element type of the table. */
    public enum Storage {
        F32(4), F16(2);
        final int bytes;
        Storage(int bytes) { this.bytes = bytes; }
    }

    private static final ValueLayout.OfShort HALF = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.nativeOrder());

    private final Kernels kernels;
    private final int vocab, layers, e, d;
    private final Storage storage;
    private final int[] layerIndex;     // (L) model layer index of each slot
    private final MemorySegment table;  // (V, L, E, d) in storage precision

    private MoleLookupTable(Kernels kernels, int vocab, int[] layerIndex, int e, int d, Storage storage,
                            MemorySegment table) {
        this.kernels = kernels;
        this.vocab = vocab;
        this.layers = layerIndex.length;
        this.e = e;
        this.d = d;
        this.storage = storage;
        this.layerIndex = layerIndex;
        this.table = table;
    }

    /**
     * Builds the table for {@code layers} (one slot each, in list order) from the embedding table (V, d) at float
     * offset {@code embOff}. Runs each layer's experts over the vocabulary in chunks of its maxTokens; this overwrites
     * the layers' forward activations, so call it outside a forward/backward pair.
     */
    public static MoleLookupTable build(Arena arena, List<MoleLayer> layers, MemorySegment embedding, long embOff,
                                        int vocab, Storage storage, Kernels kernels) {
        if (layers.isEmpty()) throw new IllegalArgumentException("MoLE lookup table needs at least one layer");
        if (vocab <= 0) throw new IllegalArgumentException("vocab must be > 0, got " + vocab);
        MoleConfig c0 = layers.get(0).config();
        int e = c0.numExperts(), d = c0.dModel();
        int[] index = new int[layers.size()];
        for (int l = 0; l < layers.size(); l++) {
            MoleConfig c = layers.get(l).config();
            if (c.numExperts() != e || c.dModel() != d) {
                throw new IllegalArgumentException("MoLE layer " + c.layerIndex() + " has (numExperts, dModel) = ("
                        + c.numExperts() + ", " + c.dModel() + "), layer " + c0.layerIndex() + " has (" + e + ", " + d + ")");
            }
            for (int k = 0; k < l; k++) {
                if (index[k] == c.layerIndex()) {
                    throw new IllegalArgumentException("MoLE layer index " + c.layerIndex() + " appears twice");
                }
            }
            index[l] = c.layerIndex();
        }
        if ((embOff + (long) vocab * d) * Float.BYTES > embedding.byteSize()) {
            throw new IllegalArgumentException("embedding table holds fewer than vocab = " + vocab + " rows of " + d);
        }
        long values = (long) vocab * layers.size() * e * d;
        MoleLookupTable lut = new MoleLookupTable(kernels, vocab, index, e, d, storage,
                arena.allocate(values * storage.bytes, 64));
        for (int l = 0; l < layers.size(); l++) {
            MoleLayer layer = layers.get(l);
            int chunk = layer.config().maxTokens();
            for (int v0 = 0; v0 < vocab; v0 += chunk) {
                int n = Math.min(chunk, vocab - v0);
                // embedding rows v0..v0+n are contiguous: no gather needed
                layer.expertOutputs(embedding, embOff + (long) v0 * d, n);
                MemorySegment out = layer.expertOutput();
                for (int i = 0; i < n; i++) {
                    for (int j = 0; j < e; j++) lut.store(lut.offset(v0 + i, l, j), out, layer.expertOffset(j, i));
                }
            }
        }
        return lut;
    }

    private void store(long dst, MemorySegment src, long srcOff) {
        if (storage == Storage.F32) {
            MemorySegment.copy(src, srcOff * Float.BYTES, table, dst * Float.BYTES, (long) d * Float.BYTES);
        } else {
            for (int k = 0; k < d; k++) table.setAtIndex(HALF, dst + k, Float.floatToFloat16(F32.get(src, srcOff + k)));
        }
    }

    /** Element offset of LUT[v, slot, expert, 0]. */
    private long offset(int v, int slot, int expert) { return (((long) v * layers + slot) * e + expert) * d; }

    public int vocab() { return vocab; }
    public int layers() { return layers; }
    public int numExperts() { return e; }
    public int dModel() { return d; }
    public Storage storage() { return storage; }
    /** Number of stored values, V·L·E·d. */
    public long values() { return (long) vocab * layers * e * d; }
    /** Bytes of the table. */
    public long bytes() { return values() * storage.bytes; }
    /** The raw table (V, L, E, d) in {@link #storage()} precision, native byte order. */
    public MemorySegment segment() { return table; }

    /** Slot of model layer {@code layerIndex}. */
    public int slotOf(int layerIndex) {
        for (int l = 0; l < layers; l++) if (this.layerIndex[l] == layerIndex) return l;
        throw new IllegalArgumentException("MoLE lookup table has no layer " + layerIndex);
    }

    /** LUT[v, slot, expert, k]. */
    public float get(int v, int slot, int expert, int k) {
        long o = offset(v, slot, expert) + k;
        return storage == Storage.F32 ? F32.get(table, o) : Float.float16ToFloat(table.getAtIndex(HALF, o));
    }

    /** y[yOff..yOff+d) += w · LUT[v, slot, expert, :]. */
    public void accumulate(int v, int slot, int expert, float w, MemorySegment y, long yOff) {
        long o = offset(v, slot, expert);
        if (storage == Storage.F32) {
            kernels.rows().axpy(d, w, table, o, y, yOff);
        } else {
            for (int k = 0; k < d; k++) {
                float x = Float.float16ToFloat(table.getAtIndex(HALF, o + k));
                F32.set(y, yOff + k, Math.fma(w, x, F32.get(y, yOff + k)));
            }
        }
    }

    /** Throws if a token id lies outside the vocabulary (names the position). */
    void checkTokens(int[] tokenIds, int t) {
        if (tokenIds == null || tokenIds.length < t) {
            throw new IllegalArgumentException("MoLE lookup needs " + t + " token ids, got "
                    + (tokenIds == null ? "null" : tokenIds.length));
        }
        for (int i = 0; i < t; i++) {
            if (tokenIds[i] < 0 || tokenIds[i] >= vocab) {
                throw new IllegalArgumentException("token id " + tokenIds[i] + " at position " + i
                        + " is outside the lookup table's vocabulary [0, " + vocab + ")");
            }
        }
    }
}
