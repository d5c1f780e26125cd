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
 * @param probsBias  (E) bias added to router probabilities for selection only ({@code exp_probs_b}), or null
 * @param mla        multi-head latent attention weights (then wq is the query projection, wk and wv are null)
 */
public record LayerWeights(MemorySegment attnNorm, Matrix wq, Matrix wk, Matrix wv, Matrix wo,
                           MemorySegment bq, MemorySegment bk, MemorySegment bv, MemorySegment bo,
                           MemorySegment qNorm, MemorySegment kNorm, MemorySegment ffnNorm,
                           Matrix ffnGate, Matrix ffnUp, Matrix ffnDown,
                           Matrix router, Matrix expGate, Matrix expUp, Matrix expDown,
                           Matrix shGate, Matrix shUp, Matrix shDown, Matrix shRouter,
                           MemorySegment probsBias, Mla mla) {

    /**
     * DeepSeek-V2 attention in llama.cpp's absorbed form ({@code r} = q_lora_rank, {@code c} = kv_lora_rank,
     * {@code ρ} = rope dims, {@code n} = nope dims, {@code dv} = value head).
     *
     * @param qA      (r, D) {@code attn_q_a}, or null when Q is one projection ({@code wq} (H·(n+ρ), D))
     * @param qANorm  (r) RMS gain of the Q bottleneck
     * @param kvA     (c+ρ, D) {@code attn_kv_a_mqa}: latent and shared rotary key
     * @param kvANorm (c) RMS gain of the latent
     * @param kB      H × (c, n) {@code attn_k_b}: absorbs the no-RoPE query part into latent space
     * @param vB      H × (dv, c) {@code attn_v_b}: latent attention output to value heads
     */
    public record Mla(Matrix qA, MemorySegment qANorm, Matrix kvA, MemorySegment kvANorm, Matrix kB, Matrix vB) {}


    public boolean moe() { return router != null; }
    public boolean sharedExpert() { return shGate != null; }
}
