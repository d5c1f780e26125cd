package io.moe4j.kernel.quant;

import io.moe4j.parallel.WorkerPool;
import io.moe4j.tensor.DType;
import io.moe4j.tensor.quant.Quant;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.SplittableRandom;

/**
 * A quantized-matmul problem shared by the kernel tests ({@link QuantMatmulTest}, {@link PanelGemmTest}): weights in
 * {@code t} at byte {@code wOff}, X at float {@code xOff} with stride {@code ldx}, Y at {@code yOff} with stride
 * {@code ldy}. Memory comes from an automatic arena, so cases outlive any one test class.
 */
record QuantCase(DType t, int rows, int k, int n, MemorySegment w, long wOff, MemorySegment x, long xOff, int ldx,
                 long yOff, int ldy) {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final Arena ARENA = Arena.ofAuto();

    /** A Y buffer for this case, every float set to {@code fill}. */
    MemorySegment newY(float fill) {
        MemorySegment y = ARENA.allocate(4L * (yOff + (long) (n - 1) * ldy + rows) + 4);
        for (long i = 0; i < y.byteSize() / 4; i++) y.setAtIndex(ValueLayout.JAVA_FLOAT, i, fill);
        return y;
    }

    /** Runs {@code q} on a fresh Y (NaN-filled, or 0.75 when accumulating: both show rows left unwritten). */
    MemorySegment run(QuantMatmul q, WorkerPool pool, boolean accumulate) {
        MemorySegment y = newY(accumulate ? 0.75f : Float.NaN);
        q.matmul(pool, t, w, wOff, rows, k, x, xOff, ldx, n, y, yOff, ldy, accumulate);
        return y;
    }

    float y(MemorySegment y, int i, int r) {
        return y.get(F32, 4 * (yOff + (long) i * ldy + r));
    }

    /** Gaussian weights (per-row scale e^U(-3,1)) quantized to {@code t} and Gaussian X; odd = unaligned offsets and strides. */
    static QuantCase random(DType t, int rows, int k, int n, long seed, boolean odd) {
        SplittableRandom rnd = new SplittableRandom(seed);
        long wOff = odd ? 5 : 0;
        int xOff = odd ? 3 : 0, ldx = odd ? k + 5 : k, yOff = odd ? 7 : 0, ldy = odd ? rows + 3 : rows;
        MemorySegment w = ARENA.allocate(wOff + t.byteSize((long) rows * k) + 8);
        float[] row = new float[k];
        for (int r = 0; r < rows; r++) {
            double scale = Math.exp(rnd.nextDouble(-3, 1));
            for (int j = 0; j < k; j++) row[j] = (float) (rnd.nextGaussian() * scale);
            Quant.quantize(t, row, 0, w, wOff + r * t.byteSize(k), k);
        }
        MemorySegment x = ARENA.allocate(4L * (xOff + (long) (n - 1) * ldx + k));
        for (long i = 0; i < x.byteSize() / 4; i++) x.setAtIndex(F32, i, (float) rnd.nextGaussian());
        return new QuantCase(t, rows, k, n, w, wOff, x, xOff, ldx, yOff, ldy);
    }
}
