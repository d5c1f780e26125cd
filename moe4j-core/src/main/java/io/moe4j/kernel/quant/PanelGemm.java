package io.moe4j.kernel.quant;

import io.moe4j.kernel.gemm.PanelKernel;
import io.moe4j.parallel.WorkerPool;
import io.moe4j.tensor.DType;
import io.moe4j.tensor.quant.Bf16;
import io.moe4j.tensor.quant.Fp16;
import io.moe4j.tensor.quant.Q4_K;
import io.moe4j.tensor.quant.Q6_K;
import io.moe4j.tensor.quant.Q8_0;
import io.moe4j.tensor.quant.Q8_K;
import io.moe4j.tensor.quant.RowGroups;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The large-N {@link QuantMatmul}: dequantizes weight panels straight into the packed-B layout of the F32 GEMM and
 * runs its register-tiled microkernel ({@link PanelKernel}), so that a prompt's matmuls run at SGEMM speed instead
 * of the integer-emulating dot products of {@link SimdQuantMatmul}, which are compute-bound at large N.
 *
 * <pre>
 *   Y (N×R) = X̃ (N×K) · Ŵᵀ        [+ Y if accumulate]
 *   X̃ = X rounded the way the small-N path rounds it (ggml's vec_dot_type), kept as floats:
 *        Q8_0/Q4_0 weights: each 32-block through Q8_0 activation quantization, value q·d (d the fp16 scale);
 *        Q4_K/Q6_K: each 256-block through Q8_K, value q·d;  F16/BF16: rounded to F16/BF16;  F32: as is.
 *   Ŵ = W decoded exactly as {@link io.moe4j.tensor.quant.Quant#dequantize} decodes it (bit-identical values).
 * </pre>
 * For Q8_0 and Q4_0 both factors of every product are exact small-integer multiples of their block scales, so each
 * product is the small-N path's {@code q_w·q_x·d_w·d_x} up to one float rounding; what differs is the summation
 * (a chain of FMAs over K instead of per-block integer sums scaled once). Non-goal: bit-identity with the small-N
 * path (tests state the measured difference).
 *
 * <h2>Loop structure</h2>
 * <pre>
 *   for i0 in N step MC                         (one block for any prompt: MC·K ≤ 2M floats)
 *     phase 1, parallel over activation rows: round X̃ row, scatter it into MR-row A panels (all of K, shared)
 *     phase 2, parallel over blocks of NC weight rows (narrowed so every thread gets two):
 *       for pc in K step KC
 *         decode the block's rows [pc, pc + KC) into NR-column B panels (this worker's KC×NC buffer)
 *         for each A panel, for each B panel: microkernel MR×NR tile of Y (+)= A panel · B panel
 * </pre>
 * Every weight is decoded once per call (and per MC block), against N multiply-adds per weight: at N = 128 the
 * decode is a small share of the time, at N = 8 it is not, hence {@link #MIN_N}.
 *
 * <p>Determinism: each Y element is a chain of FMAs over k in order within each KC block (blocks at multiples of
 * KC), then {@code acc + Y} (or {@code acc + 0}); threads only choose which tiles they compute, so Y is
 * bit-identical for any thread count, any column split and any vector width, and a row's result does not depend
 * on the other rows of X (rows of A never mix).
 *
 * <p>Buffers live in a {@link Job} reused by the next call; a caller arriving while another call holds it gets a
 * fresh one (concurrent calls are safe, the hot path allocates nothing once warm).
 */
public final class PanelGemm implements QuantMatmul {
    /**
     * Activation rows from which {@link SimdQuantMatmul} hands a product to this class. Measured with
     * PanelGemmTiming (same JVM, interleaved, Q8_0 and Q4_0, 3584×1024 and 1024×3584): see the BENCHMARKS
     * section "Prompt processing, session 3".
     */
    public static final int MIN_N = 16;
    /**
     * The threshold in effect: {@link #MIN_N} unless the system property {@code moe4j.panelMinN} says otherwise
     * (a large value turns the panel path off: end-to-end A/B runs). Tests and timing code in this package set it.
     */
    static volatile int minN = Integer.getInteger("moe4j.panelMinN", MIN_N);

    /**
     * Depth of one packed K block: a multiple of the largest quant block (256), so blocks never straddle it.
     * 512 rather than SimdGemm's 256: half the passes over Y, whose tiles (rows 4·R bytes apart) miss the caches;
     * PanelGemmTiming, 1 thread, Q8_0 N = 32 / 128: 256×256 → 512×128 about +5..15 %, 1024×64 or 1024×128 no better.
     */
    static final int KC = 512;
    /** Weight rows per compute task before narrowing: the packed B block is KC×NC floats = 256 KB (L2). */
    static final int NC = 128;
    /** Bound on the packed A block (8 MB). */
    static final int A_FLOATS = 1 << 21;

    private static final ValueLayout.OfShort SHORT_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfByte BYTE = ValueLayout.JAVA_BYTE;
    private static final PanelGemm[] SHARED = new PanelGemm[3];

    // Vector decoding: L = lanes of the preferred float vector, L bytes (or shorts) widened per step. Static
    // finals, so that C2 sees constant species; only for 8 or 16 lanes (a 4-byte vector species does not exist).
    private static final VectorSpecies<Float> FS = FloatVector.SPECIES_PREFERRED;
    private static final int L = FS.length();
    private static final boolean VEC = (L == 8 || L == 16) && !Boolean.getBoolean("moe4j.scalarDecode");
    private static final VectorSpecies<Byte> BS = L == 16 ? ByteVector.SPECIES_128 : ByteVector.SPECIES_64;
    private static final VectorSpecies<Short> SS = L == 16 ? ShortVector.SPECIES_256 : ShortVector.SPECIES_128;
    private static final VectorSpecies<Integer> IS = L == 16 ? IntVector.SPECIES_512 : IntVector.SPECIES_256;

    private final PanelKernel kernel;
    private final int mr, nr, kcBlock, ncTask, aFloats;
    private final AtomicReference<Job> spare = new AtomicReference<>();

    /** The CPU's preferred vector width. */
    public PanelGemm() {
        this(FloatVector.SPECIES_PREFERRED);
    }

    /** The microkernel of {@code species}' width (512, 256 or 128 bits). */
    public PanelGemm(VectorSpecies<Float> species) {
        this(species, KC, NC, A_FLOATS);
    }

    /** Tests only: smaller blocks, so that small operands reach every blocking loop. */
    PanelGemm(VectorSpecies<Float> species, int kc, int nc, int aFloats) {
        if (kc <= 0 || kc % 256 != 0) throw new IllegalArgumentException("KC must be a multiple of 256, got " + kc);
        this.kernel = PanelKernel.of(species);
        this.mr = kernel.mr();
        this.nr = kernel.nr();
        this.kcBlock = kc;
        this.ncTask = Math.max(nr, nc / nr * nr);
        this.aFloats = aFloats;
    }

    /** One shared instance per vector width (what {@link SimdQuantMatmul} dispatches to). */
    static PanelGemm forBits(int bits) {
        int i = bits == 512 ? 0 : bits == 256 ? 1 : 2;
        PanelGemm g = SHARED[i];
        if (g == null) {
            synchronized (SHARED) {
                g = SHARED[i];
                if (g == null) {
                    g = new PanelGemm(bits == 512 ? FloatVector.SPECIES_512
                            : bits == 256 ? FloatVector.SPECIES_256 : FloatVector.SPECIES_128);
                    SHARED[i] = g;
                }
            }
        }
        return g;
    }

    @Override
    public void matmul(WorkerPool pool, DType wType, MemorySegment w, long wOff, int rows, int k,
                       MemorySegment x, long xOff, int ldx, int n, MemorySegment y, long yOff, int ldy, boolean accumulate) {
        QuantChecks.check(wType, w, wOff, rows, k, x, xOff, ldx, n, y, yOff, ldy);
        if (rows == 0 || n == 0) return;
        if (k == 0) {
            if (!accumulate) {
                for (int i = 0; i < n; i++) y.asSlice((yOff + (long) i * ldy) * 4, (long) rows * 4).fill((byte) 0);
            }
            return;
        }
        Job job = spare.getAndSet(null);
        if (job == null) job = new Job();
        try {
            job.run(pool, wType, w, wOff, rows, k, x, xOff, ldx, n, y, yOff, ldy, accumulate);
        } finally {
            job.w = job.x = job.y = null; // do not keep callers' segments reachable
            spare.set(job);
        }
    }

    @Override
    public String name() { return "panel-" + kernel; }

    /** One call's state and the buffers reused across calls. */
    private final class Job implements WorkerPool.Body {
        DType wType;
        MemorySegment w, x, y;
        long wOff, xOff, yOff, rowBytes;
        int rows, k, ldx, n, ldy;
        boolean accumulate, converting;

        // The current A block: activation rows [i0, i0 + mc) in `panels` MR-row panels over all of K.
        int i0, mc, panels, ncBlock, colBlocks;

        float[] aPack = new float[0];            // (panels, K, MR) rounded activations, shared by all workers
        float[][] bPack = new float[0][];        // per worker: (NC / NR, KC, NR) decoded weights
        float[][] rowBuf = new float[0][];       // per worker: (NR, KC) decoded weight rows, or (K) one X row
        MemorySegment[] rowSeg = new MemorySegment[0];
        short[][] qs = new short[0][];           // per worker: (256) activation quants of one block
        short[][] bsums = new short[0][];        // per worker: (16) Q8_K group sums (unused, the quantizer fills them)
        byte[][] blk = new byte[0][];            // per worker: one K-quant block
        float[][] edge = new float[0][];         // per worker: (MR, NR) scratch tile for the edges of Y
        MemorySegment[] edgeSeg = new MemorySegment[0];

        void run(WorkerPool pool, DType wType, MemorySegment w, long wOff, int rows, int k,
                 MemorySegment x, long xOff, int ldx, int n, MemorySegment y, long yOff, int ldy, boolean accumulate) {
            this.wType = wType;
            this.w = w; this.wOff = wOff; this.rows = rows; this.k = k;
            this.x = x; this.xOff = xOff; this.ldx = ldx; this.n = n;
            this.y = y; this.yOff = yOff; this.ldy = ldy; this.accumulate = accumulate;
            this.rowBytes = wType.byteSize(k);
            int threads = pool.threads();
            ensureWorkers(threads);
            int mcMax = Math.max(mr, Math.min(roundUp(n, mr), aFloats / k / mr * mr));
            if (aPack.length < (long) mcMax * k) aPack = new float[mcMax * k];
            ncBlock = ncTask;
            if (ceilDiv(rows, ncBlock) < 2 * threads) {
                ncBlock = Math.max(nr, roundUp(ceilDiv(rows, 2 * threads), nr));
            }
            colBlocks = ceilDiv(rows, ncBlock);
            for (i0 = 0; i0 < n; i0 += mcMax) {
                mc = Math.min(mcMax, n - i0);
                panels = ceilDiv(mc, mr);
                // padding rows of the last panel are zero (their Y rows are never written)
                for (int r = mc % mr == 0 ? mr : mc % mr, base = (panels - 1) * mr * k; r < mr; r++) {
                    for (int p = 0; p < k; p++) aPack[base + p * mr + r] = 0f;
                }
                converting = true;
                pool.parallelFor(mc, this);
                converting = false;
                pool.parallelFor(colBlocks, this);
            }
        }

        private void ensureWorkers(int threads) {
            int rowLen = Math.max(nr * kcBlock, k);
            if (rowBuf.length < threads || rowBuf[0].length < rowLen) {
                bPack = new float[threads][];
                rowBuf = new float[threads][];
                rowSeg = new MemorySegment[threads];
                qs = new short[threads][];
                bsums = new short[threads][];
                blk = new byte[threads][];
                edge = new float[threads][];
                edgeSeg = new MemorySegment[threads];
                for (int t = 0; t < threads; t++) {
                    bPack[t] = new float[kcBlock * ncTask];
                    rowBuf[t] = new float[rowLen];
                    rowSeg[t] = MemorySegment.ofArray(rowBuf[t]);
                    qs[t] = new short[Q8_K.BLOCK];
                    bsums[t] = new short[Q8_K.BLOCK / Q8_K.GROUP];
                    blk[t] = new byte[Math.max(Q4_K.BYTES, Q6_K.BYTES)];
                    edge[t] = new float[mr * nr];
                    edgeSeg[t] = MemorySegment.ofArray(edge[t]);
                }
            }
        }

        @Override
        public void run(int task, int worker) {
            if (converting) convertRow(task, worker);
            else compute(task, worker);
        }

        /** Phase 1: X row {@code i0 + i}, rounded like the small-N path, into its slot of the A panels. */
        private void convertRow(int i, int worker) {
            float[] row = rowBuf[worker];
            MemorySegment.copy(x, Activations.F32_LE, (xOff + (long) (i0 + i) * ldx) * 4, row, 0, k);
            short[] q = qs[worker];
            switch (wType) {
                case F32 -> { }
                case F16 -> { for (int j = 0; j < k; j++) row[j] = Fp16.round(row[j]); }
                case BF16 -> { for (int j = 0; j < k; j++) row[j] = Bf16.round(row[j]); }
                case Q8_0, Q4_0, Q8_0_R16, Q4_0_R16 -> {
                    for (int b = 0; b < k; b += Q8_0.BLOCK) {
                        float d = Fp16.decode(Q8_0.quantizeBlockActivations(row, b, q, 0));
                        for (int j = 0; j < Q8_0.BLOCK; j++) row[b + j] = q[j] * d;
                    }
                }
                case Q4_K, Q6_K -> {
                    for (int b = 0; b < k; b += Q8_K.BLOCK) {
                        float d = Q8_K.quantizeBlock(row, b, q, 0, bsums[worker], 0);
                        for (int j = 0; j < Q8_K.BLOCK; j++) row[b + j] = q[j] * d;
                    }
                }
            }
            int base = i / mr * mr * k + i % mr;
            for (int p = 0; p < k; p++) aPack[base + p * mr] = row[p];
        }

        /** Phase 2: weight rows [j0, j0 + ncBlock) of Y's current row block, over all of K. */
        private void compute(int task, int worker) {
            int j0 = task * ncBlock;
            int nc = Math.min(ncBlock, rows - j0);
            int jPanels = ceilDiv(nc, nr);
            float[] bp = bPack[worker];
            long ldyBytes = (long) ldy * 4;
            for (int pc = 0; pc < k; pc += kcBlock) {
                int kc = Math.min(kcBlock, k - pc);
                for (int jp = 0; jp < jPanels; jp++) {
                    int j = j0 + jp * nr;
                    packPanel(worker, j, Math.min(nr, j0 + nc - j), pc, kc, bp, jp * nr * kc);
                }
                boolean add = accumulate || pc > 0;
                for (int ip = 0; ip < panels; ip++) {
                    int i = i0 + ip * mr;
                    int valid = Math.min(mr, n - i);
                    int ai = ip * mr * k + pc * mr;
                    for (int jp = 0; jp < jPanels; jp++) {
                        int j = j0 + jp * nr;
                        int cols = Math.min(nr, j0 + nc - j);
                        int bi = jp * nr * kc;
                        if (valid == mr && cols == nr) {
                            kernel.multiply(kc, aPack, ai, bp, bi, y, (yOff + (long) i * ldy + j) * 4, ldyBytes, add);
                        } else {
                            edgeTile(worker, kc, ai, bp, bi, i, j, valid, cols, add);
                        }
                    }
                }
            }
        }

        /** A tile that sticks out of Y: full tile into scratch, then only the valid part (rounded as the kernel would). */
        private void edgeTile(int worker, int kc, int ai, float[] bp, int bi, int i, int j, int valid, int cols,
                              boolean add) {
            float[] t = edge[worker];
            kernel.multiply(kc, aPack, ai, bp, bi, edgeSeg[worker], 0, (long) nr * 4, false);
            for (int r = 0; r < valid; r++) {
                long at = (yOff + (long) (i + r) * ldy + j) * 4;
                for (int jj = 0; jj < cols; jj++, at += 4) {
                    y.set(Activations.F32_LE, at, t[r * nr + jj] + (add ? y.get(Activations.F32_LE, at) : 0f));
                }
            }
        }

        /**
         * Decodes weight rows [j, j + cols) over K range [pc, pc + kc) into one NR-column B panel at {@code bp[d]}:
         * row by row into the worker's (NR, kc) buffer, then the GEMM's in-register transpose (zero-padded scatter
         * for the last, narrower panel).
         */
        private void packPanel(int worker, int j, int cols, int pc, int kc, float[] bp, int d) {
            float[] buf = rowBuf[worker];
            if (wType.inMemoryOnly()) { // row groups: already "transposed", 16 rows per step
                if (cols == nr && nr % RowGroups.ROWS == 0 && j % RowGroups.ROWS == 0) {
                    for (int s = 0; s < nr; s += RowGroups.ROWS) packGroup((j + s) / RowGroups.ROWS, pc, kc, bp, d + s);
                    return;
                }
                for (int jj = 0; jj < cols; jj++) RowGroups.dequantizeRow(wType, w, wOff, j + jj, k, pc, kc, buf, jj * kc);
                for (int p = 0; p < kc; p++) {
                    int o = d + p * nr;
                    for (int jj = 0; jj < cols; jj++) bp[o + jj] = buf[jj * kc + p];
                    for (int jj = cols; jj < nr; jj++) bp[o + jj] = 0f;
                }
                return;
            }
            long at = wOff + wType.byteSize(pc);
            for (int jj = 0; jj < cols; jj++) decode(w, at + (j + jj) * rowBytes, kc, buf, jj * kc, blk[worker]);
            if (cols == nr) {
                kernel.packTransposed(rowSeg[worker], 0, kc, kc, bp, d);
                return;
            }
            for (int p = 0; p < kc; p++) {
                int o = d + p * nr;
                for (int jj = 0; jj < cols; jj++) bp[o + jj] = buf[jj * kc + p];
                for (int jj = cols; jj < nr; jj++) bp[o + jj] = 0f;
            }
        }

        /**
         * Row group {@code g}'s 16 rows over K range [pc, pc + kc) into 16 columns of a B panel:
         * {@code bp[d + p·NR + r] = W[16g + r][pc + p]}, the values {@link RowGroups#dequantizeRow} gives.
         */
        private void packGroup(int g, int pc, int kc, float[] bp, int d) {
            int unit = RowGroups.unitBytes(wType), nb = k / 32;
            boolean q8 = wType == DType.Q8_0_R16;
            for (int b = pc / 32; b < (pc + kc) / 32; b++) {
                long u = wOff + ((long) g * nb + b) * unit;
                int o = d + (32 * b - pc) * nr;
                if (L == 16 && VEC) {
                    FloatVector s = FloatVector.fromMemorySegment(FS, w, u, ByteOrder.LITTLE_ENDIAN);
                    for (int jj = 0; jj < 32; jj++) {
                        ByteVector v = q8 ? ByteVector.fromMemorySegment(BS, w, u + 64 + 16L * jj, ByteOrder.LITTLE_ENDIAN)
                                : jj < 16 ? ByteVector.fromMemorySegment(BS, w, u + 64 + 16L * jj, ByteOrder.LITTLE_ENDIAN).and((byte) 0x0f).sub((byte) 8)
                                : ByteVector.fromMemorySegment(BS, w, u + 64 + 16L * (jj - 16), ByteOrder.LITTLE_ENDIAN)
                                        .lanewise(VectorOperators.LSHR, 4).and((byte) 0x0f).sub((byte) 8);
                        ((FloatVector) v.convertShape(VectorOperators.B2F, FS, 0)).mul(s).intoArray(bp, o + jj * nr);
                    }
                } else {
                    for (int r = 0; r < RowGroups.ROWS; r++) {
                        float s = w.get(Activations.F32_LE, u + 4L * r);
                        for (int jj = 0; jj < 32; jj++) {
                            int q = w.get(BYTE, u + 64 + 16L * (q8 ? jj : jj % 16) + r);
                            int v = q8 ? q : (jj < 16 ? (q & 0x0f) : ((q & 0xff) >>> 4)) - 8;
                            bp[o + jj * nr + r] = v * s;
                        }
                    }
                }
            }
        }

        /** {@code count} weights of the current type from byte {@code at} into {@code dst[d..]}, as Quant.dequantize does. */
        private void decode(MemorySegment src, long at, int count, float[] dst, int d, byte[] block) {
            switch (wType) {
                case F32 -> MemorySegment.copy(src, Activations.F32_LE, at, dst, d, count);
                case F16 -> { for (int e = 0; e < count; e++) dst[d + e] = Fp16.decode(src.get(SHORT_LE, at + 2L * e)); }
                case BF16 -> decodeBf16(src, at, count, dst, d);
                case Q8_0 -> decodeQ8(src, at, count, dst, d);
                case Q4_0 -> decodeQ4(src, at, count, dst, d);
                case Q4_K -> Q4_K.dequantize(src, at, dst, d, count, block);
                case Q6_K -> Q6_K.dequantize(src, at, dst, d, count, block);
            }
        }
    }

    /**
     * Q8_0: {@code q·d}. Vectorised when the preferred float vector has 8 or 16 lanes (L bytes widened to L
     * floats per step); the values are exact products either way, so the scalar loop gives the same bits.
     */
    static void decodeQ8(MemorySegment src, long at, int count, float[] dst, int d) {
        for (int b = 0; b < count; b += Q8_0.BLOCK, at += Q8_0.BYTES) {
            float s = Fp16.decode(src.get(SHORT_LE, at));
            if (VEC) {
                for (int j = 0; j < Q8_0.BLOCK; j += L) {
                    ((FloatVector) ByteVector.fromMemorySegment(BS, src, at + 2 + j, ByteOrder.LITTLE_ENDIAN)
                            .convertShape(VectorOperators.B2F, FS, 0)).mul(s).intoArray(dst, d + b + j);
                }
            } else {
                for (int j = 0; j < Q8_0.BLOCK; j++) dst[d + b + j] = src.get(BYTE, at + 2 + j) * s;
            }
        }
    }

    /** Q4_0: {@code (nibble − 8)·d}, low nibbles first; vectorised like {@link #decodeQ8}. */
    static void decodeQ4(MemorySegment src, long at, int count, float[] dst, int d) {
        for (int b = 0; b < count; b += 32, at += 18) {
            float s = Fp16.decode(src.get(SHORT_LE, at));
            int o = d + b;
            if (VEC) {
                for (int j = 0; j < 16; j += L) {
                    ByteVector q = ByteVector.fromMemorySegment(BS, src, at + 2 + j, ByteOrder.LITTLE_ENDIAN);
                    ByteVector lo = q.and((byte) 0x0f).sub((byte) 8);
                    ByteVector hi = q.lanewise(VectorOperators.LSHR, 4).and((byte) 0x0f).sub((byte) 8);
                    ((FloatVector) lo.convertShape(VectorOperators.B2F, FS, 0)).mul(s).intoArray(dst, o + j);
                    ((FloatVector) hi.convertShape(VectorOperators.B2F, FS, 0)).mul(s).intoArray(dst, o + 16 + j);
                }
            } else {
                for (int j = 0; j < 16; j++) {
                    int q = src.get(BYTE, at + 2 + j) & 0xff;
                    dst[o + j] = ((q & 0x0f) - 8) * s;
                    dst[o + j + 16] = ((q >>> 4) - 8) * s;
                }
            }
        }
    }

    /** BF16: the 16 bits are a float's upper half; vectorised like {@link #decodeQ8}. */
    static void decodeBf16(MemorySegment src, long at, int count, float[] dst, int d) {
        int e = 0;
        if (VEC) {
            for (; e + L <= count; e += L) {
                ShortVector h = ShortVector.fromMemorySegment(SS, src, at + 2L * e, ByteOrder.LITTLE_ENDIAN);
                ((IntVector) h.convertShape(VectorOperators.S2I, IS, 0)).lanewise(VectorOperators.LSHL, 16)
                        .reinterpretAsFloats().intoArray(dst, d + e);
            }
        }
        for (; e < count; e++) dst[d + e] = Bf16.decode(src.get(SHORT_LE, at + 2L * e));
    }

    private static int ceilDiv(int x, int y) { return (x + y - 1) / y; }

    private static int roundUp(int x, int y) { return ceilDiv(x, y) * y; }
}
