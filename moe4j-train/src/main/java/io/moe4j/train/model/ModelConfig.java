package io.moe4j.train.model;

import io.moe4j.moe.MoeConfig;

/**
 * Shape of a decoder-only MoE transformer for training: token embedding → L × [RMSNorm → causal self-attention
 * (RoPE, grouped-query, optional q/k RMSNorm) → residual → RMSNorm → FFN (dense for the first
 * {@code denseLayers} layers, else the MoE layer of {@code moe}) → residual] → final RMSNorm → LM head.
 *
 * <p>{@code moe} is the template of every MoE layer ({@code moe.dModel()} must equal {@code dModel}); each layer
 * gets it with its own {@code layerIndex}. A dense model (the baseline with the same active parameters) is
 * {@code denseLayers = layers}.
 *
 * @param vocabSize      tokens in the vocabulary
 * @param dModel         hidden size d
 * @param layers         transformer blocks
 * @param heads          query heads
 * @param kvHeads        key/value heads (grouped-query attention; divides heads)
 * @param headDim        size of one head (usually dModel / heads)
 * @param maxSeqLen      longest sequence the RoPE table and activations are sized for
 * @param ropeTheta      RoPE base
 * @param normEps        RMSNorm epsilon
 * @param qkNorm         RMSNorm on q and k per head before RoPE (Qwen3 / OLMoE style)
 * @param tiedEmbeddings LM head shares the embedding matrix
 * @param denseLayers    the first this many blocks use a dense SwiGLU FFN instead of MoE
 * @param denseHidden    hidden size of the dense FFN
 * @param moe            the MoE layer template
 * @param initStd        std of the normal initialisation of weights
 * @param seed           seed of the initialisation
 */
public record ModelConfig(int vocabSize, int dModel, int layers, int heads, int kvHeads, int headDim, int maxSeqLen,
                          double ropeTheta, double normEps, boolean qkNorm, boolean tiedEmbeddings,
                          int denseLayers, int denseHidden, MoeConfig moe, double initStd, long seed) {
}
