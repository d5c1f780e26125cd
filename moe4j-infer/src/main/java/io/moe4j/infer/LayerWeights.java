package io.moe4j.infer;

import java.lang.foreign.MemorySegment;

/**
 * One transformer block's weights. Projections stay in the mapped file ({@link Matrix}); norm gains and biases
 * (small, any float type in the file) are F32 copies in native memory. Absent parts are null.
 *
 * @param attnNorm   (D) RMS gain before attention
 * @param wq         (Hq·hd, D)
 * @param wk         (Hkv·hd, D)
 * @param wv         (Hkv·hd, D)
 * @param wo         (D, Hq·hd)
 * @param bq         (Hq·hd) or null; likewise bk, bv (Hkv·hd) and bo (D)
 * @param qNorm      (hd) per-head or (Hq·hd) full-width RMS gain of Q, or null; kNorm likewise for K
 * @param ffnNorm    (D) RMS gain before the FFN
 * @param ffnGate    dense (F, D); ffnUp (F, D); ffnDown (D, F) — null in MoE blocks
 * @param router     (E, D) {@code ffn_gate_inp}
 * @param expGate    (E × (Fe, D)); expUp likewise; expDown (E × (D, Fe))
 * @param shGate     shared expert (Fs, D); shUp (Fs, D); shDown (D, Fs); shRouter (1, D) sigmoid gate or null
 */
public record LayerWeights(MemorySegment attnNorm, Matrix wq, Matrix wk, Matrix wv, Matrix wo,
                           MemorySegment bq, MemorySegment bk, MemorySegment bv, MemorySegment bo,
                           MemorySegment qNorm, MemorySegment kNorm, MemorySegment ffnNorm,
                           Matrix ffnGate, Matrix ffnUp, Matrix ffnDown,
                           Matrix router, Matrix expGate, Matrix expUp, Matrix expDown,
                           Matrix shGate, Matrix shUp, Matrix shDown, Matrix shRouter) {

    public boolean moe() { return router != null; }
    public boolean sharedExpert() { return shGate != null; }
}
