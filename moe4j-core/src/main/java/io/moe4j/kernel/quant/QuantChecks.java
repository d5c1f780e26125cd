package io.moe4j.kernel.quant;

import io.moe4j.tensor.DType;

import java.lang.foreign.MemorySegment;

/** Argument validation shared by the {@link QuantMatmul} implementations: shapes, block multiples, bounds. */
final class QuantChecks {
    private QuantChecks() {}

    static void check(DType wType, MemorySegment w, long wOff, int rows, int k,
                      MemorySegment x, long xOff, int ldx, int n, MemorySegment y, long yOff, int ldy) {
        if (rows < 0 || k < 0 || n < 0) {
            throw new IllegalArgumentException("negative size rows=" + rows + " k=" + k + " n=" + n);
        }
        if (k % wType.blockSize() != 0) {
            throw new IllegalArgumentException(wType + " weights store whole blocks of " + wType.blockSize()
                    + " values; K = " + k + " is not a multiple of " + wType.blockSize());
        }
        if (wType.inMemoryOnly() && rows % io.moe4j.tensor.quant.RowGroups.ROWS != 0) {
            throw new IllegalArgumentException(wType + " weights come in groups of " + io.moe4j.tensor.quant.RowGroups.ROWS
                    + " rows; rows = " + rows + " is not a multiple");
        }
        if (wOff < 0) throw new IllegalArgumentException("W: negative byte offset " + wOff);
        long wBytes = wType.byteSize((long) rows * k);
        if (wBytes > w.byteSize() - wOff) {
            throw new IndexOutOfBoundsException("W: " + rows + " rows of " + k + " " + wType + " values need " + wBytes
                    + " bytes from offset " + wOff + ", segment has " + w.byteSize());
        }
        floats("X", x, xOff, n, k, ldx);
        floats("Y", y, yOff, n, rows, ldy);
    }

    private static void floats(String what, MemorySegment s, long off, int rowCount, int cols, int ld) {
        if (ld < cols) throw new IllegalArgumentException(what + ": row stride " + ld + " < columns " + cols);
        if (off < 0) throw new IllegalArgumentException(what + ": negative offset " + off);
        if (rowCount == 0 || cols == 0) return;
        long endFloat = off + (long) (rowCount - 1) * ld + cols; // exclusive
        if (endFloat * 4 > s.byteSize()) {
            throw new IndexOutOfBoundsException(what + ": " + rowCount + "×" + cols + " floats (stride " + ld + ", offset "
                    + off + ") need " + endFloat * 4 + " bytes, segment has " + s.byteSize());
        }
    }
}
