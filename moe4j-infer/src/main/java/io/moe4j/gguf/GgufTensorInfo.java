package io.moe4j.gguf;

import java.util.Arrays;
import java.util.Objects;

/**
 * One tensor's entry in a GGUF header.
 *
 * <p>Shapes: GGUF (like GGML) lists dimensions fastest-varying first — {@code ne[0]} is the length of a row,
 * {@code ne[1]} the number of rows, and so on. moe4j's {@link io.moe4j.tensor.Tensor} is row-major with the
 * slowest dimension first, so {@link #shape()} is {@code ne} reversed: {@code [ne[n-1], …, ne[1], ne[0]]}. The
 * bytes are the same; nothing is transposed. Example: an MoE {@code ffn_gate_exps} with
 * {@code ne = {n_embd, n_ff, n_expert}} is the moe4j tensor {@code (n_expert, n_ff, n_embd)}, whose
 * {@code select(0, e)} is expert {@code e}'s {@code (n_ff, n_embd)} weight matrix.
 *
 * @param name     tensor name, e.g. {@code blk.0.ffn_gate_exps.weight}
 * @param ne       GGUF dimensions, fastest first (0 to 4 of them)
 * @param type     element type
 * @param offset   byte offset from the start of the file's data section
 * @param byteSize bytes the tensor occupies
 */
public record GgufTensorInfo(String name, long[] ne, GgmlType type, long offset, long byteSize) {

    public GgufTensorInfo {
        Objects.requireNonNull(name);
        ne = ne.clone();
        Objects.requireNonNull(type);
    }

    /** GGUF dimensions, fastest first (a copy). */
    @Override
    public long[] ne() { return ne.clone(); }

    public int nDims() { return ne.length; }

    /** moe4j's row-major shape: {@code ne} reversed. */
    public long[] shape() {
        long[] s = new long[ne.length];
        for (int i = 0; i < ne.length; i++) s[i] = ne[ne.length - 1 - i];
        return s;
    }

    /** Number of elements (the product of {@code ne}; validated not to overflow when read). */
    public long numel() {
        long n = 1;
        for (long d : ne) n = Math.multiplyExact(n, d);
        return n;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof GgufTensorInfo t && t.name.equals(name) && Arrays.equals(t.ne, ne) && t.type == type
                && t.offset == offset && t.byteSize == byteSize;
    }

    @Override
    public int hashCode() { return Objects.hash(name, Arrays.hashCode(ne), type, offset, byteSize); }

    @Override
    public String toString() {
        return name + " " + type + Arrays.toString(ne) + " @" + offset + " (" + byteSize + " bytes)";
    }
}
