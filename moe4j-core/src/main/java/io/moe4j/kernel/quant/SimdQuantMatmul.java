package io.moe4j.kernel.quant;

import io.moe4j.parallel.WorkerPool;
import io.moe4j.tensor.DType;
import io.moe4j.tensor.quant.RowGroups;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;

/**
 * The Vector API {@link QuantMatmul}: decodes weights on the fly inside the dot product (see {@link SimdDots} for
 * the integer trick and why each width is its own class).
 *
 * <p>Work split: output rows in fixed chunks of about 64 KB of weights (at least 4, at most 64 rows; depends on
 * K and the format only), one chunk per task; row-group layouts in chunks of about 144 KB (see
 * {@link #ROW_GROUP_TASK_BYTES}). Inside a chunk, activation rows go in tiles of four: each weight
 * block is unpacked once for four activation rows (Q8_0 at 512 bits) or two (Q8_0 at 256 bits, Q4_0; larger
 * kernels pass C2's inlining budget), and a chunk is read from memory once for all N rows (later tiles find it in
 * L2). That is the batched case MoE experts need: a batch of tokens routed to one expert reads the expert's
 * weights once. N = 1 (decode) calls the one-row kernel directly and stores a chunk's results in one copy.
 *
 * <p>Large N (prompt processing, experts chosen by many tokens): from {@link PanelGemm#MIN_N} rows on, the call goes
 * to {@link PanelGemm} (weights decoded into sgemm panels), which is faster there and differs from this path by
 * float rounding only (≤ 1e-7 relative; the activations are rounded the same way).
 *
 * <p>Determinism: a row's result does not depend on the thread count; below {@link PanelGemm#MIN_N} it does not
 * depend on N either. Against {@link ScalarQuantMatmul}, integer block sums are identical and only the float
 * accumulation order differs.
 *
 * <p>Scratch (converted activations, job state) is per calling thread and only grows; once warmed up a call
 * allocates nothing.
 */
public final class SimdQuantMatmul implements QuantMatmul {
    private static final int TILE = 4;
    /**
     * Unused floats at the end of every per-worker output array: arrays allocated one after the other are
     * neighbours in the heap, and without a gap of a cache line (plus one for the adjacent-line prefetcher) two
     * workers writing their own arrays after every row would fight over one line (false sharing; the old
     * 4-float result arrays of both workers fit in one line). A precaution: one loaded-machine A/B run showed the
     * four-row Q8_0 kernel (64 floats handed out per row) at 0.3-0.4x with 2 threads before this, a rerun without
     * the padding did not reproduce it, and with it the difference is within noise.
     */
    private static final int PAD = 32;
    /**
     * Largest N that {@link #matmulPair} runs as one fused pass: the decode sizes this class is tuned for; larger
     * N goes through {@link #matmul} twice, so whatever large-N path matmul takes applies.
     */
    static final int PAIR_MAX_N = 8;
    /**
     * Weight bytes per task of the row-group kernels (rounded to whole pairs of groups, 32..512 rows). Each task
     * claim and completion is a read-modify-write of a line both threads use; with 32-row tasks at K = 1024 (36 KB,
     * ~1.3 µs of streaming) those hand-offs cost about a quarter of the bandwidth. Measured (2 threads, decode N = 1,
     * same machine, quiet, separate JVMs alternating): 3584×1024 at 32 / 128 / 256 rows per task 14.9–15.2 /
     * 19.4–20.8 / 16.3–16.4 GB/s; 1024×2048 at 32 / 64 rows 18.7–19.3 / 21.6–22.2 GB/s. ~144 KB is what 32 rows of
     * K = 4096 already were.
     */
    static final int ROW_GROUP_TASK_BYTES = Integer.getInteger("moe4j.rowGroupTaskBytes", 144 << 10);

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

    /**
     * Both products in one parallel pass over the rows of the two matrices, after converting X once: an expert's gate
     * and up projections. Results are bit-identical to two {@link #matmul} calls (each row's dot is the same).
     * Beyond {@link #PAIR_MAX_N} activation rows it is two {@link #matmul} calls (the saving is then negligible).
     */
    @Override
    public void matmulPair(WorkerPool pool, DType wType, MemorySegment w1, long w1Off, MemorySegment w2, long w2Off,
                           int rows, int k, MemorySegment x, long xOff, int ldx, int n,
                           MemorySegment y1, long y1Off, MemorySegment y2, long y2Off, int ldy, boolean accumulate) {
        if (n > PAIR_MAX_N) {
            QuantMatmul.super.matmulPair(pool, wType, w1, w1Off, w2, w2Off, rows, k, x, xOff, ldx, n, y1, y1Off, y2, y2Off, ldy, accumulate);
            return;
        }
        QuantChecks.check(wType, w1, w1Off, rows, k, x, xOff, ldx, n, y1, y1Off, ldy);
        QuantChecks.check(wType, w2, w2Off, rows, k, x, xOff, ldx, n, y2, y2Off, ldy);
        if (rows == 0 || n == 0) return;
        Job job = jobs.get();
        job.set(dots, wType, w1, w1Off, rows, k, x, xOff, ldx, n, y1, y1Off, ldy, accumulate, pool.threads());
        job.second(w2, w2Off, y2, y2Off);
        try {
            job.converting = true;
            pool.parallelFor(n, job);
            job.converting = false;
            pool.parallelFor(2 * job.chunks, job);
        } finally {
            job.clear();
        }
    }

    /**
     * Q8_0 / Q4_0 matrices with a multiple of 16 rows: the row-group layouts when this instance runs 512-bit
     * vectors (their kernels are written for 16 lanes). Measured: docs/BENCHMARKS.md, "Row-group quant kernels".
     */
    @Override
    public DType preferredLayout(DType t, int rows, int k) {
        return bits == 512 && RowGroupDots.SUPPORTED && RowGroups.canPack(t, rows, k) ? RowGroups.packedOf(t) : t;
    }

    @Override
    public String name() { return "simd-" + bits; }

    /** One call's state, reused across calls as the {@link WorkerPool.Body} of both phases. */
    private static final class Job implements WorkerPool.Body {
        final Activations act = new Activations();
        float[][] out = new float[0][];   // (threads, TILE) per-worker dot results
        float[][] lanes = new float[0][]; // (threads, 4·16) per-worker accumulator lanes of the multi-row kernels
        float[][] rowOut = new float[0][]; // (threads, 64) per-worker results of one chunk of rows (N = 1)

        SimdDots dots;
        DType wType;
        MemorySegment w, x, y, w2, y2;
        long wOff, xOff, yOff, wOff2, yOff2, rowBytes;
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
            this.chunkRows = Activations.isRowGroup(wType)
                    ? (int) Math.max(32, Math.min(512, ROW_GROUP_TASK_BYTES / Math.max(1, rowBytes) / 32 * 32))
                    : (int) Math.max(4, Math.min(64, (64 << 10) / Math.max(1, rowBytes)));
            this.chunks = (rows + chunkRows - 1) / chunkRows;
            this.packQ4 = wType == DType.Q4_0 && dots.quantized();
            act.ensure(wType, n, k, threads);
            if (out.length < threads) {
                out = new float[threads][];
                for (int t = 0; t < threads; t++) out[t] = new float[TILE + PAD];
            }
            if (rowOut.length < threads) {
                rowOut = new float[threads][];
                for (int t = 0; t < threads; t++) rowOut[t] = new float[512 + PAD]; // up to a row-group task
            }
            if (lanes.length < threads) {
                lanes = new float[threads][];
                for (int t = 0; t < threads; t++) lanes[t] = new float[4 * 16 + PAD];
            }
        }

        /** Makes this job a pair: matrix 2 at {@code w2 + wOff2} (same type and shape) into {@code y2 + yOff2}. */
        void second(MemorySegment w2, long wOff2, MemorySegment y2, long yOff2) {
            this.w2 = w2; this.wOff2 = wOff2; this.y2 = y2; this.yOff2 = yOff2;
        }

        void clear() {
            w = x = y = w2 = y2 = null; // do not keep callers' segments reachable
        }

        @Override
        public void run(int task, int worker) {
            if (converting) {
                act.convertRow(worker, wType, packQ4, dots.pairLanes(), x, xOff, ldx, task, k);
                return;
            }
            boolean second = task >= chunks; // tasks [chunks, 2·chunks) are matrix 2 of a pair
            MemorySegment w = second ? w2 : this.w, y = second ? y2 : this.y;
            long wOff = second ? wOff2 : this.wOff, yOff = second ? yOff2 : this.yOff;
            int r0 = (second ? task - chunks : task) * chunkRows, r1 = Math.min(rows, r0 + chunkRows);
            // one row loop per format, chosen once per chunk: each is small and calls one kernel only, so the
            // kernels' C2 compilations (and their inlining of vector code) never see another format's profile
            switch (wType) {
                case Q8_0 -> rowsQ8(w, wOff, y, yOff, r0, r1, worker);
                case Q4_0 -> rowsQ4(w, wOff, y, yOff, r0, r1, worker);
                case Q8_0_R16, Q4_0_R16 -> rowsRowGroup(w, wOff, y, yOff, r0, r1, worker);
                case Q4_K -> rowsQ4K(w, wOff, y, yOff, r0, r1, out[worker]);
                case Q6_K -> rowsQ6K(w, wOff, y, yOff, r0, r1, out[worker]);
                case F32 -> rowsF32(w, wOff, y, yOff, r0, r1, out[worker]);
                case F16 -> rowsF16(w, wOff, y, yOff, r0, r1, out[worker]);
                case BF16 -> rowsBf16(w, wOff, y, yOff, r0, r1, out[worker]);
            }
        }

        private void rowsQ8(MemorySegment w, long wOff, MemorySegment y, long yOff, int r0, int r1, int worker) {
            int nb = k / 32;
            float[] o = out[worker], lanes = this.lanes[worker];
            if (n == 1 && dots.quantized()) { // decode: the one-row kernel called directly, results stored per chunk
                float[] ro = rowOut[worker];
                for (int r = r0; r < r1; r++) ro[r - r0] = dots.dotQ8x1(w, wOff + r * rowBytes, nb, act.xq, 0, act.xd, 0);
                storeChunk(y, yOff, r0, r1 - r0, ro);
                return;
            }
            for (int i0 = 0; i0 < n; i0 += TILE) {
                int tile = Math.min(TILE, n - i0);
                for (int r = r0; r < r1; r++) {
                    dots.dotQ8(w, wOff + r * rowBytes, nb, act.xq, i0 * k, act.xd, i0 * nb, o, tile, lanes);
                    store(y, yOff, i0, tile, r, o);
                }
            }
        }

        private void rowsQ4(MemorySegment w, long wOff, MemorySegment y, long yOff, int r0, int r1, int worker) {
            int nb = k / 32;
            float[] o = out[worker], lanes = this.lanes[worker];
            if (n == 1 && dots.quantized()) {
                float[] ro = rowOut[worker];
                for (int r = r0; r < r1; r++) ro[r - r0] = SimdDots.dotQ4x1(w, wOff + r * rowBytes, nb, act.xp, act.xc, 0, act.xd, 0);
                storeChunk(y, yOff, r0, r1 - r0, ro);
                return;
            }
            for (int i0 = 0; i0 < n; i0 += TILE) {
                int tile = Math.min(TILE, n - i0);
                for (int r = r0; r < r1; r++) {
                    dots.dotQ4(w, wOff + r * rowBytes, nb, act.xq, act.xp, act.xc, i0 * k, act.xd, i0 * nb, o, tile, lanes);
                    store(y, yOff, i0, tile, r, o);
                }
            }
        }

        /**
         * Rows [r0, r1) (whole groups of 16) of a row-group matrix ({@link RowGroupDots}): N = 1 two groups per
         * kernel call; otherwise per group, activation rows in tiles of 4, 2, 1 (the group's weights stay in L1/L2).
         * Without 512-bit vectors: the scalar reference per row (such CPUs are not given row-group weights).
         */
        private void rowsRowGroup(MemorySegment w, long wOff, MemorySegment y, long yOff, int r0, int r1, int worker) {
            int nb = k / 32;
            boolean q8 = wType == DType.Q8_0_R16;
            long groupBytes = 16 * rowBytes;
            float[] o = rowOut[worker], xr = act.xr, xd = act.xd, xs = act.xs;
            if (!RowGroupDots.SUPPORTED) {
                for (int i = 0; i < n; i++) {
                    for (int r = r0; r < r1; r++) o[r - r0] = ScalarQuantMatmul.dotRowGroup(wType, w, wOff, r, nb, act.xq, i * k, xd, i * nb);
                    storeRun(y, yOff, i, r0, r1 - r0, o, 0);
                }
                return;
            }
            if (n == 1) {
                int r = r0;
                for (; r + 32 <= r1; r += 32) {
                    long u = wOff + (r / 16) * groupBytes;
                    if (q8) RowGroupDots.q8Pair(w, u, u + groupBytes, nb, xr, 0, xd, 0, o, r - r0);
                    else RowGroupDots.q4Pair(w, u, u + groupBytes, nb, xr, 0, xd, xs, 0, o, r - r0);
                }
                if (r < r1) {
                    long u = wOff + (r / 16) * groupBytes;
                    if (q8) RowGroupDots.q8One(w, u, nb, xr, 0, xd, 0, o, r - r0);
                    else RowGroupDots.q4One(w, u, nb, xr, 0, xd, xs, 0, o, r - r0);
                }
                storeChunk(y, yOff, r0, r1 - r0, o);
                return;
            }
            for (int r = r0; r < r1; r += 16) {
                long u = wOff + (r / 16) * groupBytes;
                int i = 0;
                for (; i + 4 <= n; i += 4) {
                    if (q8) RowGroupDots.q8Four(w, u, nb, k, xr, i * k, xd, i * nb, o, 0);
                    else RowGroupDots.q4Four(w, u, nb, k, xr, i * k, xd, xs, i * nb, o, 0);
                    for (int t = 0; t < 4; t++) storeRun(y, yOff, i + t, r, 16, o, 16 * t);
                }
                if (i + 2 <= n) {
                    if (q8) RowGroupDots.q8Two(w, u, nb, k, xr, i * k, xd, i * nb, o, 0);
                    else RowGroupDots.q4Two(w, u, nb, k, xr, i * k, xd, xs, i * nb, o, 0);
                    storeRun(y, yOff, i, r, 16, o, 0);
                    storeRun(y, yOff, i + 1, r, 16, o, 16);
                    i += 2;
                }
                if (i < n) {
                    if (q8) RowGroupDots.q8One(w, u, nb, xr, i * k, xd, i * nb, o, 0);
                    else RowGroupDots.q4One(w, u, nb, xr, i * k, xd, xs, i * nb, o, 0);
                    storeRun(y, yOff, i, r, 16, o, 0);
                }
            }
        }

        /** Y[i][r .. r + count) (+)= o[at .. at + count). */
        private void storeRun(MemorySegment y, long yOff, int i, int r, int count, float[] o, int at) {
            long y0 = yOff + (long) i * ldy + r;
            if (accumulate) {
                for (int t = 0; t < count; t++) o[at + t] += y.get(Activations.F32_LE, (y0 + t) * 4);
            }
            MemorySegment.copy(o, at, y, Activations.F32_LE, y0 * 4, count);
        }

        private void rowsQ4K(MemorySegment w, long wOff, MemorySegment y, long yOff, int r0, int r1, float[] o) {
            int nb = k / 256;
            for (int i0 = 0; i0 < n; i0 += TILE) {
                int tile = Math.min(TILE, n - i0);
                for (int r = r0; r < r1; r++) {
                    dots.dotQ4K(w, wOff + r * rowBytes, nb, act.xq, i0 * k, act.xd, i0 * nb, act.xb, i0 * k / 16, o, tile);
                    store(y, yOff, i0, tile, r, o);
                }
            }
        }

        private void rowsQ6K(MemorySegment w, long wOff, MemorySegment y, long yOff, int r0, int r1, float[] o) {
            int nb = k / 256;
            for (int i0 = 0; i0 < n; i0 += TILE) {
                int tile = Math.min(TILE, n - i0);
                for (int r = r0; r < r1; r++) {
                    dots.dotQ6K(w, wOff + r * rowBytes, nb, act.xq, i0 * k, act.xd, i0 * nb, act.xb, i0 * k / 16, o, tile);
                    store(y, yOff, i0, tile, r, o);
                }
            }
        }

        private void rowsF32(MemorySegment w, long wOff, MemorySegment y, long yOff, int r0, int r1, float[] o) {
            for (int i0 = 0; i0 < n; i0 += TILE) {
                int tile = Math.min(TILE, n - i0);
                for (int r = r0; r < r1; r++) {
                    long wr = wOff + r * rowBytes;
                    for (int t = 0; t < tile; t++) o[t] = dots.dotF32(w, wr, act.xf, (i0 + t) * k, k);
                    store(y, yOff, i0, tile, r, o);
                }
            }
        }

        private void rowsF16(MemorySegment w, long wOff, MemorySegment y, long yOff, int r0, int r1, float[] o) {
            for (int i0 = 0; i0 < n; i0 += TILE) {
                int tile = Math.min(TILE, n - i0);
                for (int r = r0; r < r1; r++) {
                    long wr = wOff + r * rowBytes;
                    for (int t = 0; t < tile; t++) o[t] = dots.dotF16(w, wr, act.xf, (i0 + t) * k, k);
                    store(y, yOff, i0, tile, r, o);
                }
            }
        }

        private void rowsBf16(MemorySegment w, long wOff, MemorySegment y, long yOff, int r0, int r1, float[] o) {
            for (int i0 = 0; i0 < n; i0 += TILE) {
                int tile = Math.min(TILE, n - i0);
                for (int r = r0; r < r1; r++) {
                    long wr = wOff + r * rowBytes;
                    for (int t = 0; t < tile; t++) o[t] = dots.dotBf16(w, wr, act.xf, (i0 + t) * k, k);
                    store(y, yOff, i0, tile, r, o);
                }
            }
        }

        /**
         * Y[0][r0 .. r0 + count) (+)= ro[0 .. count): a chunk's matvec results in one bounds-checked copy instead of
         * a get/set per row. Aimed at the ~20 ns per-row overhead seen at K = 1024 (a row's dot takes ~50 ns);
         * measured no change (QuantAB, loaded machine), kept as the simpler N = 1 path.
         */
        private void storeChunk(MemorySegment y, long yOff, int r0, int count, float[] ro) {
            if (accumulate) {
                for (int t = 0; t < count; t++) ro[t] += y.get(Activations.F32_LE, (yOff + r0 + t) * 4);
            }
            MemorySegment.copy(ro, 0, y, Activations.F32_LE, (yOff + r0) * 4, count);
        }

        /** Y[i0 + t][r] (+)= o[t] for the tile's rows. */
        private void store(MemorySegment y, long yOff, int i0, int tile, int r, float[] o) {
            for (int t = 0; t < tile; t++) {
                long yAt = (yOff + (long) (i0 + t) * ldy + r) * 4;
                float v = o[t];
                if (accumulate) v += y.get(Activations.F32_LE, yAt);
                y.set(Activations.F32_LE, yAt, v);
            }
        }
    }
}
