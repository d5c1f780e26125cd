package io.moe4j.tensor;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;

/**
 * An n-dimensional view over a {@link MemorySegment}: element type, shape, strides and an offset.
 *
 * <p>Storage is off-heap (arena-managed) or a memory-mapped file region of any size (no 2 GiB limit, no copy).
 * Views ({@link #slice}, {@link #select}, {@link #transpose}, {@link #reshape}) share the storage.
 *
 * <p>Strides and offsets count <em>elements</em> for scalar types. For quantized types the innermost dimension
 * must be contiguous and a whole number of blocks; strides of outer dimensions still count elements (they are
 * multiples of the block size), so byte offsets are {@code dtype.byteSize(elementOffset)}.
 *
 * <p>Non-goals: no autograd, no broadcasting arithmetic. Compute goes through {@link io.moe4j.kernel.Kernels}
 * on the raw segment plus offsets and leading dimensions.
 */
public final class Tensor {
    private static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final MemorySegment data;
    private final DType dtype;
    private final long[] shape;
    private final long[] strides;
    private final long offset;

    private Tensor(MemorySegment data, DType dtype, long[] shape, long[] strides, long offset) {
        this.data = data;
        this.dtype = dtype;
        this.shape = shape;
        this.strides = strides;
        this.offset = offset;
    }

    // ---------------------------------------------------------------- creation

    /** A zero-filled contiguous tensor allocated in {@code arena}, 64-byte aligned. */
    public static Tensor allocate(Arena arena, DType dtype, long... shape) {
        long n = numel(shape);
        checkBlocks(dtype, shape);
        MemorySegment seg = arena.allocate(Math.max(1, dtype.byteSize(n)), 64);
        return new Tensor(seg, dtype, shape.clone(), contiguousStrides(shape), 0);
    }

    /** A contiguous tensor over existing memory (which must hold at least the tensor's bytes). */
    public static Tensor wrap(MemorySegment data, DType dtype, long... shape) {
        checkBlocks(dtype, shape);
        long bytes = dtype.byteSize(numel(shape));
        if (data.byteSize() < bytes) {
            throw new IllegalArgumentException("segment of " + data.byteSize() + " bytes is too small for "
                    + dtype + Arrays.toString(shape) + " (" + bytes + " bytes)");
        }
        return new Tensor(data, dtype, shape.clone(), contiguousStrides(shape), 0);
    }

    /**
     * Maps {@code [byteOffset, byteOffset + bytes)} of a file read-only into {@code arena}. The region may exceed
     * 2 GiB; pages load on first touch.
     */
    public static MemorySegment mapFile(Path file, long byteOffset, long bytes, Arena arena) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            if (byteOffset < 0 || bytes < 0 || byteOffset > size || bytes > size - byteOffset) {
                throw new IOException(file + ": region [" + byteOffset + ", +" + bytes + ") lies beyond the end of the file ("
                        + size + " bytes)");
            }
            return ch.map(FileChannel.MapMode.READ_ONLY, byteOffset, bytes, arena);
        }
    }

    /** A contiguous F32 tensor holding a copy of {@code values}. */
    public static Tensor ofFloats(Arena arena, float[] values, long... shape) {
        if (numel(shape) != values.length) {
            throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " holds " + numel(shape)
                    + " elements, got " + values.length);
        }
        Tensor t = allocate(arena, DType.F32, shape);
        MemorySegment.copy(values, 0, t.data, F32_LE, 0, values.length);
        return t;
    }

    // ---------------------------------------------------------------- accessors

    public MemorySegment segment() { return data; }
    public DType dtype() { return dtype; }
    public int rank() { return shape.length; }
    public long size(int dim) { return shape[dim(dim)]; }
    public long stride(int dim) { return strides[dim(dim)]; }
    public long[] shape() { return shape.clone(); }
    public long[] strides() { return strides.clone(); }
    /** Offset of element (0,…,0) in elements from the start of {@link #segment()}. */
    public long offset() { return offset; }
    /** Offset of element (0,…,0) in bytes (the offset is always at a block boundary). */
    public long byteOffset() { return dtype.byteSize(offset); }
    public long numel() { return numel(shape); }

    /** True if the elements are laid out row-major without gaps. */
    public boolean isContiguous() {
        return Arrays.equals(strides, contiguousStrides(shape));
    }

    // ---------------------------------------------------------------- views

    /** Elements {@code [start, end)} along {@code dim}. */
    public Tensor slice(int dim, long start, long end) {
        int d = dim(dim);
        if (start < 0 || end > shape[d] || start > end) {
            throw new IndexOutOfBoundsException("slice [" + start + ", " + end + ") of dimension " + d + " with size " + shape[d]);
        }
        if (d == shape.length - 1 && dtype.isQuantized() && (start % dtype.blockSize() != 0 || end % dtype.blockSize() != 0)) {
            throw new IllegalArgumentException(dtype + " rows can only be sliced at block boundaries");
        }
        long[] s = shape.clone();
        s[d] = end - start;
        return new Tensor(data, dtype, s, strides, offset + start * strides[d]);
    }

    /** Index {@code index} of dimension {@code dim}, removing that dimension. */
    public Tensor select(int dim, long index) {
        int d = dim(dim);
        if (index < 0 || index >= shape[d]) {
            throw new IndexOutOfBoundsException("index " + index + " of dimension " + d + " with size " + shape[d]);
        }
        long[] s = new long[shape.length - 1];
        long[] st = new long[shape.length - 1];
        for (int i = 0, j = 0; i < shape.length; i++) {
            if (i == d) continue;
            s[j] = shape[i];
            st[j++] = strides[i];
        }
        return new Tensor(data, dtype, s, st, offset + index * strides[d]);
    }

    /** Swaps two dimensions (no copy). Not allowed for quantized types' innermost dimension. */
    public Tensor transpose(int a, int b) {
        int da = dim(a), db = dim(b);
        if (dtype.isQuantized() && (da == shape.length - 1 || db == shape.length - 1)) {
            throw new IllegalArgumentException("cannot transpose the block dimension of a " + dtype + " tensor");
        }
        long[] s = shape.clone();
        long[] st = strides.clone();
        s[da] = shape[db]; s[db] = shape[da];
        st[da] = strides[db]; st[db] = strides[da];
        return new Tensor(data, dtype, s, st, offset);
    }

    /** Same elements, new shape; requires a contiguous tensor. */
    public Tensor reshape(long... newShape) {
        if (!isContiguous()) throw new IllegalStateException("reshape needs a contiguous tensor; copy it first");
        if (numel(newShape) != numel()) {
            throw new IllegalArgumentException("cannot reshape " + Arrays.toString(shape) + " to " + Arrays.toString(newShape));
        }
        checkBlocks(dtype, newShape);
        return new Tensor(data, dtype, newShape.clone(), contiguousStrides(newShape), offset);
    }

    // ---------------------------------------------------------------- element access (F32 only; slow path)

    /** Element offset of the given index tuple. */
    public long elementOffset(long... index) {
        if (index.length != shape.length) throw new IllegalArgumentException("expected " + shape.length + " indices");
        long off = offset;
        for (int i = 0; i < index.length; i++) {
            if (index[i] < 0 || index[i] >= shape[i]) {
                throw new IndexOutOfBoundsException("index " + index[i] + " of dimension " + i + " with size " + shape[i]);
            }
            off += index[i] * strides[i];
        }
        return off;
    }

    public float getFloat(long... index) {
        requireF32();
        return data.get(F32_LE, elementOffset(index) * 4);
    }

    public void setFloat(float v, long... index) {
        requireF32();
        data.set(F32_LE, elementOffset(index) * 4, v);
    }

    /** Copies an F32 tensor (any strides) into a new row-major float array. */
    public float[] toFloatArray() {
        requireF32();
        float[] out = new float[Math.toIntExact(numel())];
        long[] idx = new long[shape.length];
        for (int i = 0; i < out.length; i++) {
            long off = offset;
            for (int d = 0; d < shape.length; d++) off += idx[d] * strides[d];
            out[i] = data.get(F32_LE, off * 4);
            for (int d = shape.length - 1; d >= 0; d--) {
                if (++idx[d] < shape[d]) break;
                idx[d] = 0;
            }
        }
        return out;
    }

    @Override
    public String toString() {
        return "Tensor" + dtype + Arrays.toString(shape) + (isContiguous() ? "" : " strides=" + Arrays.toString(strides));
    }

    // ---------------------------------------------------------------- helpers

    private void requireF32() {
        if (dtype != DType.F32) throw new IllegalStateException("element access needs F32, tensor is " + dtype);
    }

    private int dim(int d) {
        int r = d < 0 ? d + shape.length : d;
        if (r < 0 || r >= shape.length) throw new IndexOutOfBoundsException("dimension " + d + " of a rank-" + shape.length + " tensor");
        return r;
    }

    static long numel(long[] shape) {
        long n = 1;
        for (long s : shape) {
            if (s < 0) throw new IllegalArgumentException("negative dimension in " + Arrays.toString(shape));
            n = Math.multiplyExact(n, s);
        }
        return n;
    }

    static long[] contiguousStrides(long[] shape) {
        long[] st = new long[shape.length];
        long s = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            st[i] = s;
            s *= shape[i];
        }
        return st;
    }

    private static void checkBlocks(DType dtype, long[] shape) {
        if (dtype.isQuantized() && (shape.length == 0 || shape[shape.length - 1] % dtype.blockSize() != 0)) {
            throw new IllegalArgumentException(dtype + " needs the innermost dimension to be a multiple of "
                    + dtype.blockSize() + ", shape is " + Arrays.toString(shape));
        }
    }
}
