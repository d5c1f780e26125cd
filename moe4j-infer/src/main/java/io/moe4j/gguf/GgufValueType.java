package io.moe4j.gguf;

/**
 * The thirteen GGUF metadata value types ({@code enum gguf_type}) with their wire ids and fixed sizes.
 * {@link #STRING} and {@link #ARRAY} have variable sizes; {@link #minSize()} is what the smallest such value takes,
 * which is how the reader bounds element counts by the bytes that remain in the file.
 */
public enum GgufValueType {
    UINT8(0, 1), INT8(1, 1), UINT16(2, 2), INT16(3, 2), UINT32(4, 4), INT32(5, 4), FLOAT32(6, 4),
    BOOL(7, 1),
    /** uint64 length + UTF-8 bytes (no terminator). */
    STRING(8, -1),
    /** uint32 element type + uint64 count + elements. */
    ARRAY(9, -1),
    UINT64(10, 8), INT64(11, 8), FLOAT64(12, 8);

    private static final GgufValueType[] BY_ID = values();

    private final int id;
    private final int size;

    GgufValueType(int id, int size) {
        this.id = id;
        this.size = size;
    }

    /** Wire id. */
    public int id() { return id; }

    /** Encoded size in bytes, or -1 for {@link #STRING} and {@link #ARRAY}. */
    public int size() { return size; }

    /** Fewest bytes one value of this type can take in a file. */
    public int minSize() {
        return switch (this) {
            case STRING -> 8;
            case ARRAY -> 12;
            default -> size;
        };
    }

    public boolean isInteger() {
        return switch (this) {
            case UINT8, INT8, UINT16, INT16, UINT32, INT32, UINT64, INT64 -> true;
            default -> false;
        };
    }

    public boolean isFloat() { return this == FLOAT32 || this == FLOAT64; }

    /** The type with wire id {@code id}, or {@code null}. */
    public static GgufValueType ofId(long id) {
        return id >= 0 && id < BY_ID.length ? BY_ID[(int) id] : null;
    }
}
