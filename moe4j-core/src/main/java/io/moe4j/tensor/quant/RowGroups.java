package io.moe4j.tensor.quant;

import io.moe4j.tensor.DType;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * The row-group layouts {@link DType#Q8_0_R16} and {@link DType#Q4_0_R16}: a Q8_0 / Q4_0 matrix repacked at load
 * time so that one vector holds the same element of 16 rows (llama.cpp repacks Q4_0 for its x86 and ARM kernels
 * for the same reason).
 *
 * <p><b>Why.</b> In GGML's row layout a dot product reads one row's 32 quants, widens them and must add them up
 * within the vector, and the Vector API has no x86 {@code pmaddwd}/{@code vpdpbusd} to do that cheaply: the
 * row-layout Q8_0 kernel spends about 14 vector operations per block and is compute-bound at ~13–16 GB/s on one
 * Zen4 core. With 16 rows in the lanes, a step is "widen 16 bytes to floats, one FMA with a broadcast activation"
 * into per-row accumulators: no horizontal sums, no scale decoding in the loop (scales stored as floats), and the
 * accumulators are the outputs. Measured: see docs/BENCHMARKS.md, "Row-group quant kernels".
 *
 * <pre>
 *   matrix of R rows (R a multiple of 16) × K columns (K a multiple of 32), nb = K/32 blocks per row:
 *   unit (g, b) for row group g = rows [16g, 16g+16) and block b, at byte (g·nb + b)·UNIT:
 *     float32 LE d[16]          the 16 rows' block scales (the fp16 d of the original block, decoded: exact)
 *     Q8_0_R16: int8  q[32][16]  q[j][r] = quant j of row 16g+r            UNIT = 64 + 512 = 576 bytes
 *     Q4_0_R16: uint8 q[16][16]  q[j][r] = byte j of row 16g+r's block     UNIT = 64 + 256 = 320 bytes
 *               (low nibble = element j, high nibble = element j + 16, value (nibble − 8)·d, as in Q4_0)
 * </pre>
 * A row's share of a unit is 36 / 20 bytes ({@link DType#bytesPerBlock}), 2 more than the file's 34 / 18: the
 * float scales. The values decode exactly as the original blocks decode ({@link #dequantizeRow}).
 */
public final class RowGroups {
    /** Rows per group: the lanes of a 512-bit float vector. */
    public static final int ROWS = 16;
    private static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort SHORT_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private RowGroups() {}

    /** The row-group type of a file type ({@code null} if it has none). */
    public static DType packedOf(DType t) {
        return switch (t) {
            case Q8_0 -> DType.Q8_0_R16;
            case Q4_0 -> DType.Q4_0_R16;
            default -> null;
        };
    }

    /** The file type a row-group type was packed from ({@code null} for any other type). */
    public static DType sourceOf(DType t) {
        return switch (t) {
            case Q8_0_R16 -> DType.Q8_0;
            case Q4_0_R16 -> DType.Q4_0;
            default -> null;
        };
    }

    /** Bytes of one (group, block) unit of a row-group type. */
    public static int unitBytes(DType packed) {
        return switch (packed) {
            case Q8_0_R16 -> 576;
            case Q4_0_R16 -> 320;
            default -> throw new IllegalArgumentException(packed + " is not a row-group type");
        };
    }

    /** Whether a (rows × k) matrix of type {@code t} can be packed: a row-group type exists and rows is a multiple of 16. */
    public static boolean canPack(DType t, int rows, int k) {
        return packedOf(t) != null && rows > 0 && rows % ROWS == 0 && k > 0 && k % 32 == 0;
    }

    /**
     * Packs a (rows × k) matrix of {@code t} (Q8_0 or Q4_0), rows back to back from byte {@code srcOff} of
     * {@code src}, into {@code dst} from byte {@code dstOff}: {@code rows · packedOf(t).byteSize(k)} bytes.
     *
     * @throws IllegalArgumentException if {@link #canPack} is false
     * @throws IndexOutOfBoundsException if either side does not fit its segment
     */
    public static void pack(DType t, MemorySegment src, long srcOff, int rows, int k, MemorySegment dst, long dstOff) {
        if (!canPack(t, rows, k)) {
            throw new IllegalArgumentException("cannot pack a " + rows + "×" + k + " " + t + " matrix in groups of " + ROWS + " rows");
        }
        DType p = packedOf(t);
        int nb = k / 32, unit = unitBytes(p), blockBytes = t.bytesPerBlock(), quantBytes = blockBytes - 2;
        long rowBytes = t.byteSize(k);
        src.asSlice(srcOff, rows * rowBytes);             // bounds, before any write
        dst.asSlice(dstOff, rows * p.byteSize(k));
        byte[] in = new byte[(int) (ROWS * rowBytes)];    // one group's 16 rows as in the file
        byte[] out = new byte[nb * unit];                 // the group packed
        for (int g = 0; g < rows / ROWS; g++) {
            MemorySegment.copy(src, ValueLayout.JAVA_BYTE, srcOff + (long) g * in.length, in, 0, in.length);
            for (int b = 0; b < nb; b++) {
                int u = b * unit;
                for (int r = 0; r < ROWS; r++) {
                    int blk = (int) (r * rowBytes) + b * blockBytes;
                    float d = Fp16.decode((short) ((in[blk] & 0xff) | in[blk + 1] << 8));
                    int bits = Float.floatToRawIntBits(d);
                    out[u + 4 * r] = (byte) bits;
                    out[u + 4 * r + 1] = (byte) (bits >>> 8);
                    out[u + 4 * r + 2] = (byte) (bits >>> 16);
                    out[u + 4 * r + 3] = (byte) (bits >>> 24);
                    for (int j = 0; j < quantBytes; j++) out[u + 64 + j * ROWS + r] = in[blk + 2 + j];
                }
            }
            MemorySegment.copy(out, 0, dst, ValueLayout.JAVA_BYTE, dstOff + (long) g * out.length, out.length);
        }
    }

    /**
     * Decodes row {@code row} of a packed (rows × k) matrix starting at byte {@code matOff}: the same floats
     * {@link Quant#dequantize} gives for that row of the original matrix.
     */
    public static void dequantizeRow(DType packed, MemorySegment src, long matOff, int row, int k, float[] dst, int dOff) {
        dequantizeRow(packed, src, matOff, row, k, 0, k, dst, dOff);
    }

    /**
     * Columns {@code [from, from + count)} (multiples of 32) of row {@code row} of a packed (rows × k) matrix
     * into {@code dst[dOff ..)}.
     */
    public static void dequantizeRow(DType packed, MemorySegment src, long matOff, int row, int k, int from, int count,
                                     float[] dst, int dOff) {
        if (from % 32 != 0 || count % 32 != 0 || from < 0 || from + count > k) {
            throw new IllegalArgumentException("columns [" + from + ", " + (from + count) + ") of " + k + " are not whole blocks");
        }
        int unit = unitBytes(packed), nb = k / 32, g = row / ROWS, r = row % ROWS;
        for (int b = from / 32; b < (from + count) / 32; b++) {
            long u = matOff + ((long) g * nb + b) * unit;
            float d = src.get(F32_LE, u + 4L * r);
            int o = dOff + 32 * b - from;
            if (packed == DType.Q8_0_R16) {
                for (int j = 0; j < 32; j++) dst[o + j] = src.get(ValueLayout.JAVA_BYTE, u + 64 + (long) j * ROWS + r) * d;
            } else {
                for (int j = 0; j < 16; j++) {
                    int q = src.get(ValueLayout.JAVA_BYTE, u + 64 + (long) j * ROWS + r) & 0xff;
                    dst[o + j] = ((q & 0x0f) - 8) * d;
                    dst[o + j + 16] = ((q >>> 4) - 8) * d;
                }
            }
        }
    }
}
