package io.moe4j.train.report;

/**
 * What one MoE layer did during one optimiser step (summed over the step's micro-batches; see
 * {@link io.moe4j.moe.MoeMetrics} for the single-batch definitions).
 *
 * @param layer           MoE layer index (depth order among the MoE layers' {@code layerIndex})
 * @param tokensPerExpert kept assignments per expert
 * @param imbalance       max / mean of tokensPerExpert
 * @param cv              coefficient of variation of tokensPerExpert
 * @param dropped         dropped assignments / all assignments
 * @param entropy         mean router entropy (nats)
 * @param active          mean experts computed per token
 * @param bias            DeepSeek-V3 selection bias (empty for other routers)
 */
public record LayerRecord(int layer, int[] tokensPerExpert, double imbalance, double cv, double dropped,
                          double entropy, double active, float[] bias) {
}
