package io.moe4j.gguf;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * Assembles GGUF bytes field by field, straight from the format definition and independent of {@link GgufWriter},
 * so tests can build both well-formed files the writer never produces and deliberately broken ones.
 */
final class RawGguf {
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();

    RawGguf bytes(byte... b) { out.writeBytes(b); return this; }
    RawGguf u8(int v) { out.write(v); return this; }
    RawGguf u16(int v) { return le(v, 2); }
    RawGguf u32(long v) { return le(v, 4); }
    RawGguf u64(long v) { return le(v, 8); }
    RawGguf f32(float v) { return le(Float.floatToRawIntBits(v), 4); }
    RawGguf f64(double v) { return le(Double.doubleToRawLongBits(v), 8); }

    RawGguf le(long v, int n) {
        for (int i = 0; i < n; i++) out.write((int) (v >>> (8 * i)));
        return this;
    }

    RawGguf str(String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        u64(b.length);
        return bytes(b);
    }

    /** "GGUF", version, n_tensors, n_kv. */
    RawGguf header(int version, long nTensors, long nKv) {
        return bytes((byte) 'G', (byte) 'G', (byte) 'U', (byte) 'F').u32(version).u64(nTensors).u64(nKv);
    }

    /** A key with a value type id; the caller appends the value. */
    RawGguf key(String key, GgufValueType type) { return str(key).u32(type.id()); }

    /** A tensor info: name, n_dims, ne..., type, offset. */
    RawGguf tensorInfo(String name, int type, long offset, long... ne) {
        str(name).u32(ne.length);
        for (long d : ne) u64(d);
        return u32(type).u64(offset);
    }

    /** Zero bytes up to a multiple of {@code alignment}. */
    RawGguf align(int alignment) {
        while (out.size() % alignment != 0) out.write(0);
        return this;
    }

    int size() { return out.size(); }

    byte[] toByteArray() { return out.toByteArray(); }
}
