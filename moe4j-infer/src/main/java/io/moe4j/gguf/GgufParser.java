package io.moe4j.gguf;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * A bounds-checked cursor over GGUF bytes. Every read first checks that the bytes exist, and every count read from
 * the file is checked against the bytes that remain <em>before</em> anything is sized from it: {@code n} elements
 * that each need at least {@code m} bytes cannot be real if fewer than {@code n·m} bytes are left. So the heap this
 * reader uses is bounded by the file's size, whatever its header claims.
 *
 * <p>Non-goal: interpreting keys or tensors; {@link GgufFile} does that.
 */
final class GgufParser {
    /** Deepest array nesting accepted; real files use 1 (tokenizer lists) and recursion must not exhaust the stack. */
    static final int MAX_DEPTH = 8;
    /** Longest string accepted: it is decoded into one Java array. */
    static final long MAX_STRING = Integer.MAX_VALUE - 16;

    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final MemorySegment seg;
    private final String file;
    private final long size;
    private long pos;

    GgufParser(MemorySegment seg, String file, long pos) {
        this.seg = seg;
        this.file = file;
        this.size = seg.byteSize();
        this.pos = pos;
    }

    long pos() { return pos; }
    long size() { return size; }
    long remaining() { return size - pos; }

    GgufFormatException error(long at, String what) {
        return new GgufFormatException(file, at, what);
    }

    private void need(long n, String what) throws GgufFormatException {
        if (n > size - pos) {
            throw error(pos, "truncated: " + what + " needs " + n + " bytes but the file ends "
                    + (size - pos) + " bytes later (file size " + size + ")");
        }
    }

    byte[] bytes(int n, String what) throws GgufFormatException {
        need(n, what);
        byte[] b = seg.asSlice(pos, n).toArray(ValueLayout.JAVA_BYTE);
        pos += n;
        return b;
    }

    int u8(String what) throws GgufFormatException {
        need(1, what);
        return Byte.toUnsignedInt(seg.get(ValueLayout.JAVA_BYTE, pos++));
    }

    int u16(String what) throws GgufFormatException {
        need(2, what);
        int v = u8(what);
        return v | (u8(what) << 8);
    }

    int i32(String what) throws GgufFormatException {
        need(4, what);
        int v = seg.get(I32, pos);
        pos += 4;
        return v;
    }

    long i64(String what) throws GgufFormatException {
        need(8, what);
        long v = seg.get(I64, pos);
        pos += 8;
        return v;
    }

    /**
     * A count of items that each take at least {@code minItemBytes}: rejected when negative as a signed 64-bit
     * number or when the rest of the file could not hold that many.
     */
    long count(String what, int minItemBytes) throws GgufFormatException {
        long at = pos;
        long n = i64(what);
        long room = (size - pos) / minItemBytes;
        if (n < 0 || n > room) {
            throw error(at, what + " is " + Long.toUnsignedString(n) + ", but the " + (size - pos)
                    + " bytes left in the file can hold at most " + room + " (each needs at least " + minItemBytes + " bytes)");
        }
        return n;
    }

    /** A GGUF string: uint64 length + UTF-8 bytes. Malformed UTF-8 decodes to U+FFFD rather than failing. */
    String string(String what) throws GgufFormatException {
        long len = stringLength(what);
        byte[] b = seg.asSlice(pos, len).toArray(ValueLayout.JAVA_BYTE);
        pos += len;
        return new String(b, StandardCharsets.UTF_8);
    }

    /** Reads and checks a string's length, leaving the cursor at its first byte. */
    private long stringLength(String what) throws GgufFormatException {
        long at = pos;
        long len = i64(what + " length");
        if (len < 0 || len > size - pos) {
            throw error(at, what + " claims " + Long.toUnsignedString(len) + " bytes, but only " + (size - pos) + " remain in the file");
        }
        if (len > MAX_STRING) throw error(at, what + " of " + len + " bytes is longer than this reader supports");
        return len;
    }

    GgufValueType valueType(String what) throws GgufFormatException {
        long at = pos;
        long id = Integer.toUnsignedLong(i32(what));
        GgufValueType t = GgufValueType.ofId(id);
        if (t == null) throw error(at, what + " has unknown value type " + id + " (GGUF defines 0..12)");
        return t;
    }

    GgufValue value(GgufValueType t, String what) throws GgufFormatException {
        return switch (t) {
            case UINT8 -> GgufValue.u8(u8(what));
            case INT8 -> GgufValue.i8((byte) u8(what));
            case UINT16 -> GgufValue.u16(u16(what));
            case INT16 -> GgufValue.i16((short) u16(what));
            case UINT32 -> GgufValue.u32(Integer.toUnsignedLong(i32(what)));
            case INT32 -> GgufValue.i32(i32(what));
            case UINT64 -> GgufValue.u64(i64(what));
            case INT64 -> GgufValue.i64(i64(what));
            case FLOAT32 -> GgufValue.f32(Float.intBitsToFloat(i32(what)));
            case FLOAT64 -> GgufValue.f64(Double.longBitsToDouble(i64(what)));
            case BOOL -> GgufValue.bool(u8(what) != 0);
            case STRING -> GgufValue.string(string(what));
            case ARRAY -> GgufValue.array(array(what, 1));
        };
    }

    /**
     * An array at the cursor: element type, count, elements. Fixed-size elements become one slice; strings and
     * nested arrays are walked once to validate every length and to remember every {@link GgufArray#STRIDE}th
     * position.
     */
    GgufArray array(String what, int depth) throws GgufFormatException {
        long at = pos;
        if (depth > MAX_DEPTH) throw error(at, what + ": arrays nested more than " + MAX_DEPTH + " deep");
        GgufValueType et = valueType(what + " element type");
        long n = count(what + " element count", et.minSize());
        long start = pos;
        if (et.size() > 0) {
            long bytes = n * et.size();           // cannot overflow: n ≤ remaining / size
            pos += bytes;
            return new GgufArray(et, n, seg.asSlice(start, bytes), null, file);
        }
        long marks = (n + GgufArray.STRIDE - 1) / GgufArray.STRIDE;
        if (marks > Integer.MAX_VALUE - 8) throw error(at, what + " has " + n + " elements, more than this reader supports");
        long[] checkpoints = new long[(int) marks];
        for (long i = 0; i < n; i++) {
            if (i % GgufArray.STRIDE == 0) checkpoints[(int) (i / GgufArray.STRIDE)] = pos - start;
            if (et == GgufValueType.STRING) {
                long len = stringLength(what + "[" + i + "]");   // moves pos past the length field
                pos += len;
            } else {
                array(what + "[" + i + "]", depth + 1);
            }
        }
        return new GgufArray(et, n, seg.asSlice(start, pos - start), checkpoints, file);
    }
}
