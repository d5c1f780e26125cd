package io.moe4j.infer;

import io.moe4j.tensor.DType;

import java.lang.foreign.MemorySegment;

/**
 * A weight matrix (or a stack of them) left where it is — in the memory-mapped GGUF file, in its GGML type — with
 * the geometry the matmul kernels need: {@code count} matrices of {@code rows × cols} ({@code y = W x}, x of
 * length cols), matrix {@code i} starting at byte {@link #offset(int)}. A plain projection has {@code count = 1};
 * a stacked expert tensor ({@code ffn_up_exps} ...) has one matrix per expert.
 *
 * @param name  GGUF tensor name, for messages
 * @param data  the tensor's bytes (a slice of the mapping: zero-copy)
 * @param type  element type
 * @param count matrices in the stack
 * @param rows  output features
 * @param cols  input features (a multiple of the type's block size)
 * @param base  byte offset of matrix 0 in {@code data}
 * @param stride bytes from one matrix of the stack to the next (rows · rowBytes when the stack is not a view)
 */
public record Matrix(String name, MemorySegment data, DType type, int count, int rows, int cols, long base, long stride) {

    /** A plain stack: matrices back to back from byte 0. */
    public Matrix(String name, MemorySegment data, DType type, int count, int rows, int cols) {
        this(name, data, type, count, rows, cols, 0, rows * type.byteSize(cols));
    }

    /**
     * Rows {@code [from, from + n)} of every matrix of this stack, as a stack of (n, cols) matrices over the same
     * bytes: how a fused {@code ffn_gate_up_exps} (gate rows, then up rows, per expert) splits into two stacks.
     */
    public Matrix rows(String viewName, int from, int n) {
        if (from < 0 || n < 1 || from + n > rows) throw new IllegalArgumentException("rows [" + from + ", " + (from + n) + ") outside [0, " + rows + ")");
        if (type.inMemoryOnly() && (from % 16 != 0 || n % 16 != 0)) {
            throw new IllegalArgumentException(name + " is in 16-row groups; rows [" + from + ", " + (from + n) + ") split a group");
        }
        return new Matrix(viewName, data, type, count, n, cols, base + from * rowBytes(), stride);
    }

    /** Bytes of one matrix row. */
    public long rowBytes() { return type.byteSize(cols); }

    /** Byte offset of matrix {@code i} of the stack. */
    public long offset(int i) { return base + i * stride; }

    /** Bytes of one matrix: what computing one expert reads. */
    public long matrixBytes() { return rows * rowBytes(); }
}
