package io.moe4j.kernel.gemm;

import io.moe4j.parallel.WorkerPool;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Vector API SGEMM in the Goto/BLIS style: pack, tile for the caches, and spend the time in one register-blocked
 * microkernel ({@link GemmKernel}).
 *
 * <p>Non-goals: other precisions, complex numbers, alpha/beta other than 1 and 0/1 ({@code accumulate}), and
 * beating OpenBLAS — the aim is to be close to it from plain Java.
 *
 * <h2>Loop structure</h2>
 * The vectors run along N (a row of C is contiguous), so this is BLIS with the roles of A and B mirrored:
 * <pre>
 *   for i0 in M step MC                       A block: MC rows × KB of K, packed once, shared by all workers (L3)
 *     for k0 in K step KB
 *       phase 1, parallel: pack A[i0.., k0..] into MR-row panels (every transpose handled here)
 *       phase 2, parallel over tasks = column blocks of NC, narrowed down to NC_MIN when there are fewer
 *                than two per thread (× row chunks when even those are too few):
 *         for pc in k0.. step KC
 *           pack B[pc.., j0..] into this worker's KC×NC buffer of NR-column panels   (L2, 256 KB)
 *           for each MR-row panel of A          (MR×KC = 8 KB: stays in L1 while …)
 *             for each NR-column panel of B     (… B panels stream from L2)
 *               microkernel: MR×NR tile of C (+)= A panel · B panel over kc
 * </pre>
 * Packing makes the four transpose forms one problem: only the packing loops differ. Packed panels are zero-padded
 * to whole MR/NR tiles; a tile that sticks out of C is computed into a scratch tile and only its valid part is
 * written back. Full panels are packed by the kernel class with vectors, and always reading storage along its rows:
 * B stored K×N row by row across all of a block's panels (panel by panel, each 128-byte run sat 4 KB from the
 * next and the prefetcher lost track: NN 64×2048×1024 at 2 threads 136 → 160–176 GFLOP/s), Bᵀ by 16×16
 * in-register transposes, A stored M×K by 8×16 transposes, Aᵀ row by row across the task's panels (panel by
 * panel it read 32 bytes per 4 KB row: TN 1024×512×512, 1 thread, 83 → 98).
 *
 * <p>Why these sizes (Zen4, 32 KB L1d, 1 MB L2 per core, shared L3): KC = 256 keeps the A micro-panel (8×256
 * floats) in L1 and NC = 256 makes the packed B block 256 KB, a quarter of L2, leaving room for C and the A
 * stream. A whole A block of up to MC = 1024 rows is packed up front so that each compute task packs only its own
 * B block and nothing is packed twice: for the MoE expert shape (64×2048 activations times 1024×2048 weights)
 * that is 64 × 2048 floats of A once, then four tasks of 256 weight rows each.
 *
 * <p>Measured on the 2-core Zen4 dev VM (GemmTiming, best of rounds, machine shared so ±30 %): 512-bit, 1 thread
 * 2048³ 90–94 GFLOP/s in all forms, 64×2048×1024 NT 93; 2 threads 2048³ NT 197, 64×2048×1024 NT 174, NN 139.
 * OpenBLAS 0.3.21 in the same session: 1 thread 2048³ ≈ 100, 64×2048×1024 ≈ 59; 2 threads ≈ 199 and ≈ 133.
 * MoE expert backward shapes (M×K×N, GemmTiming best of 3 alternating runs against the previous packing, machine
 * loaded by other jobs): 1 thread TN 512×512×1024 90 → 100, TN 1024×512×512 81 → 100, NN 512×1024×512 97 → 101,
 * NN 512×512×1024 and NT unchanged (100, 103); 2 threads TN 172 → 183 and 169 → 189, NN 182 → 185.
 *
 * <h2>Determinism</h2>
 * Every element of C is computed the same way wherever its tile lies: a chain of FMAs over p in order within each
 * KC block (KC blocks start at multiples of KC), then {@code acc + C} (or {@code acc + 0}). Tasks only choose which tiles a thread
 * computes, so C is bit-identical for any thread count, any task split, and any vector width.
 *
 * <h2>Buffers</h2>
 * Packing buffers live in a {@link Job}, reused by the next call (no allocation once warm). A caller that arrives
 * while another call holds the job gets a fresh one, so concurrent calls from different threads are safe.
 */
public final class SimdGemm implements Gemm {
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED;

    /** Depth of one packed K block (see class comment). */
    static final int KC = 256;
    /** Columns per compute task, before rounding down to a multiple of NR. */
    static final int NC = 256;
    /**
     * Narrowest column block used to give every thread work before splitting rows (which packs each B block once
     * per row chunk): with the A block shared, narrower column blocks only cost fewer kernel calls per A panel.
     */
    static final int NC_MIN = 128;
    /** Rows of the shared packed A block, before rounding up to a multiple of MR. */
    static final int MC = 1024;
    /**
     * A blocks up to this many floats (128 KB) are packed by the calling thread: a parallel packing phase costs
     * one more pool hand-off, which for the small GEMMs of a training step (d = 128..512, a few hundred rows)
     * is worth more than the packing itself, and on a loaded machine a hand-off can wait for a descheduled worker.
     */
    static final int INLINE_PACK_FLOATS = 1 << 15;
    /** Products of at most this many multiply-adds (4 MFLOP) are computed by the calling thread alone. */
    static final long INLINE_MACS = 1L << 21;
    /** Bound on the packed A block (8 MB), which decides how much of K one block covers. */
    static final int A_BLOCK_FLOATS = 1 << 21;

    private final GemmKernel kernel;
    private final int mr;
    private final int nr;
    // Block sizes: the constants above, or smaller ones so tests reach every blocking loop with small operands.
    private final int kcBlock;
    private final int ncTask;
    private final int mcBlock;
    private final int aBlockFloats;
    private final AtomicReference<Job> spare = new AtomicReference<>();

    /** The kernel for this CPU's preferred vector width. */
    public SimdGemm() {
        this(FloatVector.SPECIES_PREFERRED);
    }

    /** The kernel for a given vector width (128, 256 or 512 bits): lets tests run every path on one machine. */
    public SimdGemm(VectorSpecies<Float> species) {
        this(species, KC, NC, MC, A_BLOCK_FLOATS);
    }

    /** Tests only: other block sizes. */
    SimdGemm(VectorSpecies<Float> species, int kc, int nc, int mc, int aBlockFloats) {
        this.kernel = GemmKernel.of(species);
        this.mr = kernel.mr;
        this.nr = kernel.nr;
        this.kcBlock = kc;
        this.ncTask = Math.max(nr, nc / nr * nr);
        this.mcBlock = Math.max(mr, mc / mr * mr);
        this.aBlockFloats = aBlockFloats;
    }

    @Override
    public void sgemm(WorkerPool pool, boolean transA, boolean transB, int m, int n, int k,
                      MemorySegment a, long aOff, int lda, MemorySegment b, long bOff, int ldb,
                      MemorySegment c, long cOff, int ldc, boolean accumulate) {
        GemmChecks.check(transA, transB, m, n, k, a, aOff, lda, b, bOff, ldb, c, cOff, ldc);
        multiply(pool, transA, transB, m, n, k, a, aOff, lda, b, bOff, b, bOff, Integer.MAX_VALUE, ldb,
                c, cOff, c, cOff, Integer.MAX_VALUE, ldc, accumulate);
    }

    /**
     * One pass over the stacked operands: packing reads each B row from its piece and tiles of C are written to
     * theirs, so A is packed once and each B block once, as for a single operand. A B panel or K block that
     * straddles bSplit, and a C tile that straddles cSplit, take the scalar edge paths. Along K the product is
     * blocked as one K range, so the result equals two accumulating calls only when bSplit is a multiple of KC
     * (256): true for the expert widths that matter (f = 256, 512, 1024 …); otherwise it differs by rounding.
     */
    @Override
    public void sgemmStacked(WorkerPool pool, boolean transA, boolean transB, int m, int n, int k,
                             MemorySegment a, long aOff, int lda,
                             MemorySegment b, long bOff, MemorySegment b2, long b2Off, int bSplit, int ldb,
                             MemorySegment c, long cOff, MemorySegment c2, long c2Off, int cSplit, int ldc,
                             boolean accumulate) {
        GemmChecks.checkStacked(transA, transB, m, n, k, a, aOff, lda, b, bOff, b2, b2Off, bSplit, ldb,
                c, cOff, c2, c2Off, cSplit, ldc);
        multiply(pool, transA, transB, m, n, k, a, aOff, lda, b, bOff, b2, b2Off, bSplit, ldb,
                c, cOff, c2, c2Off, cSplit, ldc, accumulate);
    }

    private void multiply(WorkerPool pool, boolean transA, boolean transB, int m, int n, int k,
                          MemorySegment a, long aOff, int lda,
                          MemorySegment b, long bOff, MemorySegment b2, long b2Off, int bSplit, int ldb,
                          MemorySegment c, long cOff, MemorySegment c2, long c2Off, int cSplit, int ldc,
                          boolean accumulate) {
        if (m == 0 || n == 0) return;
        if (k == 0) {
            if (!accumulate) {
                for (int i = 0; i < m; i++) {
                    long row = i < cSplit ? cOff + (long) i * ldc : c2Off + (long) (i - cSplit) * ldc;
                    (i < cSplit ? c : c2).asSlice(row * 4, (long) n * 4).fill((byte) 0);
                }
            }
            return;
        }
        Job job = spare.getAndSet(null);
        if (job == null) {
            GemmJit.ensureC2Only(); // once per JVM, before the kernels get hot
            job = new Job();
        }
        try {
            job.b2 = b2; job.b2Off = b2Off; job.bSplit = bSplit;
            job.c2 = c2; job.c2Off = c2Off; job.cSplit = cSplit;
            job.run(pool, transA, transB, m, n, k, a, aOff, lda, b, bOff, ldb, c, cOff, ldc, accumulate);
        } finally {
            job.a = job.b = job.c = job.b2 = job.c2 = null; // do not keep the caller's memory reachable
            spare.set(job);
        }
    }

    @Override
    public Gemm fork() { return new SimdGemm(kernel.species, kcBlock, ncTask, mcBlock, aBlockFloats); }

    @Override
    public String name() { return "simd-" + kernel; }

    /** The state of one call: operands, the current A block, and the packing buffers reused across calls. */
    private final class Job {
        private boolean transA, transB, accumulate;
        private int m, n, k, lda, ldb, ldc;
        private MemorySegment a, b, c;
        private long aOff, bOff, cOff;
        // Second pieces of stacked B and C (sgemmStacked): B storage rows ≥ bSplit, C rows ≥ cSplit.
        private MemorySegment b2, c2;
        private long b2Off, c2Off;
        private int bSplit, cSplit;

        // The current A block: rows [i0, i0 + mc) in `panels` MR-row panels, K range [k0, k0 + kb).
        private int i0, mc, panels, k0, kb;
        private int packTasks, ncBlock, colBlocks, rowChunks, panelsPerChunk;

        private float[] aPack = new float[0];     // (panels, kb, MR) shared by all workers
        private float[][] bPack = new float[0][];   // per worker: (NC / NR, KC, NR)
        private float[][] edge = new float[0][];    // per worker: (MR, NR) scratch tile for the edges of C
        private MemorySegment[] edgeSeg = new MemorySegment[0];

        // Bound once, so that a call allocates no lambdas.
        private final WorkerPool.Body packABody = this::packA;
        private final WorkerPool.Body computeBody = this::compute;

        void run(WorkerPool pool, boolean transA, boolean transB, int m, int n, int k,
                 MemorySegment a, long aOff, int lda, MemorySegment b, long bOff, int ldb,
                 MemorySegment c, long cOff, int ldc, boolean accumulate) {
            this.transA = transA; this.transB = transB; this.accumulate = accumulate;
            this.m = m; this.n = n; this.k = k;
            this.a = a; this.aOff = aOff; this.lda = lda;
            this.b = b; this.bOff = bOff; this.ldb = ldb;
            this.c = c; this.cOff = cOff; this.ldc = ldc;

            // Small products run on the calling thread: a hand-off costs ~10 µs on an idle machine and up to a
            // time slice on a loaded one (a descheduled worker holding a task), against ~45 µs of work here.
            int threads = (long) m * n * k <= INLINE_MACS ? 1 : pool.threads();
            ensureWorkers(pool.threads());
            int mcMax = Math.min(roundUp(m, mr), mcBlock);
            // KB is a multiple of KC, so K blocks start at multiples of KC whatever the shape: see Determinism.
            int kbMax = Math.min(k, Math.max(kcBlock, aBlockFloats / mcMax / kcBlock * kcBlock));
            if (aPack.length < mcMax * kbMax) aPack = new float[mcMax * kbMax];
            ncBlock = ncTask;
            if (threads > 1 && ceilDiv(n, ncBlock) < 2 * threads) {
                ncBlock = Math.min(ncTask, Math.max(NC_MIN / nr * nr, roundUp(ceilDiv(n, 2 * threads), nr)));
            }
            colBlocks = ceilDiv(n, ncBlock);

            for (i0 = 0; i0 < m; i0 += mcMax) {
                mc = Math.min(mcMax, m - i0);
                panels = ceilDiv(mc, mr);
                packTasks = Math.min(panels, 4 * threads);
                // Too few column blocks to feed every thread: also split the rows (each chunk packs its own B).
                int chunks = threads > 1 && colBlocks < 2 * threads ? ceilDiv(2 * threads, colBlocks) : 1;
                panelsPerChunk = ceilDiv(panels, Math.min(chunks, panels));
                rowChunks = ceilDiv(panels, panelsPerChunk);
                for (k0 = 0; k0 < k; k0 += kbMax) {
                    kb = Math.min(kbMax, k - k0);
                    if ((long) mc * kb <= INLINE_PACK_FLOATS) {
                        for (int t = 0; t < packTasks; t++) packA(t, 0);
                    } else {
                        pool.parallelFor(packTasks, packABody);
                    }
                    if (threads == 1) {
                        for (int t = 0; t < rowChunks * colBlocks; t++) compute(t, 0);
                    } else {
                        pool.parallelFor(rowChunks * colBlocks, computeBody);
                    }
                }
            }
        }

        private void ensureWorkers(int threads) {
            if (bPack.length >= threads) return;
            bPack = new float[threads][];
            edge = new float[threads][];
            edgeSeg = new MemorySegment[threads];
            for (int w = 0; w < threads; w++) {
                bPack[w] = new float[kcBlock * ncTask];
                edge[w] = new float[mr * nr];
                edgeSeg[w] = MemorySegment.ofArray(edge[w]);
            }
        }

        /** Phase 1: packs a share of the A block's MR-row panels: {@code aPack[ip][p][r] = op(A)[i0 + ip·MR + r][k0 + p]}. */
        private void packA(int task, int worker) {
            int per = ceilDiv(panels, packTasks);
            int from = task * per;
            int to = Math.min(panels, (task + 1) * per);
            if (from >= to) return;
            // Full panels (all but possibly the last of the block) through the kernel's vector packing.
            int full = to == panels && mc % mr != 0 ? to - 1 : to;
            if (!transA) {
                for (int ip = from; ip < full; ip++) {
                    kernel.packARows(a, aOff + (long) (i0 + ip * mr) * lda + k0, lda, kb, aPack, ip * mr * kb);
                }
            } else if (full > from) {
                kernel.packAColumns(a, aOff + (long) k0 * lda + i0 + from * mr, lda, kb, full - from, aPack,
                        from * mr * kb, mr * kb);
            }
            for (int ip = full; ip < to; ip++) {
                int row0 = i0 + ip * mr;
                int rows = Math.min(mr, m - row0);
                int base = ip * mr * kb;
                if (!transA) {
                    // A is M×K: each row is contiguous along K; interleave MR rows.
                    for (int r = 0; r < rows; r++) {
                        long src = aOff + (long) (row0 + r) * lda + k0;
                        for (int p = 0, d = base + r; p < kb; p++, d += mr) aPack[d] = a.getAtIndex(F, src + p);
                    }
                } else {
                    // A is K×M: the MR values of one step p are contiguous.
                    for (int p = 0; p < kb; p++) {
                        long src = aOff + (long) (k0 + p) * lda + row0;
                        int d = base + p * mr;
                        for (int r = 0; r < rows; r++) aPack[d + r] = a.getAtIndex(F, src + r);
                    }
                }
                for (int p = 0; p < kb; p++) {
                    for (int r = rows; r < mr; r++) aPack[base + p * mr + r] = 0f;
                }
            }
        }

        /** Phase 2: one block of columns (and rows, if split) of C over the current A block's K range. */
        private void compute(int task, int worker) {
            int j0 = (task % colBlocks) * ncBlock;
            int nc = Math.min(ncBlock, n - j0);
            int jPanels = ceilDiv(nc, nr);
            int pFrom = (task / colBlocks) * panelsPerChunk;
            int pTo = Math.min(panels, pFrom + panelsPerChunk);
            float[] bp = bPack[worker];
            long ldcBytes = (long) ldc * 4;
            for (int pc = k0; pc < k0 + kb; pc += kcBlock) {
                int kc = Math.min(kcBlock, k0 + kb - pc);
                packB(bp, pc, kc, j0, nc);
                boolean add = accumulate || pc > 0;
                for (int ip = pFrom; ip < pTo; ip++) {
                    int i = i0 + ip * mr;
                    int rows = Math.min(mr, m - i);
                    int ai = ip * mr * kb + (pc - k0) * mr;
                    for (int jp = 0; jp < jPanels; jp++) {
                        int j = j0 + jp * nr;
                        int cols = Math.min(nr, j0 + nc - j);
                        int bi = jp * nr * kc;
                        if (rows == mr && cols == nr && (i + mr <= cSplit || i >= cSplit)) {
                            kernel.multiply(kc, aPack, ai, bp, bi, cSeg(i), (cRow(i) + j) * 4, ldcBytes, add);
                        } else {
                            edgeTile(worker, kc, ai, bp, bi, i, j, rows, cols, add);
                        }
                    }
                }
            }
        }

        /** A tile that sticks out of C: full tile into scratch, then only the valid part into C. */
        private void edgeTile(int worker, int kc, int ai, float[] bp, int bi, int i, int j, int rows, int cols,
                              boolean add) {
            float[] t = edge[worker];
            kernel.multiply(kc, aPack, ai, bp, bi, edgeSeg[worker], 0, (long) nr * 4, false);
            for (int r = 0; r < rows; r++) {
                MemorySegment cs = cSeg(i + r);
                long row = cRow(i + r) + j;
                for (int jj = 0; jj < cols; jj++) {
                    // acc + (C or 0): exactly the kernel's masked add, so a tile rounds the same wherever it lies.
                    cs.setAtIndex(F, row + jj, t[r * nr + jj] + (add ? cs.getAtIndex(F, row + jj) : 0f));
                }
            }
        }

        /** Piece of C holding row i, and the index of the row's first element in it. */
        private MemorySegment cSeg(int i) { return i < cSplit ? c : c2; }
        private long cRow(int i) { return i < cSplit ? cOff + (long) i * ldc : c2Off + (long) (i - cSplit) * ldc; }
        /** Piece of B holding storage row r (n if transB, else k), and the index of the row's first element. */
        private MemorySegment bSeg(int r) { return r < bSplit ? b : b2; }
        private long bRow(int r) { return r < bSplit ? bOff + (long) r * ldb : b2Off + (long) (r - bSplit) * ldb; }

        /** Packs op(B)[pc.., j0..] into NR-column panels: {@code bp[jp][p][jj] = op(B)[pc + p][j0 + jp·NR + jj]}. */
        private void packB(float[] bp, int pc, int kc, int j0, int nc) {
            int full = nc / nr;
            // Full panels (all but the last of C's width): vector copies or in-register transposes, unless the
            // rows they read straddle the split of a stacked B (then element by element).
            if (!transB) {
                if (full > 0) {
                    if (pc + kc <= bSplit || pc >= bSplit) {
                        kernel.packRuns(bSeg(pc), bRow(pc) + j0, ldb, kc, full, bp, 0);
                    } else {
                        for (int p = 0; p < kc; p++) {
                            MemorySegment bs = bSeg(pc + p);
                            long src = bRow(pc + p) + j0;
                            for (int jp = 0; jp < full; jp++) {
                                int d = jp * nr * kc + p * nr;
                                for (int jj = 0; jj < nr; jj++) bp[d + jj] = bs.getAtIndex(F, src + jp * nr + jj);
                            }
                        }
                    }
                }
            } else {
                for (int jp = 0; jp < full; jp++) {
                    int r0 = j0 + jp * nr;
                    if (r0 + nr <= bSplit || r0 >= bSplit) {
                        kernel.packTransposed(bSeg(r0), bRow(r0) + pc, ldb, kc, bp, jp * nr * kc);
                    } else {
                        for (int jj = 0; jj < nr; jj++) {
                            MemorySegment bs = bSeg(r0 + jj);
                            long src = bRow(r0 + jj) + pc;
                            for (int p = 0, d = jp * nr * kc + jj; p < kc; p++, d += nr) bp[d] = bs.getAtIndex(F, src + p);
                        }
                    }
                }
            }
            if (full * nr == nc) return;
            int j = j0 + full * nr, base = full * nr * kc;
            int cols = nc - full * nr;
            if (!transB) {
                // B is K×N: the NR values of one step p are contiguous.
                for (int p = 0; p < kc; p++) {
                    MemorySegment bs = bSeg(pc + p);
                    long src = bRow(pc + p) + j;
                    int d = base + p * nr;
                    for (int jj = 0; jj < cols; jj++) bp[d + jj] = bs.getAtIndex(F, src + jj);
                }
            } else {
                // B is N×K: each row of B is a column of op(B), contiguous along K; interleave NR rows.
                for (int jj = 0; jj < cols; jj++) {
                    MemorySegment bs = bSeg(j + jj);
                    long src = bRow(j + jj) + pc;
                    for (int p = 0, d = base + jj; p < kc; p++, d += nr) bp[d] = bs.getAtIndex(F, src + p);
                }
            }
            for (int p = 0; p < kc; p++) {
                for (int jj = cols; jj < nr; jj++) bp[base + p * nr + jj] = 0f;
            }
        }
    }

    private static int ceilDiv(int x, int y) { return (x + y - 1) / y; }

    private static int roundUp(int x, int y) { return ceilDiv(x, y) * y; }
}
