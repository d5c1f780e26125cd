package io.moe4j.infer;

/**
 * Inference-time controls of the MoE layers, for experiments on a trained model (none changes the weights).
 *
 * @param expertsPerToken experts chosen per token (top-k); ≤ 0 keeps the model's {@code expert_used_count}.
 *                        Weights are then computed exactly as the model's family does with that k (e.g. Mixtral
 *                        renormalises over the k chosen, Qwen2-MoE does not).
 * @param skipBeta        dynamic expert skipping: after top-k, a chosen expert whose routing probability is below
 *                        {@code skipBeta ×} the token's top one is dropped, then the survivors are renormalised if
 *                        the family renormalises. 0 = off (nothing is ever below 0); 1 keeps only the top expert
 *                        (and exact ties). Must be in [0, 1].
 * @param observer        sees every routing decision (after skipping), or null
 */
public record MoeOptions(int expertsPerToken, float skipBeta, ExpertObserver observer) {
    public MoeOptions {
        if (!(skipBeta >= 0f && skipBeta <= 1f)) {
            throw new IllegalArgumentException("skip-experts beta must be in [0, 1], got " + skipBeta);
        }
    }

    /** The model's own routing, no observer. */
    public static MoeOptions defaults() { return new MoeOptions(0, 0f, null); }

    public MoeOptions withExpertsPerToken(int k) { return new MoeOptions(k, skipBeta, observer); }
    public MoeOptions withSkipBeta(float b) { return new MoeOptions(expertsPerToken, b, observer); }
    public MoeOptions withObserver(ExpertObserver o) { return new MoeOptions(expertsPerToken, skipBeta, o); }
}
