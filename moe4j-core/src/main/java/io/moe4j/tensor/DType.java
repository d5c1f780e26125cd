package io.moe4j.tensor;

/**
 * Element types of moe4j tensors, described as data: how many logical elements a block holds and how many
 * bytes one block takes. Scalar types are blocks of one element.
 *
 * <p>The quantized types are bit-compatible with GGML's block layouts (little-endian):
 * <ul>
 *   <li>{@link #Q8_0}: {@code struct { fp16 d; int8 qs[32]; }} — 34 bytes, value = qs[i] * d.</li>
 *   <li>{@link #Q4_0}: {@code struct { fp16 d; uint8 qs[16]; }} — 18 bytes; element i (0..15) is the low nibble
 *       of qs[i], element i+16 the high nibble; value = (q - 8) * d.</li>
 *   <li>{@link #Q4_K}: super-blocks of 256 = 8 sub-blocks of 32, {@code struct { fp16 d; fp16 dmin; uint8
 *       scales[12]; uint8 qs[128]; }} — 144 bytes; 6-bit scale and min per sub-block, 4-bit quants;
 *       value = d·sc·q − dmin·m (see {@link io.moe4j.tensor.quant.Q4_K}).</li>
 *   <li>{@link #Q6_K}: super-blocks of 256 = 16 sub-blocks of 16, {@code struct { uint8 ql[128]; uint8 qh[64];
 *       int8 scales[16]; fp16 d; }} — 210 bytes; value = d·sc·(q − 32), q 6-bit (see
 *       {@link io.moe4j.tensor.quant.Q6_K}).</li>
 * </ul>
 * The {@link #ggmlId} is GGML's {@code enum ggml_type} value, used by the GGUF reader and writer.
 *
 * <p>Two more types exist in memory only, never in a file ({@link #ggmlId} −1, {@link #inMemoryOnly()}):
 * {@link #Q8_0_R16} and {@link #Q4_0_R16}, Q8_0 / Q4_0 matrices repacked at load time with 16 rows interleaved
 * per block (layout: {@link io.moe4j.tensor.quant.RowGroups}). Their {@link #bytesPerBlock} is a row's share of a
 * 16-row block, so {@code rows · byteSize(cols)} is still a matrix's size; a single row is not addressable.
 *
 * <p>Non-goal: this enum does not know how to encode or decode; see {@link io.moe4j.tensor.quant.Quant}.
 */
public enum DType {
    F32(1, 4, 0),
    F16(1, 2, 1),
    BF16(1, 2, 30),
    Q8_0(32, 34, 8),
    Q4_0(32, 18, 2),
    Q4_K(256, 144, 12),
    Q6_K(256, 210, 14),
    /** Q8_0 repacked in groups of 16 rows (in memory only, see {@link io.moe4j.tensor.quant.RowGroups}). */
    Q8_0_R16(32, 36, -1),
    /** Q4_0 repacked in groups of 16 rows (in memory only, see {@link io.moe4j.tensor.quant.RowGroups}). */
    Q4_0_R16(32, 20, -1);

    private final int blockSize;
    private final int bytesPerBlock;
    private final int ggmlId;

    DType(int blockSize, int bytesPerBlock, int ggmlId) {
        this.blockSize = blockSize;
        this.bytesPerBlock = bytesPerBlock;
        this.ggmlId = ggmlId;
    }

    /** Logical elements per block (1 for scalar types). */
    public int blockSize() { return blockSize; }

    /** Bytes per block. */
    public int bytesPerBlock() { return bytesPerBlock; }

    /** GGML's type id for this format. */
    public int ggmlId() { return ggmlId; }

    public boolean isQuantized() { return blockSize > 1; }

    /** A load-time layout with no GGML counterpart: never read from or written to a file. */
    public boolean inMemoryOnly() { return ggmlId < 0; }

    /** The file types (those with a GGML id), for messages that list what a file may contain. */
    public static java.util.List<DType> fileTypes() {
        return java.util.Arrays.stream(values()).filter(t -> !t.inMemoryOnly()).toList();
    }

    /**
     * Bytes needed for {@code elements} consecutive elements.
     *
     * @throws IllegalArgumentException if {@code elements} is negative or not a whole number of blocks
     */
    public long byteSize(long elements) {
        if (elements < 0) throw new IllegalArgumentException("negative element count " + elements);
        if (elements % blockSize != 0) {
            throw new IllegalArgumentException(this + " stores whole blocks of " + blockSize
                    + " elements; " + elements + " is not a multiple of " + blockSize);
        }
        return Math.multiplyExact(elements / blockSize, (long) bytesPerBlock);
    }

    /** The type with GGML id {@code id}, or {@code null} if moe4j does not support it. */
    public static DType ofGgmlId(int id) {
        if (id < 0) return null;
        for (DType t : values()) if (t.ggmlId == id) return t;
        return null;
    }
}
