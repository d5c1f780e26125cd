package io.moe4j.train.export;

import io.moe4j.nn.F32;
import io.moe4j.nn.Param;
import io.moe4j.train.model.CausalLm;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.NoSuchElementException;

/**
 * A trained model's parameters by name, and the few rewrites export needs (RoPE row permutation, zeros), in F32
 * segments that live as long as this index's arena. Names are {@code MoeTransformer}'s.
 */
final class ParamIndex implements AutoCloseable {
    private final Map<String, Param> byName = new LinkedHashMap<>();
    final Arena arena = Arena.ofConfined();

    ParamIndex(CausalLm model) {
        for (Param p : model.params()) byName.put(p.name(), p);
    }

    boolean has(String name) { return byName.containsKey(name); }

    Param get(String name) {
        Param p = byName.get(name);
        if (p == null) throw new NoSuchElementException("the model has no parameter '" + name + "' (export expects MoeTransformer's names)");
        return p;
    }

    MemorySegment data(String name) { return get(name).data(); }

    /**
     * moe4j rotates adjacent pairs (2i, 2i+1); NEOX engines rotate (i, i + hd/2). Reordering the rows of each head
     * as [0, 2, 4, …, 1, 3, 5, …] makes the NEOX rotation of the reordered projection equal moe4j's; q·k is
     * unchanged because q and k get the same order. {@code rows} = heads · hd rows of {@code cols} values.
     */
    MemorySegment neoxRows(String name, int heads, int hd, int cols) {
        MemorySegment src = data(name);
        MemorySegment dst = arena.allocate(src.byteSize(), 64);
        for (int h = 0; h < heads; h++) {
            for (int j = 0; j < hd; j++) {
                int from = h * hd + (j < hd / 2 ? 2 * j : 2 * (j - hd / 2) + 1);
                MemorySegment.copy(src, (long) from * cols * 4, dst, (long) (h * hd + j) * cols * 4, (long) cols * 4);
            }
        }
        return dst;
    }

    MemorySegment zeros(long n) {
        MemorySegment z = arena.allocate(n * 4, 64);
        F32.zero(z, 0, n);
        return z;
    }

    @Override
    public void close() { arena.close(); }
}
