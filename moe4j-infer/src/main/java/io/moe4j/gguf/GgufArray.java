package io.moe4j.gguf;

import java.io.ByteArrayOutputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.AbstractList;
import java.util.List;
import java.util.Objects;

/**
 * A GGUF metadata array: an element type, a length and the elements in their wire encoding.
 *
 * <p>Arrays read from a file are <em>views of the memory-mapped file</em>, not copies: a tokenizer's 150 000
 * tokens cost no heap until they are read, and a hostile file cannot make the reader allocate per element. They
 * stay readable until the {@link GgufFile} is closed. Fixed-size elements are addressed directly; strings and
 * nested arrays have variable sizes, so the array keeps the byte position of every {@value #STRIDE}th element and
 * walks at most {@value #STRIDE}−1 elements from there (heap used: 1/32 of an index, at most 1/256 of the bytes).
 *
 * <p>Arrays built in memory ({@link #ofStrings}, {@link #ofLongs}, …) are encoded the same way into a heap
 * segment, so writing one is a byte copy and {@link #equals} compares encodings.
 *
 * <p>Non-goal: mutation. Build a new array instead.
 */
public final class GgufArray {
    /** Distance between remembered element positions for variable-size elements. */
    static final int STRIDE = 32;

    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final GgufValueType elementType;
    private final long size;
    private final MemorySegment data;      // the elements' wire bytes, nothing before or after
    private final long[] checkpoints;      // byte position of element k*STRIDE in data; null for fixed-size types
    private final String origin;           // file name, for messages from nested parsing

    GgufArray(GgufValueType elementType, long size, MemorySegment data, long[] checkpoints, String origin) {
        this.elementType = elementType;
        this.size = size;
        this.data = data;
        this.checkpoints = checkpoints;
        this.origin = origin;
    }

    // ---------------------------------------------------------------- building

    public static GgufArray ofStrings(List<String> values) {
        Encoder e = new Encoder();
        for (String s : values) e.string(Objects.requireNonNull(s, "null string in array"));
        return e.finish(GgufValueType.STRING, values.size());
    }

    public static GgufArray ofStrings(String... values) { return ofStrings(List.of(values)); }

    /** An integer array of {@code type} (UINT8 … INT64); values must be in the type's range (UINT64: raw bits). */
    public static GgufArray ofLongs(GgufValueType type, long... values) {
        if (!type.isInteger()) throw new IllegalArgumentException(type + " is not an integer type");
        Encoder e = new Encoder();
        for (long v : values) {
            new GgufValue(type, v);        // range check
            e.fixed(v, type.size());
        }
        return e.finish(type, values.length);
    }

    public static GgufArray ofInts(int... values) {
        Encoder e = new Encoder();
        for (int v : values) e.fixed(v, 4);
        return e.finish(GgufValueType.INT32, values.length);
    }

    public static GgufArray ofFloats(float... values) {
        Encoder e = new Encoder();
        for (float v : values) e.fixed(Float.floatToRawIntBits(v), 4);
        return e.finish(GgufValueType.FLOAT32, values.length);
    }

    public static GgufArray ofDoubles(double... values) {
        Encoder e = new Encoder();
        for (double v : values) e.fixed(Double.doubleToRawLongBits(v), 8);
        return e.finish(GgufValueType.FLOAT64, values.length);
    }

    public static GgufArray ofBooleans(boolean... values) {
        Encoder e = new Encoder();
        for (boolean v : values) e.fixed(v ? 1 : 0, 1);
        return e.finish(GgufValueType.BOOL, values.length);
    }

    /** An array of arrays (GGUF allows the children to have different element types). */
    public static GgufArray ofArrays(List<GgufArray> values) {
        Encoder e = new Encoder();
        for (GgufArray a : values) e.array(a);
        return e.finish(GgufValueType.ARRAY, values.size());
    }

    // ---------------------------------------------------------------- reading

    public GgufValueType elementType() { return elementType; }

    /** Number of elements (a long: the format allows more than 2^31). */
    public long size() { return size; }

    /** Encoded size of the elements in bytes (without the 12-byte type and length prefix). */
    public long byteSize() { return data.byteSize(); }

    /** The elements' wire bytes (a view; for a file-backed array, a slice of the mapping). */
    public MemorySegment rawData() { return data; }

    /** Integer element {@code i} (unsigned types zero-extended; UINT64 as raw bits). */
    public long getLong(long i) {
        check(i);
        long off = i * elementType.size();
        return switch (elementType) {
            case UINT8 -> Byte.toUnsignedLong(data.get(ValueLayout.JAVA_BYTE, off));
            case INT8 -> data.get(ValueLayout.JAVA_BYTE, off);
            case UINT16 -> Short.toUnsignedLong(data.get(I16, off));
            case INT16 -> data.get(I16, off);
            case UINT32 -> Integer.toUnsignedLong(data.get(I32, off));
            case INT32 -> data.get(I32, off);
            case UINT64, INT64 -> data.get(I64, off);
            default -> throw new IllegalStateException("array of " + elementType + ", not integers");
        };
    }

    public double getDouble(long i) {
        check(i);
        return switch (elementType) {
            case FLOAT32 -> data.get(F32, i * 4);
            case FLOAT64 -> data.get(F64, i * 8);
            default -> {
                if (!elementType.isInteger()) throw new IllegalStateException("array of " + elementType + ", not numbers");
                yield elementType == GgufValueType.UINT64 ? GgufValue.u64(getLong(i)).asDouble() : getLong(i);
            }
        };
    }

    public float getFloat(long i) { return (float) getDouble(i); }

    /** Boolean element; any non-zero byte is true, as in llama.cpp. */
    public boolean getBoolean(long i) {
        check(i);
        requireType(GgufValueType.BOOL);
        return data.get(ValueLayout.JAVA_BYTE, i) != 0;
    }

    public String getString(long i) {
        check(i);
        requireType(GgufValueType.STRING);
        long pos = position(i);
        long len = data.get(I64, pos);
        return new String(data.asSlice(pos + 8, len).toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8);
    }

    public GgufArray getArray(long i) {
        check(i);
        requireType(GgufValueType.ARRAY);
        try {
            return new GgufParser(data, origin, position(i)).array("nested array", 1);
        } catch (GgufFormatException e) {
            // the bytes were validated when the array was built, so this means the mapping changed under us
            throw new IllegalStateException("nested array changed after validation: " + e.getMessage(), e);
        }
    }

    /** Element {@code i} as a {@link GgufValue}. */
    public GgufValue get(long i) {
        return switch (elementType) {
            case FLOAT32 -> GgufValue.f32((float) getDouble(i));
            case FLOAT64 -> GgufValue.f64(getDouble(i));
            case BOOL -> GgufValue.bool(getBoolean(i));
            case STRING -> GgufValue.string(getString(i));
            case ARRAY -> GgufValue.array(getArray(i));
            default -> new GgufValue(elementType, getLong(i));
        };
    }

    /** A lazy list view of a string array (elements decode on access). */
    public List<String> strings() {
        requireType(GgufValueType.STRING);
        int n = intSize();
        return new AbstractList<>() {
            @Override public String get(int index) { return getString(index); }
            @Override public int size() { return n; }
        };
    }

    /** Copies an integer array to the heap. */
    public long[] toLongArray() {
        long[] out = new long[intSize()];
        for (int i = 0; i < out.length; i++) out[i] = getLong(i);
        return out;
    }

    /** Copies a numeric array to the heap as floats. */
    public float[] toFloatArray() {
        float[] out = new float[intSize()];
        for (int i = 0; i < out.length; i++) out[i] = getFloat(i);
        return out;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof GgufArray a && a.elementType == elementType && a.size == size
                && data.byteSize() == a.data.byteSize() && data.mismatch(a.data) < 0;
    }

    @Override
    public int hashCode() {
        return Objects.hash(elementType, size, data.byteSize());
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("[");
        long shown = Math.min(size, 8);
        for (long i = 0; i < shown; i++) sb.append(i > 0 ? ", " : "").append(get(i));
        if (size > shown) sb.append(", … ").append(size - shown).append(" more");
        return sb.append("] (").append(elementType).append(" × ").append(size).append(")").toString();
    }

    // ---------------------------------------------------------------- internals

    private long position(long i) {
        long pos = checkpoints[(int) (i / STRIDE)];
        for (long k = i - i % STRIDE; k < i; k++) pos = skip(pos);
        return pos;
    }

    /** Position after the element at {@code pos}; only called on validated bytes. */
    private long skip(long pos) {
        if (elementType == GgufValueType.STRING) return pos + 8 + data.get(I64, pos);
        return skipArray(data, pos);
    }

    private static long skipArray(MemorySegment seg, long pos) {
        GgufValueType t = GgufValueType.ofId(Integer.toUnsignedLong(seg.get(I32, pos)));
        long n = seg.get(I64, pos + 4);
        pos += 12;
        if (t.size() > 0) return pos + n * t.size();
        for (long k = 0; k < n; k++) {
            pos = t == GgufValueType.STRING ? pos + 8 + seg.get(I64, pos) : skipArray(seg, pos);
        }
        return pos;
    }

    private int intSize() {
        if (size > Integer.MAX_VALUE - 8) throw new IllegalStateException("array of " + size + " elements is too long for a Java array");
        return (int) size;
    }

    private void check(long i) {
        if (i < 0 || i >= size) throw new IndexOutOfBoundsException("index " + i + " of an array of " + size);
    }

    private void requireType(GgufValueType t) {
        if (elementType != t) throw new IllegalStateException("array of " + elementType + ", not " + t);
    }

    /** Builds the wire encoding of an in-memory array and its element positions. */
    private static final class Encoder {
        private final ByteArrayOutputStream out = new ByteArrayOutputStream();
        private long[] checkpoints = new long[4];
        private long count;

        void fixed(long bits, int bytes) {
            for (int b = 0; b < bytes; b++) out.write((int) (bits >>> (8 * b)));
            count++;
        }

        void string(String s) {
            mark();
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            for (int k = 0; k < 8; k++) out.write((int) ((long) b.length >>> (8 * k)));
            out.writeBytes(b);
            count++;
        }

        void array(GgufArray a) {
            mark();
            for (int k = 0; k < 4; k++) out.write(a.elementType.id() >>> (8 * k));
            for (int k = 0; k < 8; k++) out.write((int) (a.size >>> (8 * k)));
            out.writeBytes(a.data.toArray(ValueLayout.JAVA_BYTE));
            count++;
        }

        private void mark() {
            if (count % STRIDE != 0) return;
            int k = (int) (count / STRIDE);
            if (k == checkpoints.length) checkpoints = java.util.Arrays.copyOf(checkpoints, k * 2);
            checkpoints[k] = out.size();
        }

        GgufArray finish(GgufValueType type, long n) {
            long[] cps = type.size() > 0 ? null : java.util.Arrays.copyOf(checkpoints, (int) ((n + STRIDE - 1) / STRIDE));
            return new GgufArray(type, n, MemorySegment.ofArray(out.toByteArray()), cps, "<memory>");
        }
    }
}
