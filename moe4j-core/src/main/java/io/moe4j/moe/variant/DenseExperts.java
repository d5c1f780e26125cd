package io.moe4j.moe.variant;

import io.moe4j.kernel.Kernels;
import io.moe4j.kernel.row.RowOps;
import io.moe4j.moe.ExpertBank;
import io.moe4j.parallel.WorkerPool;
import io.moe4j.nn.F32;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Every token through every expert of an {@link ExpertBank} — the dense soft mixtures (MoLE, MMoE) and
 * CompeteSMoE's competition step. The input rows are replicated into E contiguous bins of T rows, expert-major,
 * so the bank's grouped GEMM runs expert j over all T tokens: output row {@code j·T + i} is {@code FFN_j(x_i)}
 * (rows of the bank's output width, d unless the bank maps to another width, as MMoE's experts may).
 *
 * <p>The replication costs E·T·d copies against the E·T·d·f·2 (plain) or ·3 (gated) multiply-adds of the GEMMs,
 * and lets one bank serve both sparse dispatch and dense passes (CompeteSMoE needs exactly that). Backward is the
 * dual: the bank's backward on the replicated rows, then {@code dx_i += Σ_j dXrep[j·T + i]} in fixed expert
 * order (deterministic).
 *
 * <p>The bank must have been built with room for {@code E·maxTokens} rows. Preallocated; the hot path allocates
 * nothing. Non-goals: mixing (the caller weights the rows) and skipping experts (sparse routing is {@link
 * io.moe4j.moe.Dispatch}'s job). A fused up-projection over all experts (one GEMM of width E·f) would save the
 * copies and E−1 GEMM calls; not done, so that the bank and its weight layout stay shared with the sparse layers.
 */
public final class DenseExperts {
    private static final int TOKEN_CHUNK = 8;

    private final ExpertBank bank;
    private final Kernels kernels;
    private final WorkerPool pool;
    private final int e, d, dOut, maxTokens;
    private final MemorySegment xRep;  // (E·maxT, d) input replicated per expert, expert-major
    private final MemorySegment dxRep; // (E·maxT, d) input gradient per (expert, token)
    private final int[] bins;          // (E+1) bins[j] = j·T
    private int tokens;

    public DenseExperts(Arena arena, ExpertBank bank, int numExperts, int d, int maxTokens, Kernels kernels,
                        WorkerPool pool) {
        this.bank = bank;
        this.kernels = kernels;
        this.pool = pool;
        this.e = numExperts;
        this.d = d;
        this.dOut = bank.outputWidth();
        this.maxTokens = maxTokens;
        long rows = (long) numExperts * maxTokens;
        this.xRep = F32.alloc(arena, rows * d);
        this.dxRep = F32.alloc(arena, rows * d);
        this.bins = new int[numExperts + 1];
    }

    public ExpertBank bank() { return bank; }

    /** Tokens of the last forward. */
    public int tokens() { return tokens; }

    /** Expert outputs (E·T, outputWidth) of the last forward, expert-major. */
    public MemorySegment output() { return bank.output(); }

    /** Float offset of FFN_expert(x_token) in {@link #output()}. */
    public long offset(int expert, int token) { return ((long) expert * tokens + token) * dOut; }

    /** The replicated input (E·T, d) of the last forward; rows j·T .. j·T+T−1 are x for expert j. */
    public MemorySegment input() { return xRep; }

    /** Runs all E experts on x (T, d). */
    public void forward(MemorySegment x, long xOff, int t) {
        if (t < 0 || t > maxTokens) {
            throw new IllegalArgumentException("batch of " + t + " tokens exceeds maxTokens = " + maxTokens);
        }
        tokens = t;
        long bytes = (long) t * d * Float.BYTES;
        for (int j = 0; j < e; j++) {
            MemorySegment.copy(x, xOff * Float.BYTES, xRep, j * bytes, bytes);
            bins[j] = j * t;
        }
        bins[e] = e * t;
        bank.forward(xRep, 0, bins);
    }

    /**
     * dOut (E·T, outputWidth), expert-major like {@link #output()} → dx (T, d) accumulated (+=); the bank's weight gradients
     * accumulate.
     */
    public void backward(MemorySegment dOut, long dOutOff, MemorySegment dx, long dxOff) {
        int t = tokens;
        bank.backward(xRep, 0, bins, dOut, dOutOff, dxRep, 0);
        RowOps ops = kernels.rows();
        pool.parallelRanges(t, TOKEN_CHUNK, (from, to, w) -> {
            for (int i = from; i < to; i++) {
                for (int j = 0; j < e; j++) ops.axpy(d, 1f, dxRep, ((long) j * t + i) * d, dx, dxOff + (long) i * d);
            }
        });
    }
}
