package io.moe4j.gguf;

import io.moe4j.tensor.DType;

/**
 * GGML's tensor element types as data: the {@code enum ggml_type} id, the name llama.cpp prints, how many
 * elements one block holds and how many bytes a block takes (the {@code GGML_QUANT_SIZES} table of gguf-py and
 * the {@code static_assert}ed block structs of {@code ggml-common.h}).
 *
 * <p>Every standard type a GGUF file can carry is listed, so {@code moe4j inspect} can show sizes of files whose
 * tensors moe4j cannot compute with. Ids that GGML retired (4, 5: Q4_2/Q4_3; 31–33 and 36–38: the
 * repacked Q4_0_x_y/IQ4_NL_x_y layouts, which were never meant to be stored) are absent on purpose: a file that
 * uses them is rejected as malformed, as llama.cpp does.
 *
 * <p>Non-goal: decoding. Only the types with a {@link #dtype()} have kernels in moe4j-core.
 */
public enum GgmlType {
    F32(0, 1, 4, DType.F32),
    F16(1, 1, 2, DType.F16),
    Q4_0(2, 32, 18, DType.Q4_0),
    Q4_1(3, 32, 20, null),
    Q5_0(6, 32, 22, null),
    Q5_1(7, 32, 24, null),
    Q8_0(8, 32, 34, DType.Q8_0),
    // block_q8_1 is {half d; half s; int8 qs[32]} = 36 bytes (gguf-py's older table said 40); only used for
    // activations, never stored, but listed so the id is recognised.
    Q8_1(9, 32, 36, null),
    Q2_K(10, 256, 84, null),
    Q3_K(11, 256, 110, null),
    Q4_K(12, 256, 144, DType.Q4_K),
    Q5_K(13, 256, 176, null),
    Q6_K(14, 256, 210, DType.Q6_K),
    Q8_K(15, 256, 292, null),
    IQ2_XXS(16, 256, 66, null),
    IQ2_XS(17, 256, 74, null),
    IQ3_XXS(18, 256, 98, null),
    IQ1_S(19, 256, 50, null),
    IQ4_NL(20, 32, 18, null),
    IQ3_S(21, 256, 110, null),
    IQ2_S(22, 256, 82, null),
    IQ4_XS(23, 256, 136, null),
    I8(24, 1, 1, null),
    I16(25, 1, 2, null),
    I32(26, 1, 4, null),
    I64(27, 1, 8, null),
    F64(28, 1, 8, null),
    IQ1_M(29, 256, 56, null),
    BF16(30, 1, 2, DType.BF16),
    TQ1_0(34, 256, 54, null),
    TQ2_0(35, 256, 66, null),
    MXFP4(39, 32, 17, null),
    NVFP4(40, 64, 36, null),
    Q1_0(41, 128, 18, null);

    private static final GgmlType[] BY_ID = new GgmlType[64];

    static {
        for (GgmlType t : values()) BY_ID[t.id] = t;
    }

    private final int id;
    private final int blockSize;
    private final int typeSize;
    private final DType dtype;

    GgmlType(int id, int blockSize, int typeSize, DType dtype) {
        this.id = id;
        this.blockSize = blockSize;
        this.typeSize = typeSize;
        this.dtype = dtype;
    }

    /** GGML's {@code enum ggml_type} value, as stored in a GGUF tensor info. */
    public int id() { return id; }

    /** Elements per block (1 for scalar types). */
    public int blockSize() { return blockSize; }

    /** Bytes per block. */
    public int typeSize() { return typeSize; }

    /** The moe4j element type with the same bit layout, or {@code null} if moe4j cannot compute with this type. */
    public DType dtype() { return dtype; }

    /**
     * Bytes taken by {@code elements} consecutive elements.
     *
     * @throws ArithmeticException if the count is not whole blocks or the size overflows a {@code long}
     */
    public long byteSize(long elements) {
        if (elements < 0 || elements % blockSize != 0) {
            throw new ArithmeticException(elements + " elements is not a whole number of " + name() + " blocks of " + blockSize);
        }
        return Math.multiplyExact(elements / blockSize, (long) typeSize);
    }

    /** The type with GGML id {@code id}, or {@code null} for unknown or retired ids. */
    public static GgmlType ofId(long id) {
        return id >= 0 && id < BY_ID.length ? BY_ID[(int) id] : null;
    }

    /** The GGML type with the same layout as a moe4j type (every {@link DType} has one). */
    public static GgmlType of(DType dtype) {
        GgmlType t = ofId(dtype.ggmlId());
        if (t == null || t.dtype != dtype) throw new IllegalArgumentException("no GGML type for " + dtype);
        return t;
    }
}
