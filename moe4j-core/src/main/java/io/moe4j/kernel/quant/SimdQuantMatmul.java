package io.moe4j.kernel.quant;

import io.moe4j.parallel.WorkerPool;
import io.moe4j.tensor.DType;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;

/**
 * The Vector API {@link QuantMatmul}: decodes weights on the fly inside the dot product (see {@link SimdDots} for
 * the integer trick and why each width is its own class).
 *
 * <p>Work split: output rows in fixed chunks of about 64 KB of weights (at least 4, at most 64 rows; depends on
 * K and the format only), one chunk per task. Inside a chunk, activation rows go four at a time: each weight
 * block is unpacked once for four activation rows, and a chunk is read from memory once for all N rows (later
 * tiles find it in L2). That is the batched case MoE experts need: a batch of tokens routed to one expert reads
 * the expert's weights once.
 *
 * <p>Determinism: a row's result depends on neither the thread count nor N. Against {@link ScalarQuantMatmul},
 * integer block sums are identical and only the float accumulation order differs.
 *
 * <p>Scratch (converted activations, job state) is per calling thread and only grows; once warmed up a call
 * allocates nothing.
 */
public final class SimdQuantMatmul implements QuantMatmul {
    private static final int TILE = 4;

    private final SimdDots dots;
    private final int bits;
    private final ThreadLocal<Job> jobs = ThreadLocal.withInitial(Job::new);

    /** The CPU's preferred vector width. */
    public SimdQuantMatmul() {
        this(FloatVector.SPECIES_PREFERRED);
    }

    /**
     * Kernels for the width of {@code species} (512, 256 or 128 bits). At 128 bits, Q8_0, Q4_0, Q4_K and Q6_K use
     * the scalar dots (a block would need four vectors) while F32/F16/BF16 are vectorised.
     */
    public SimdQuantMatmul(VectorSpecies<Float> species) {
        this.bits = species.vectorBitSize();
        this.dots = SimdDots.forBits(bits);
    }

    @Override
    public void matmul(WorkerPool pool, DType wType, MemorySegment w, long wOff, int rows, int k,
                       MemorySegment x, long xOff, int ldx, int n, MemorySegment y, long yOff, int ldy, boolean accumulate) {
        QuantChecks.check(wType, w, wOff, rows, k, x, xOff, ldx, n, y, yOff, ldy);
        if (rows == 0 || n == 0) return;
        if (n >= PanelGemm.minN) { PanelGemm.forBits(bits).matmul(pool, wType, w, wOff, rows, k, x, xOff, ldx, n, y, yOff, ldy, accumulate); return; } // large N: dequantize into SGEMM panels
        Job job = jobs.get();
        job.set(dots, wType, w, wOff, rows, k, x, xOff, ldx, n, y, yOff, ldy, accumulate, pool.threads());
        try {
            job.converting = true;
            pool.parallelFor(n, job);
            job.converting = false;
            pool.parallelFor(job.chunks, job);
        } finally {
            job.clear();
        }
    }

    @Override
    public String name() { return "simd-" + bits; }

    /** One call's state, reused across calls as the {@link WorkerPool.Body} of both phases. */
    private static final class Job implements WorkerPool.Body {
        final Activations act = new Activations();
        float[][] out = new float[0][];   // (threads, TILE) per-worker dot results

        SimdDots dots;
        DType wType;
        MemorySegment w, x, y;
        long wOff, xOff, yOff, rowBytes;
        int rows, k, ldx, n, ldy, chunkRows, chunks;
        boolean accumulate, converting, packQ4;

        void set(SimdDots dots, DType wType, MemorySegment w, long wOff, int rows, int k,
                 MemorySegment x, long xOff, int ldx, int n, MemorySegment y, long yOff, int ldy, boolean accumulate,
                 int threads) {
            this.dots = dots;
            this.wType = wType;
            this.w = w; this.wOff = wOff; this.rows = rows; this.k = k;
            this.x = x; this.xOff = xOff; this.ldx = ldx; this.n = n;
            this.y = y; this.yOff = yOff; this.ldy = ldy; this.accumulate = accumulate;
            this.rowBytes = wType.byteSize(k);
            this.chunkRows = (int) Math.max(4, Math.min(64, (64 << 10) / Math.max(1, rowBytes)));
            this.chunks = (rows + chunkRows - 1) / chunkRows;
            this.packQ4 = wType == DType.Q4_0 && dots.quantized();
            act.ensure(wType, n, k, threads);
            if (out.length < threads) {
                out = new float[threads][];
                for (int t = 0; t < threads; t++) out[t] = new float[TILE];
            }
        }

        void clear() {
            w = x = y = null; // do not keep callers' segments reachable
        }

        @Override
        public void run(int task, int worker) {
            if (converting) {
                act.convertRow(worker, wType, packQ4, dots.pairLanes(), x, xOff, ldx, task, k);
                return;
            }
            int r0 = task * chunkRows, r1 = Math.min(rows, r0 + chunkRows);
            // one row loop per format, chosen once per chunk: each is small and calls one kernel only, so the
            // kernels' C2 compilations (and their inlining of vector code) never see another format's profile
            switch (wType) {
                case Q8_0 -> rowsQ8(r0, r1, out[worker]);
                case Q4_0 -> rowsQ4(r0, r1, out[worker]);
                case Q4_K -> rowsQ4K(r0, r1, out[worker]);
                case Q6_K -> rowsQ6K(r0, r1, out[worker]);
                case F32 -> rowsF32(r0, r1, out[worker]);
                case F16 -> rowsF16(r0, r1, out[worker]);
                case BF16 -> rowsBf16(r0, r1, out[worker]);
            }
        }

        private void rowsQ8(int r0, int r1, float[] o) {
            int nb = k / 32;
            for (int i0 = 0; i0 < n; i0 += TILE) {
                int tile = Math.min(TILE, n - i0);
                for (int r = r0; r < r1; r++) {
                    dots.dotQ8(w, wOff + r * rowBytes, nb, act.xq, i0 * k, act.xd, i0 * nb, o, tile);
                    store(i0, tile, r, o);
                }
            }
        }

        private void rowsQ4(int r0, int r1, float[] o) {
            int nb = k / 32;
            for (int i0 = 0; i0 < n; i0 += TILE) {
                int tile = Math.min(TILE, n - i0);
                for (int r = r0; r < r1; r++) {
                    dots.dotQ4(w, wOff + r * rowBytes, nb, act.xq, act.xp, act.xc, i0 * k, act.xd, i0 * nb, o, tile);
                    store(i0, tile, r, o);
                }
            }
        }

        private void rowsQ4K(int r0, int r1, float[] o) {
            int nb = k / 256;
            for (int i0 = 0; i0 < n; i0 += TILE) {
                int tile = Math.min(TILE, n - i0);
                for (int r = r0; r < r1; r++) {
                    dots.dotQ4K(w, wOff + r * rowBytes, nb, act.xq, i0 * k, act.xd, i0 * nb, act.xb, i0 * k / 16, o, tile);
                    store(i0, tile, r, o);
                }
            }
        }

        private void rowsQ6K(int r0, int r1, float[] o) {
            int nb = k / 256;
            for (int i0 = 0; i0 < n; i0 += TILE) {
                int tile = Math.min(TILE, n - i0);
                for (int r = r0; r < r1; r++) {
                    dots.dotQ6K(w, wOff + r * rowBytes, nb, act.xq, i0 * k, act.xd, i0 * nb, act.xb, i0 * k / 16, o, tile);
                    store(i0, tile, r, o);
                }
            }
        }

        private void rowsF32(int r0, int r1, float[] o) {
            for (int i0 = 0; i0 < n; i0 += TILE) {
                int tile = Math.min(TILE, n - i0);
                for (int r = r0; r < r1; r++) {
                    long wr = wOff + r * rowBytes;
                    for (int t = 0; t < tile; t++) o[t] = dots.dotF32(w, wr, act.xf, (i0 + t) * k, k);
                    store(i0, tile, r, o);
                }
            }
        }

        private void rowsF16(int r0, int r1, float[] o) {
            for (int i0 = 0; i0 < n; i0 += TILE) {
                int tile = Math.min(TILE, n - i0);
                for (int r = r0; r < r1; r++) {
                    long wr = wOff + r * rowBytes;
                    for (int t = 0; t < tile; t++) o[t] = dots.dotF16(w, wr, act.xf, (i0 + t) * k, k);
                    store(i0, tile, r, o);
                }
            }
        }

        private void rowsBf16(int r0, int r1, float[] o) {
            for (int i0 = 0; i0 < n; i0 += TILE) {
                int tile = Math.min(TILE, n - i0);
                for (int r = r0; r < r1; r++) {
                    long wr = wOff + r * rowBytes;
                    for (int t = 0; t < tile; t++) o[t] = dots.dotBf16(w, wr, act.xf, (i0 + t) * k, k);
                    store(i0, tile, r, o);
                }
            }
        }

        /** Y[i0 + t][r] (+)= o[t] for the tile's rows. */
        private void store(int i0, int tile, int r, float[] o) {
            for (int t = 0; t < tile; t++) {
                long yAt = (yOff + (long) (i0 + t) * ldy + r) * 4;
                float v = o[t];
                if (accumulate) v += y.get(Activations.F32_LE, yAt);
                y.set(Activations.F32_LE, yAt, v);
            }
        }
    }
}
