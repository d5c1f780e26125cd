package io.moe4j.moe.variant;

import io.moe4j.moe.ExpertType;
import io.moe4j.moe.InvalidConfigException;

/**
 * One Multi-gate Mixture-of-Experts layer (spec §4.19). Built with {@link #builder()}; {@link Builder#build()} names
 * the offending field ("mmoe.numTasks must be > 0, got 0").
 *
 * @param dModel       d, the input width
 * @param expertOutput h, the experts' output width (d → f → h), which the task towers read; defaults to d.
 *                     DeepCTR's experts map to their own width (the last of expert_dnn_hidden_units), not d
 * @param numExperts   n, experts shared by all tasks (all active)
 * @param expertHidden f, each expert's intermediate size
 * @param expertType   expert FFN type; DeepCTR's experts are ReLU MLPs, hence the default
 * @param numTasks     K, one softmax gate and one output per task (1 = OMoE, the one-gate baseline)
 * @param maxTokens    largest batch one forward may see (buffers are preallocated for it)
 * @param layerIndex   used in parameter names
 */
public record MmoeConfig(int dModel, int numExperts, int expertHidden, ExpertType expertType, int numTasks,
                         int maxTokens, int layerIndex, int expertOutput) {

    public static Builder builder() { return new Builder(); }

    public static final class Builder {
        private int dModel = -1, numExperts = -1, expertHidden = -1, numTasks = -1;
        private ExpertType expertType = ExpertType.MLP_RELU;
        private int maxTokens = 4096, layerIndex = 0;
        private Integer expertOutput = null; // null = dModel

        public Builder dModel(int v) { dModel = v; return this; }
        public Builder numExperts(int v) { numExperts = v; return this; }
        public Builder expertHidden(int v) { expertHidden = v; return this; }
        public Builder expertType(ExpertType v) { expertType = v; return this; }
        public Builder numTasks(int v) { numTasks = v; return this; }
        public Builder maxTokens(int v) { maxTokens = v; return this; }
        public Builder layerIndex(int v) { layerIndex = v; return this; }
        public Builder expertOutput(int v) { expertOutput = v; return this; }

        public MmoeConfig build() {
            require(dModel > 0, "mmoe.dModel must be > 0, got " + dModel);
            require(numExperts > 0, "mmoe.numExperts must be > 0, got " + numExperts);
            require(expertHidden > 0, "mmoe.expertHidden must be > 0, got " + expertHidden);
            require(expertType != null, "mmoe.expertType must be set");
            require(numTasks > 0, "mmoe.numTasks must be > 0, got " + numTasks);
            require(maxTokens > 0, "mmoe.maxTokens must be > 0, got " + maxTokens);
            require(layerIndex >= 0, "mmoe.layerIndex must be >= 0, got " + layerIndex);
            int out = expertOutput == null ? dModel : expertOutput;
            require(out > 0, "mmoe.expertOutput must be > 0 (the experts' output width), got " + out);
            return new MmoeConfig(dModel, numExperts, expertHidden, expertType, numTasks, maxTokens, layerIndex, out);
        }

        private static void require(boolean ok, String message) {
            if (!ok) throw new InvalidConfigException(message);
        }
    }
}
