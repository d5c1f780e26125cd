package io.moe4j.train.model;

import io.moe4j.moe.MoeLayer;
import io.moe4j.nn.Param;

import java.util.List;

/**
 * A trainable causal language model: what the trainer, checkpoints, export and generation see.
 *
 * <p>Token batches are {@code int[batch * (seqLen + 1)]}, row-major: row b holds seqLen + 1 tokens; inputs are
 * positions 0..seqLen-1 and targets positions 1..seqLen.
 */
public interface CausalLm {

    ModelConfig config();

    /** Every trainable parameter, with stable dotted names ("layers.3.attn.wq"); order is fixed. */
    List<Param> params();

    /**
     * Forward and backward over one batch. Gradients are ADDED to each {@link Param#grad()} (the caller zeroes
     * them; gradient accumulation calls this several times), scaled by {@code gradScale} (1/accumulationSteps).
     * MoE layers run in training mode (noise, capacity, aux losses).
     */
    LossBreakdown forwardBackward(int[] tokens, int batch, int seqLen, float gradScale);

    /** Forward only, evaluation mode (no noise or jitter), no gradients. */
    LossBreakdown evaluate(int[] tokens, int batch, int seqLen);

    /**
     * Next-token logits after {@code tokens[0..len)} (one sequence, len ≤ maxSeqLen), written to
     * {@code out[vocabSize]}. For generation; recomputes the whole prefix (no KV cache in training).
     */
    void nextLogits(int[] tokens, int len, float[] out);

    /** The MoE layers in depth order (metrics, DeepSeek-V3 bias, export); empty for a dense model. */
    List<MoeLayer> moeLayers();

    /** Called once after each optimiser step: router state updates (DeepSeek-V3 bias, ReMoE λ, schedules). */
    void afterStep(int step);
}
