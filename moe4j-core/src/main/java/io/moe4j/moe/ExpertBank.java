package io.moe4j.moe;

import io.moe4j.kernel.Kernels;
import io.moe4j.kernel.gemm.Gemm;
import io.moe4j.kernel.row.ErfGelu;
import io.moe4j.kernel.row.RowOps;
import io.moe4j.nn.F32;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * E experts of one FFN type with stacked weights, run as a grouped GEMM over contiguous per-expert row blocks
 * (the bins of {@link Dispatch}). Also used with E = 1 over all tokens for the shared experts.
 *
 * <pre>
 *   gated (SwiGLU/GeGLU):  H = X·W_gateᵀ, U = X·W_upᵀ, A = act(H) ⊙ U, Y = A·W_downᵀ
 *   plain MLP:             H = X·W_upᵀ,                A = act(H),     Y = A·W_downᵀ
 *   W_gate, W_up: (E, f, d)    W_down: (E, d, f)      — PyTorch [out, in] layout per expert
 * </pre>
 * Backward (per expert block, all GEMMs accumulate into the weight gradients):
 * <pre>
 *   dA = dY·W_down           dW_down += dYᵀ·A
 *   gated: dH, dU from dA    plain: dH = act'(H) ⊙ dA
 *   dW_gate += dHᵀ·X         dW_up += dUᵀ·X (plain: dHᵀ·X)
 *   dX = dH·W_gate + dU·W_up (plain: dH·W_up)
 * </pre>
 * H, U and A are kept from the forward: the activation's backward needs H and U, the down projection's weight
 * gradient needs A. Recomputing A would save one (R, f) buffer for one more pass over it; memory is not the
 * constraint at the sizes this layer trains.
 *
 * <p>Fused gate|up (gated types, gate input = X): H and U share one (R, 2f) buffer, row r = [H_r | U_r], and so do
 * dH and dU. Then the two forward projections are one GEMM [H|U] = X·[W_gate; W_up]ᵀ and the two weight gradients
 * one GEMM [dW_gate; dW_up] += [dH|dU]ᵀ·X — through {@link Gemm#sgemmStacked}, which reads W_gate and W_up (and
 * writes their gradients) in place, so the parameters keep their names and (E, f, d) shapes. X is packed once per
 * pass instead of twice, and each expert runs 7 GEMM calls instead of 9 (each call is two pool hand-offs).
 * Same bits as separate GEMMs (the split runs along N or M). The input gradient dX = dH·W_gate + dU·W_up stays two
 * GEMMs: one stacked NN over K = 2f measured 1–4 % slower per CPU-second (StackedTiming, 1 thread) and would
 * round differently when f is not a multiple of 256. {@code -Dmoe4j.moe.fusedGateUp=false} runs separate GEMMs.
 *
 * <p>Factorised gate (Autonomy-of-Experts, spec §4.15): with a gate width {@code r < d} the gate projection reads a
 * separate input G (R, r) instead of X — the router's low-rank activation A_{t,e} = x_t·W_down,e, so
 * {@code W_gate,e} (f, r) is AoE's W_up,e and the full gate is W_up,e·W_down,e. Then H = G·W_gateᵀ,
 * {@code dW_gate += dHᵀ·G}, and the backward returns dG = dH·W_gate separately from dX = dU·W_up.
 *
 * <p>Output width (MMoE, spec §4.19): the down projection may map to {@code outWidth ≠ d}; then W_down is
 * (E, outWidth, f) and Y, dY have rows of outWidth floats. Everything else is unchanged.
 */
public final class ExpertBank {
    private static final int ROW_CHUNK = 16;
    /**
     * Bins up to this many rows on average are run one expert per task when tiles are not used (see {@link #schedule}). Measured with
     * E=64, d=512, f=256 on 2 threads: one expert per task is 15–40 % faster at 8–32 rows per expert, and parallel
     * GEMMs win at 256+ rows (moe4j bench moe-layer; /tmp-style harness numbers in docs/BENCHMARKS.md).
     */
    private static final int SPLIT_MAX_ROWS = Integer.getInteger("moe4j.moe.splitMaxRows", 128);
    private static final String EXPERT_PARALLEL = System.getProperty("moe4j.moe.expertParallel", "auto");
    /**
     * Column tiles of the tiled schedule: from MAX_TILE down to MIN_TILE columns until there are enough tasks.
     * Multiples of 64 so that a tile's activation rows start on a vector boundary (the same lanes as a whole row).
     */
    private static final int MAX_TILE = 512, MIN_TILE = 64;
    /** Allowed excess of the one-expert-per-task schedule's finish over an even split (see {@link #heavyHead}). */
    private static final double LPT_SLACK = 0.10;
    private String splitMode = EXPERT_PARALLEL;
    private boolean fusedGateUp = Boolean.parseBoolean(System.getProperty("moe4j.moe.fusedGateUp", "true"));

    private final Kernels kernels;
    private final WorkerPool pool;
    private final ExpertType type;
    private final int e, d, f;
    private final int gw;     // gate input width: d, or the rank r of a factorised gate
    private final int dOut;   // output width: d, or an MMoE expert width
    private final Param gate; // (E, f, gw), null for plain MLPs
    private final Param up;   // (E, f, d)
    private final Param down; // (E, dOut, f)
    private final Gemm[] workerGemm; // one per pool worker, for GEMMs inside tasks (own packing buffers)

    // Tiled schedule of the current call: task t = columns [tileCol0[t], +tileCols[t]) of expert tileExpert[t].
    private final int[] order;                          // (E) non-empty experts, most rows first
    private final long[] lptFinish;                     // (threads) scratch of heavyHead
    private final int[] tileExpert, tileCol0, tileCols; // (E · ceil(max(f, d, gw) / MIN_TILE))
    private int tileCount;

    // Activations, (maxRows, ·), preallocated. Gated: h = [H|U] and dH = [dH|dU], (R, 2f), U at column f.
    private final MemorySegment h, a, y;      // (R, hs) (R, f) (R, dOut)
    private final MemorySegment dA, dH;       // (R, f) (R, hs)
    private final int hs;                     // row stride of h and dH: 2f gated, f plain

    public ExpertBank(Arena arena, String prefix, ExpertType type, int e, int d, int f, int maxRows,
                      Kernels kernels, WorkerPool pool) {
        this(arena, prefix, type, e, d, f, d, maxRows, kernels, pool);
    }

    /** @param gateWidth width of the gate projection's input: d, or the rank of a factorised gate (gated types) */
    public ExpertBank(Arena arena, String prefix, ExpertType type, int e, int d, int f, int gateWidth, int maxRows,
                      Kernels kernels, WorkerPool pool) {
        this(arena, prefix, type, e, d, f, gateWidth, d, maxRows, kernels, pool);
    }

    /** @param outWidth width of the experts' output (the down projection's rows): d, or an MMoE expert width */
    public ExpertBank(Arena arena, String prefix, ExpertType type, int e, int d, int f, int gateWidth, int outWidth,
                      int maxRows, Kernels kernels, WorkerPool pool) {
        if (outWidth <= 0) throw new IllegalArgumentException(prefix + ": output width must be > 0, got " + outWidth);
        if (gateWidth != d && !type.gated()) {
            throw new IllegalArgumentException(prefix + ": a factorised gate needs a gated expert type, got " + type);
        }
        this.kernels = kernels;
        this.pool = pool;
        this.type = type;
        this.e = e;
        this.d = d;
        this.f = f;
        this.gw = gateWidth;
        this.dOut = outWidth;
        this.gate = type.gated() ? new Param(arena, prefix + ".gate", e, f, gateWidth) : null;
        this.up = new Param(arena, prefix + ".up", e, f, d);
        this.down = new Param(arena, prefix + ".down", e, outWidth, f);
        long rf = (long) maxRows * f;
        this.hs = type.gated() ? 2 * f : f;
        this.h = F32.alloc(arena, (long) maxRows * hs);
        this.a = F32.alloc(arena, rf);
        this.y = F32.alloc(arena, (long) maxRows * outWidth);
        this.dA = F32.alloc(arena, rf);
        this.dH = F32.alloc(arena, (long) maxRows * hs);
        this.workerGemm = new Gemm[pool.threads()];
        for (int w = 0; w < workerGemm.length; w++) workerGemm[w] = kernels.gemm().fork();
        this.order = new int[e];
        this.lptFinish = new long[pool.threads()];
        int maxTiles = e * ((Math.max(Math.max(f, d), Math.max(gateWidth, outWidth)) + MIN_TILE - 1) / MIN_TILE);
        this.tileExpert = new int[maxTiles];
        this.tileCol0 = new int[maxTiles];
        this.tileCols = new int[maxTiles];
    }

    public List<Param> params() {
        List<Param> ps = new ArrayList<>(3);
        if (gate != null) ps.add(gate);
        ps.add(up);
        ps.add(down);
        return ps;
    }

    /**
     * "auto" (default), "tiles" (tasks = column tiles of every expert), "on" (one expert per task) or "off"
     * (parallel inside each GEMM); see {@link #schedule}.
     */
    public void splitMode(String mode) {
        if (!java.util.List.of("auto", "tiles", "on", "off").contains(mode)) {
            throw new IllegalArgumentException("split mode must be auto, tiles, on or off, got '" + mode + "'");
        }
        this.splitMode = mode;
    }

    /** Whether gated experts run gate and up as one stacked GEMM per pass (default true; same-JVM comparisons). */
    public void fusedGateUp(boolean on) { this.fusedGateUp = on; }

    public Param gate() { return gate; }
    public Param up() { return up; }
    public Param down() { return down; }
    public ExpertType type() { return type; }
    public int hidden() { return f; }
    /** Width of the gate projection's input (d, or the rank of a factorised gate). */
    public int gateWidth() { return gw; }
    /** Width of the experts' output rows (d unless built with another output width). */
    public int outputWidth() { return dOut; }

    /** Output rows Y (R, outputWidth) of the last forward. */
    public MemorySegment output() { return y; }

    /**
     * Forward over permuted rows: expert j owns rows [binStart[j], binStart[j+1]) of x (row stride d). Output in
     * {@link #output()}.
     */
    public void forward(MemorySegment x, long xOff, int[] binStart) {
        forward(x, xOff, x, xOff, binStart);
    }

    /** As {@link #forward(MemorySegment, long, int[])} with the gate projection reading gateX (R, gateWidth). */
    public void forward(MemorySegment x, long xOff, MemorySegment gateX, long gateXOff, int[] binStart) {
        switch (schedule(binStart, true)) {
            case TILES -> {
                int nonEmpty = sortExperts(binStart);
                planTiles(f, nonEmpty);
                pool.parallelFor(tileCount, (t, w) -> hiddenTile(workerGemm[w], tileExpert[t], tileCol0[t], tileCols[t],
                        x, xOff, gateX, gateXOff, binStart));
                planTiles(dOut, nonEmpty);
                pool.parallelFor(tileCount, (t, w) -> outputTile(workerGemm[w], tileExpert[t], tileCol0[t], tileCols[t],
                        binStart));
            }
            case EXPERTS -> {
                // largest bins first: with tasks claimed in order, the last task to start is a small one
                int nonEmpty = sortExperts(binStart);
                int head = heavyHead(binStart, nonEmpty);
                for (int t = 0; t < head; t++) forwardExpert(kernels.gemm(), order[t], x, xOff, gateX, gateXOff, binStart);
                pool.parallelFor(nonEmpty - head, (t, w) -> forwardExpert(workerGemm[w], order[head + t], x, xOff,
                        gateX, gateXOff, binStart));
            }
            case GEMMS -> {
                for (int j = 0; j < e; j++) forwardExpert(kernels.gemm(), j, x, xOff, gateX, gateXOff, binStart);
            }
        }
    }

    /**
     * Backward: dy (R, outputWidth) → dx (R, d) overwritten, weight gradients accumulated. x is the forward input.
     */
    public void backward(MemorySegment x, long xOff, int[] binStart, MemorySegment dy, long dyOff,
                         MemorySegment dx, long dxOff) {
        backward(x, xOff, x, xOff, binStart, dy, dyOff, dx, dxOff, null, 0);
    }

    /**
     * Backward with a separate gate input: dGateX (R, gateWidth) is overwritten with dH·W_gate and dx gets only
     * dU·W_up; with {@code dGateX == null} the gate input is x and dx gets both.
     */
    public void backward(MemorySegment x, long xOff, MemorySegment gateX, long gateXOff, int[] binStart,
                         MemorySegment dy, long dyOff, MemorySegment dx, long dxOff, MemorySegment dGateX, long dGateXOff) {
        switch (schedule(binStart, dGateX == null)) {
            case TILES -> {
                int nonEmpty = sortExperts(binStart);
                planTiles(f, nonEmpty);
                pool.parallelFor(tileCount, (t, w) -> hiddenGradTile(workerGemm[w], tileExpert[t], tileCol0[t],
                        tileCols[t], x, xOff, gateX, gateXOff, binStart, dy, dyOff));
                planTiles(d, nonEmpty);
                pool.parallelFor(tileCount, (t, w) -> inputGradTile(workerGemm[w], tileExpert[t], tileCol0[t],
                        tileCols[t], binStart, dx, dxOff));
            }
            case EXPERTS -> {
                int nonEmpty = sortExperts(binStart);
                int head = heavyHead(binStart, nonEmpty);
                for (int t = 0; t < head; t++) {
                    backwardExpert(kernels.gemm(), order[t], x, xOff, gateX, gateXOff, binStart, dy, dyOff, dx, dxOff,
                            dGateX, dGateXOff);
                }
                pool.parallelFor(nonEmpty - head, (t, w) -> backwardExpert(workerGemm[w], order[head + t], x, xOff,
                        gateX, gateXOff, binStart, dy, dyOff, dx, dxOff, dGateX, dGateXOff));
            }
            case GEMMS -> {
                for (int j = 0; j < e; j++) {
                    backwardExpert(kernels.gemm(), j, x, xOff, gateX, gateXOff, binStart, dy, dyOff, dx, dxOff,
                            dGateX, dGateXOff);
                }
            }
        }
    }

    private enum Schedule { TILES, EXPERTS, GEMMS }

    /**
     * Three ways to use the cores, all giving the same bits (every element of every product is computed by the
     * same GEMM code path, whose result does not depend on how C is tiled, and each weight-gradient element is
     * written by one task):
     * <ul>
     *   <li>TILES (default when at least 2 experts per thread are non-empty, bins average under 512 rows and are
     *       too uneven to hand out whole): two parallel loops per pass, each
     *       over (expert, column tile) tasks with single-threaded GEMMs. Forward: tile of f → H, U and A columns;
     *       tile of d → Y columns. Backward: tile of f → dA, dH, dU columns and the matching slices of all three
     *       weight gradients; tile of d → dX columns. Four pool synchronisations per layer instead of ~20 per
     *       expert, no idle core while a small expert runs, and experts claimed largest first.</li>
     *   <li>EXPERTS: one expert per task ({@code on}; the default for bins of 512+ rows, and for smaller ones when
     *       at least 2 experts per thread have sizes that let the threads finish together), largest bins first, after
     *       the experts too large for that to keep every thread busy to the end, which run first with parallel
     *       GEMMs ({@link #heavyHead}). One pool hand-off per pass.</li>
     *   <li>GEMMS: expert after expert, each GEMM parallel inside ({@code off}, and one expert such as the shared
     *       one: its GEMMs share one packed A block between threads).</li>
     * </ul>
     * {@code -Dmoe4j.moe.expertParallel=auto|tiles|on|off} or {@link #splitMode} override the choice. Tiles are not
     * used for the backward of a factorised gate (its dG output has another width).
     */
    private Schedule schedule(int[] binStart, boolean tilesAllowed) {
        if (pool.threads() == 1) return Schedule.GEMMS;
        String mode = splitMode;
        if (mode.equals("on")) return Schedule.EXPERTS;
        if (mode.equals("off")) return Schedule.GEMMS;
        int nonEmpty = 0;
        for (int j = 0; j < e; j++) if (binStart[j + 1] > binStart[j]) nonEmpty++;
        int rows = binStart[e];
        if (tilesAllowed && mode.equals("tiles")) return Schedule.TILES;
        // Large bins (≥ 512 rows per expert on average): one expert per task, the experts that would leave a thread
        // idle at the end run first with parallel GEMMs (heavyHead). A single-threaded GEMM of an expert's size runs
        // at full sgemm speed, and a pass needs one pool hand-off instead of one or two per GEMM (7 GEMMs per
        // expert): E=8 k=2 f=1024, T=2048, 2 threads, fwd+bwd of the layer 1.11–1.14× parallel GEMMs in the same JVM
        // at moderate load, equal under sustained heavy load (docs/BENCHMARKS.md, session 4).
        if (mode.equals("auto") && rows / Math.max(1, nonEmpty) >= 512) return Schedule.EXPERTS;
        // Smaller bins, several experts per thread: one expert per task too when their sizes let the threads finish
        // together (no heavy head); even bins on 2 threads, fwd+bwd against tiles: E=8 d=512 f=1024 256 rows 1.08×,
        // d=256 f=512 256 rows 1.03×, 64 rows 1.02×, E=64 f=256 256 rows 1.03× (ExpertTiming, quiet machine).
        // Uneven bins keep the tiles, whose finer tasks even out at the end (with many small bins tiles beat
        // parallel GEMMs: E=64 k=8 f=256 4.76k vs 4.14k tokens/s, 2026-11-23 19:25).
        if (mode.equals("auto") && nonEmpty >= 2 * pool.threads() && heavyHead(binStart, sortExperts(binStart)) == 0) {
            return Schedule.EXPERTS;
        }
        if (tilesAllowed && nonEmpty >= 2 * pool.threads()) return Schedule.TILES;
        return nonEmpty >= 4 * pool.threads() && rows / Math.max(1, nonEmpty) <= SPLIT_MAX_ROWS
                ? Schedule.EXPERTS : Schedule.GEMMS;
    }

    /**
     * How many of the largest experts (a prefix of {@link #order}) the one-expert-per-task schedule runs first with
     * parallel GEMMs, so that the rest, one expert per task, keeps every thread busy to the end: the prefix grows
     * while handing the remaining experts out largest first (LPT, by rows — every product is linear in them) would
     * finish more than {@link #LPT_SLACK} later than an even split of their rows. E=8 with near-even bins on 2
     * threads: no prefix; one expert holding most rows, or 3 equal experts on 2 threads: that expert (they) first.
     */
    private int heavyHead(int[] binStart, int nonEmpty) {
        int threads = pool.threads();
        long[] finish = lptFinish;
        for (int head = 0; head < nonEmpty; head++) {
            java.util.Arrays.fill(finish, 0, threads, 0L);
            long total = 0, makespan = 0;
            for (int i = head; i < nonEmpty; i++) {
                int rows = binStart[order[i] + 1] - binStart[order[i]];
                int least = 0;
                for (int w = 1; w < threads; w++) if (finish[w] < finish[least]) least = w;
                finish[least] += rows;
                makespan = Math.max(makespan, finish[least]);
                total += rows;
            }
            if (makespan * threads <= total * (1 + LPT_SLACK)) return head;
        }
        return nonEmpty;
    }

    /** Tests: the experts ({@link #order}'s prefix) the one-expert-per-task schedule would run with parallel GEMMs. */
    int[] heavyExperts(int[] binStart) {
        int nonEmpty = sortExperts(binStart);
        return java.util.Arrays.copyOf(order, heavyHead(binStart, nonEmpty));
    }

    /** Fills {@link #order} with the non-empty experts, most rows first (ties by index); returns their count. */
    private int sortExperts(int[] binStart) {
        int n = 0;
        for (int j = 0; j < e; j++) {
            int rows = binStart[j + 1] - binStart[j];
            if (rows == 0) continue;
            int i = n++;
            while (i > 0 && binStart[order[i - 1] + 1] - binStart[order[i - 1]] < rows) {
                order[i] = order[i - 1];
                i--;
            }
            order[i] = j;
        }
        return n;
    }

    /** Tiles of {@code width} columns for the first {@code experts} of {@link #order}: the widest tile giving every thread ≥ 4 tasks. */
    private void planTiles(int width, int experts) {
        int tile = MAX_TILE;
        while (tile > MIN_TILE && experts * ((width + tile - 1) / tile) < 4 * pool.threads()) tile /= 2;
        int n = 0;
        for (int i = 0; i < experts; i++) {
            for (int c0 = 0; c0 < width; c0 += tile) {
                tileExpert[n] = order[i];
                tileCol0[n] = c0;
                tileCols[n] = Math.min(tile, width - c0);
                n++;
            }
        }
        tileCount = n;
    }

    /** Forward, columns [c0, c0 + cw) of f for expert j: H, U (or H) and A. */
    private void hiddenTile(Gemm g, int j, int c0, int cw, MemorySegment x, long xOff, MemorySegment gateX,
                            long gateXOff, int[] binStart) {
        int r0 = binStart[j], n = binStart[j + 1] - r0;
        long xo = xOff + (long) r0 * d, ho = (long) r0 * hs + c0;
        long wIn = (long) j * f * d + (long) c0 * d;
        if (gate != null) {
            g.nt(pool, n, cw, gw, gateX, gateXOff + (long) r0 * gw, gw, gate.data(), (long) j * f * gw + (long) c0 * gw,
                    gw, h, ho, hs, false);
            g.nt(pool, n, cw, d, x, xo, d, up.data(), wIn, d, h, ho + f, hs, false);
        } else {
            g.nt(pool, n, cw, d, x, xo, d, up.data(), wIn, d, h, ho, hs, false);
        }
        RowOps ops = kernels.rows();
        for (int r = r0; r < r0 + n; r++) activateRow(ops, r, c0, cw);
    }

    /** Forward, columns [c0, c0 + cw) of dOut for expert j: Y = A·W_downᵀ. */
    private void outputTile(Gemm g, int j, int c0, int cw, int[] binStart) {
        int r0 = binStart[j], n = binStart[j + 1] - r0;
        g.nt(pool, n, cw, f, a, (long) r0 * f, f, down.data(), (long) j * dOut * f + (long) c0 * f, f,
                y, (long) r0 * dOut + c0, dOut, false);
    }

    /**
     * Backward, columns [c0, c0 + cw) of f for expert j: dA = dY·W_down[:, c], dW_down[:, c] += dYᵀ·A[:, c],
     * dH, dU of those columns, dW_gate[c, :] += dHᵀ·X and dW_up[c, :] += dUᵀ·X.
     */
    private void hiddenGradTile(Gemm g, int j, int c0, int cw, MemorySegment x, long xOff, MemorySegment gateX,
                                long gateXOff, int[] binStart, MemorySegment dy, long dyOff) {
        int r0 = binStart[j], n = binStart[j + 1] - r0;
        long yo = dyOff + (long) r0 * dOut, ao = (long) r0 * f + c0, ho = (long) r0 * hs + c0, xo = xOff + (long) r0 * d;
        long wDown = (long) j * dOut * f + c0, wIn = (long) j * f * d + (long) c0 * d;
        g.nn(pool, n, cw, dOut, dy, yo, dOut, down.data(), wDown, f, dA, ao, f, false);
        g.tn(pool, dOut, cw, n, dy, yo, dOut, a, ao, f, down.gradData(), wDown, f, true);
        RowOps ops = kernels.rows();
        for (int r = r0; r < r0 + n; r++) activateBackwardRow(ops, r, c0, cw);
        if (gate != null) {
            g.tn(pool, cw, gw, n, dH, ho, hs, gateX, gateXOff + (long) r0 * gw, gw, gate.gradData(),
                    (long) j * f * gw + (long) c0 * gw, gw, true);
            g.tn(pool, cw, d, n, dH, ho + f, hs, x, xo, d, up.gradData(), wIn, d, true);
        } else {
            g.tn(pool, cw, d, n, dH, ho, hs, x, xo, d, up.gradData(), wIn, d, true);
        }
    }

    /** Backward, columns [c0, c0 + cw) of d for expert j: dX = dH·W_gate + dU·W_up (plain: dH·W_up). */
    private void inputGradTile(Gemm g, int j, int c0, int cw, int[] binStart, MemorySegment dx, long dxOff) {
        int r0 = binStart[j], n = binStart[j + 1] - r0;
        long ho = (long) r0 * hs, dxo = dxOff + (long) r0 * d + c0, wIn = (long) j * f * d + c0;
        if (gate != null) {
            g.nn(pool, n, cw, f, dH, ho, hs, gate.data(), wIn, d, dx, dxo, d, false);
            g.nn(pool, n, cw, f, dH, ho + f, hs, up.data(), wIn, d, dx, dxo, d, true);
        } else {
            g.nn(pool, n, cw, f, dH, ho, hs, up.data(), wIn, d, dx, dxo, d, false);
        }
    }

    private void forwardExpert(Gemm g, int j, MemorySegment x, long xOff, MemorySegment gateX, long gateXOff, int[] binStart) {
        int r0 = binStart[j], n = binStart[j + 1] - r0;
        if (n == 0) return;
        long wIn = (long) f * d, wGate = (long) f * gw;
        long xo = xOff + (long) r0 * d, ho = (long) r0 * hs;
        if (fused(x, xOff, gateX, gateXOff)) {
            // [H|U] = X·[W_gate; W_up]ᵀ: one GEMM, X packed once; B's rows n < f from W_gate, the rest from W_up
            g.sgemmStacked(pool, false, true, n, 2 * f, d, x, xo, d, gate.data(), j * wIn, up.data(), j * wIn, f, d,
                    h, ho, h, ho, Integer.MAX_VALUE, hs, false);
        } else if (gate != null) {
            g.nt(pool, n, f, gw, gateX, gateXOff + (long) r0 * gw, gw, gate.data(), j * wGate, gw, h, ho, hs, false);
            g.nt(pool, n, f, d, x, xo, d, up.data(), j * wIn, d, h, ho + f, hs, false);
        } else {
            g.nt(pool, n, f, d, x, xo, d, up.data(), j * wIn, d, h, ho, hs, false);
        }
        activate(r0, r0 + n);
        g.nt(pool, n, dOut, f, a, (long) r0 * f, f, down.data(), j * (long) f * dOut, f, y, (long) r0 * dOut, dOut, false);
    }

    private void backwardExpert(Gemm g, int j, MemorySegment x, long xOff, MemorySegment gateX, long gateXOff, int[] binStart,
                                MemorySegment dy, long dyOff, MemorySegment dx, long dxOff,
                                MemorySegment dGateX, long dGateXOff) {
        int r0 = binStart[j], n = binStart[j + 1] - r0;
        if (n == 0) return;
        long wIn = (long) f * d, wGate = (long) f * gw;
        long yo = dyOff + (long) r0 * dOut, ao = (long) r0 * f, ho = (long) r0 * hs, wDown = j * (long) f * dOut;
        g.nn(pool, n, f, dOut, dy, yo, dOut, down.data(), wDown, f, dA, ao, f, false);
        g.tn(pool, dOut, f, n, dy, yo, dOut, a, ao, f, down.gradData(), wDown, f, true);
        activateBackward(r0, r0 + n);
        long xo = xOff + (long) r0 * d, dxo = dxOff + (long) r0 * d;
        if (dGateX == null && fused(x, xOff, gateX, gateXOff)) {
            // [dW_gate; dW_up] += [dH|dU]ᵀ·X: one GEMM, X packed once; C's rows m ≥ f go to dW_up
            g.sgemmStacked(pool, true, false, 2 * f, d, n, dH, ho, hs, x, xo, x, xo, Integer.MAX_VALUE, d,
                    gate.gradData(), j * wIn, up.gradData(), j * wIn, f, d, true);
            g.nn(pool, n, d, f, dH, ho, hs, gate.data(), j * wIn, d, dx, dxo, d, false);
            g.nn(pool, n, d, f, dH, ho + f, hs, up.data(), j * wIn, d, dx, dxo, d, true);
        } else if (gate != null) {
            long go = gateXOff + (long) r0 * gw;
            g.tn(pool, f, gw, n, dH, ho, hs, gateX, go, gw, gate.gradData(), j * wGate, gw, true);
            g.tn(pool, f, d, n, dH, ho + f, hs, x, xo, d, up.gradData(), j * wIn, d, true);
            if (dGateX == null) {
                g.nn(pool, n, d, f, dH, ho, hs, gate.data(), j * wGate, d, dx, dxo, d, false);
                g.nn(pool, n, d, f, dH, ho + f, hs, up.data(), j * wIn, d, dx, dxo, d, true);
            } else {
                g.nn(pool, n, gw, f, dH, ho, hs, gate.data(), j * wGate, gw, dGateX, dGateXOff + (long) r0 * gw, gw, false);
                g.nn(pool, n, d, f, dH, ho + f, hs, up.data(), j * wIn, d, dx, dxo, d, false);
            }
        } else {
            g.tn(pool, f, d, n, dH, ho, hs, x, xo, d, up.gradData(), j * wIn, d, true);
            g.nn(pool, n, d, f, dH, ho, hs, up.data(), j * wIn, d, dx, dxo, d, false);
        }
    }

    /** Gate and up as stacked GEMMs: a gated type whose gate reads X itself (not a factorised gate's input). */
    private boolean fused(MemorySegment x, long xOff, MemorySegment gateX, long gateXOff) {
        return fusedGateUp && gate != null && gw == d && gateX == x && gateXOff == xOff;
    }

    /** Activation of rows [r0, r1) (parallel when called outside a pool task, inline inside one). */
    private void activate(int r0, int r1) {
        RowOps ops = kernels.rows();
        pool.parallelRanges(r1 - r0, ROW_CHUNK, (from, to, w) -> {
            for (int r = r0 + from; r < r0 + to; r++) activateRow(ops, r, 0, f);
        });
    }

    private void activateBackward(int r0, int r1) {
        RowOps ops = kernels.rows();
        pool.parallelRanges(r1 - r0, ROW_CHUNK, (from, to, w) -> {
            for (int r = r0 + from; r < r0 + to; r++) activateBackwardRow(ops, r, 0, f);
        });
    }

    /** A = act(H) (⊙ U) over columns [c0, c0 + n) of row r. */
    private void activateRow(RowOps ops, int r, int c0, int n) {
        long o = (long) r * f + c0, ho = (long) r * hs + c0, uo = ho + f;
        switch (type) {
            case SWIGLU -> ops.swiglu(n, h, ho, h, uo, a, o);
            case GEGLU -> ops.geglu(n, h, ho, h, uo, a, o);
            case MLP_RELU -> ops.relu(n, h, ho, a, o);
            case MLP_GELU -> ops.gelu(n, h, ho, a, o);
            case MLP_GELU_ERF -> ErfGelu.forward(n, h, ho, a, o);
        }
    }

    /** dH (and dU) from dA over columns [c0, c0 + n) of row r. */
    private void activateBackwardRow(RowOps ops, int r, int c0, int n) {
        long o = (long) r * f + c0, ho = (long) r * hs + c0, uo = ho + f;
        switch (type) {
            case SWIGLU -> ops.swigluBackward(n, h, ho, h, uo, dA, o, dH, ho, dH, uo);
            case GEGLU -> ops.gegluBackward(n, h, ho, h, uo, dA, o, dH, ho, dH, uo);
            case MLP_RELU -> {
                F32.zero(dH, ho, n);
                ops.reluBackward(n, h, ho, dA, o, dH, ho);
            }
            case MLP_GELU -> {
                F32.zero(dH, ho, n);
                ops.geluBackward(n, h, ho, dA, o, dH, ho);
            }
            case MLP_GELU_ERF -> {
                F32.zero(dH, ho, n);
                ErfGelu.backward(n, h, ho, dA, o, dH, ho);
            }
        }
    }
}
