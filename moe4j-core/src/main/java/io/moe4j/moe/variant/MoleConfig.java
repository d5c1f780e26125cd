package io.moe4j.moe.variant;

import io.moe4j.moe.ExpertType;
import io.moe4j.moe.InvalidConfigException;

/**
 * One Mixture-of-Lookup-Experts layer (spec §4.16). Built with {@link #builder()}; {@link Builder#build()} names the
 * offending field ("mole.numExperts must be > 0, got 0").
 *
 * @param dModel       d, the hidden size; also the embedding width (the experts read token embeddings)
 * @param numExperts   E, lookup experts (all active)
 * @param expertHidden intermediate size of each expert MLP
 * @param sharedHidden intermediate size of the shared FFN on the hidden state (the reference uses the same size)
 * @param expertType   expert and shared FFN type; the reference is a GELU MLP with the exact erf GELU
 * @param normEps      ε of the per-layer expert RMSNorm on the embeddings (HF rms_norm_eps)
 * @param maxTokens    largest T one forward may see (buffers are preallocated for it)
 * @param layerIndex   used in parameter names and to find this layer's slice of a lookup table
 */
public record MoleConfig(int dModel, int numExperts, int expertHidden, int sharedHidden, ExpertType expertType,
                         float normEps, int maxTokens, int layerIndex) {

    public static Builder builder() { return new Builder(); }

    public static final class Builder {
        private int dModel = -1, numExperts = -1, expertHidden = -1, sharedHidden = -1;
        private ExpertType expertType = ExpertType.MLP_GELU_ERF;
        private float normEps = 1e-6f;
        private int maxTokens = 4096, layerIndex = 0;

        public Builder dModel(int v) { dModel = v; return this; }
        public Builder numExperts(int v) { numExperts = v; return this; }
        public Builder expertHidden(int v) { expertHidden = v; return this; }
        public Builder sharedHidden(int v) { sharedHidden = v; return this; }
        public Builder expertType(ExpertType v) { expertType = v; return this; }
        public Builder normEps(float v) { normEps = v; return this; }
        public Builder maxTokens(int v) { maxTokens = v; return this; }
        public Builder layerIndex(int v) { layerIndex = v; return this; }

        public MoleConfig build() {
            require(dModel > 0, "mole.dModel must be > 0, got " + dModel);
            require(numExperts > 0, "mole.numExperts must be > 0, got " + numExperts);
            require(expertHidden > 0, "mole.expertHidden must be > 0, got " + expertHidden);
            require(sharedHidden > 0, "mole.sharedHidden must be > 0, got " + sharedHidden);
            require(expertType != null, "mole.expertType must be set");
            require(normEps > 0 && Float.isFinite(normEps), "mole.normEps must be a positive number, got " + normEps);
            require(maxTokens > 0, "mole.maxTokens must be > 0, got " + maxTokens);
            require(layerIndex >= 0, "mole.layerIndex must be >= 0, got " + layerIndex);
            return new MoleConfig(dModel, numExperts, expertHidden, sharedHidden, expertType, normEps, maxTokens,
                    layerIndex);
        }

        private static void require(boolean ok, String message) {
            if (!ok) throw new InvalidConfigException(message);
        }
    }
}
