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
 */
public record Matrix(String name, MemorySegment data, DType type, int count, int rows, int cols) {

    /** Bytes of one matrix row. */
    public long rowBytes() { return type.byteSize(cols); }

    /** Byte offset of matrix {@code i} of the stack. */
    public long offset(int i) { return i * rows * rowBytes(); }

    /** Bytes of one matrix: what computing one expert reads. */
    public long matrixBytes() { return rows * rowBytes(); }
}
