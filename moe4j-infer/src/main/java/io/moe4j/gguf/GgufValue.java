package io.moe4j.gguf;

import java.util.Objects;

/**
 * One GGUF metadata value: its wire type and a Java value.
 *
 * <p>Representation: every integer type holds a {@link Long} (unsigned types zero-extended; a {@code UINT64}
 * above {@link Long#MAX_VALUE} holds the same 64 bits, i.e. a negative long), {@code FLOAT32} a {@link Float},
 * {@code FLOAT64} a {@link Double}, {@code BOOL} a {@link Boolean}, {@code STRING} a {@link String} and
 * {@code ARRAY} a {@link GgufArray}. Keeping the wire type lets a file be rewritten bit-for-bit.
 *
 * <p>Non-goal: implicit conversions between unrelated types; {@link #asLong()} on a string fails.
 */
public record GgufValue(GgufValueType type, Object value) {

    public GgufValue {
        Objects.requireNonNull(type, "type");
        Objects.requireNonNull(value, "value");
        switch (type) {
            case UINT8 -> checkRange(type, value, 0, 0xFFL);
            case INT8 -> checkRange(type, value, Byte.MIN_VALUE, Byte.MAX_VALUE);
            case UINT16 -> checkRange(type, value, 0, 0xFFFFL);
            case INT16 -> checkRange(type, value, Short.MIN_VALUE, Short.MAX_VALUE);
            case UINT32 -> checkRange(type, value, 0, 0xFFFF_FFFFL);
            case INT32 -> checkRange(type, value, Integer.MIN_VALUE, Integer.MAX_VALUE);
            case UINT64, INT64 -> checkRange(type, value, Long.MIN_VALUE, Long.MAX_VALUE);
            case FLOAT32 -> requireClass(type, value, Float.class);
            case FLOAT64 -> requireClass(type, value, Double.class);
            case BOOL -> requireClass(type, value, Boolean.class);
            case STRING -> requireClass(type, value, String.class);
            case ARRAY -> requireClass(type, value, GgufArray.class);
        }
    }

    public static GgufValue u8(int v) { return new GgufValue(GgufValueType.UINT8, (long) v); }
    public static GgufValue i8(int v) { return new GgufValue(GgufValueType.INT8, (long) v); }
    public static GgufValue u16(int v) { return new GgufValue(GgufValueType.UINT16, (long) v); }
    public static GgufValue i16(int v) { return new GgufValue(GgufValueType.INT16, (long) v); }
    public static GgufValue u32(long v) { return new GgufValue(GgufValueType.UINT32, v); }
    public static GgufValue i32(int v) { return new GgufValue(GgufValueType.INT32, (long) v); }
    /** {@code v} is taken as 64 unsigned bits. */
    public static GgufValue u64(long v) { return new GgufValue(GgufValueType.UINT64, v); }
    public static GgufValue i64(long v) { return new GgufValue(GgufValueType.INT64, v); }
    public static GgufValue f32(float v) { return new GgufValue(GgufValueType.FLOAT32, v); }
    public static GgufValue f64(double v) { return new GgufValue(GgufValueType.FLOAT64, v); }
    public static GgufValue bool(boolean v) { return new GgufValue(GgufValueType.BOOL, v); }
    public static GgufValue string(String v) { return new GgufValue(GgufValueType.STRING, v); }
    public static GgufValue array(GgufArray v) { return new GgufValue(GgufValueType.ARRAY, v); }

    /** Integer value; for {@code UINT64} values above {@link Long#MAX_VALUE} this throws. */
    public long asLong() {
        if (!type.isInteger()) throw new IllegalStateException("GGUF value is " + type + ", not an integer");
        long v = (Long) value;
        if (type == GgufValueType.UINT64 && v < 0) {
            throw new ArithmeticException("UINT64 value " + Long.toUnsignedString(v) + " does not fit in a long");
        }
        return v;
    }

    /** Integer value that must fit in an {@code int}. */
    public int asInt() { return Math.toIntExact(asLong()); }

    /** Floating-point or integer value as a double. */
    public double asDouble() {
        return switch (type) {
            case FLOAT32 -> (Float) value;
            case FLOAT64 -> (Double) value;
            case UINT64 -> unsignedToDouble((Long) value);
            default -> {
                if (!type.isInteger()) throw new IllegalStateException("GGUF value is " + type + ", not a number");
                yield (Long) value;
            }
        };
    }

    public boolean asBoolean() { return (Boolean) require(GgufValueType.BOOL); }
    public String asString() { return (String) require(GgufValueType.STRING); }
    public GgufArray asArray() { return (GgufArray) require(GgufValueType.ARRAY); }

    @Override
    public String toString() {
        return switch (type) {
            case UINT64 -> Long.toUnsignedString((Long) value);
            case STRING -> "\"" + value + "\"";
            default -> String.valueOf(value);
        };
    }

    private Object require(GgufValueType t) {
        if (type != t) throw new IllegalStateException("GGUF value is " + type + ", not " + t);
        return value;
    }

    private static double unsignedToDouble(long v) {
        return v >= 0 ? v : ((v >>> 1) | (v & 1)) * 2.0;
    }

    private static void checkRange(GgufValueType type, Object value, long min, long max) {
        requireClass(type, value, Long.class);
        long v = (Long) value;
        if (v < min || v > max) throw new IllegalArgumentException(v + " is out of range for " + type);
    }

    private static void requireClass(GgufValueType type, Object value, Class<?> c) {
        if (!c.isInstance(value)) {
            throw new IllegalArgumentException(type + " needs a " + c.getSimpleName() + ", got " + value.getClass().getSimpleName());
        }
    }
}
