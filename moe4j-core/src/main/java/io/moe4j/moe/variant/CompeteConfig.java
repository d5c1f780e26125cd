package io.moe4j.moe.variant;

import io.moe4j.moe.ExpertType;
import io.moe4j.moe.InvalidConfigException;

/**
 * One CompeteSMoE layer (spec §4.18; Fsoft-AIC/CompeteSMoE {@code competesmoe.py}, defaults from its
 * {@code train.py}). The step schedule (warm-up, rate_flip, max_compete_in_iter) is model-wide and lives in
 * {@link CompeteSchedule}. Built with {@link #builder()}; {@link Builder#build()} names the offending field.
 *
 * @param dModel            d
 * @param numExperts        E
 * @param topK              k, experts per token under both policies
 * @param expertHidden      f, each expert's intermediate size
 * @param expertType        expert FFN type
 * @param balanceLossCoef   router policy: coefficient of the top-1 balance loss E²·mean_e(F_e·P_e) (reference 0)
 * @param routerZLossCoef   router policy: z-loss coefficient (reference 0)
 * @param groupSize         tokens per sequence for the balance losses (the reference averages them per sequence);
 *                          0 = the whole batch is one group
 * @param routerLossCoef    competition: coefficient of MSE(softmax(router), stopgrad(softmax(affinity)))
 * @param diversityLossCoef competition: coefficient of the mean pairwise cosine of the selected outputs
 * @param balCompLossCoef   competition: coefficient of the balance loss on softmax(affinity)
 * @param normSigmoid       competition: select and weight by σ(affinity) instead of the affinity
 * @param hybrid            competition: add the reference's "hybrid" term to the router loss,
 *                          routerTheta·MSE over the competition-selected entries only (args.hybrid, default off)
 * @param routerTheta       weight of the hybrid term inside the router loss (reference router_theta = 0.1)
 * @param maxTokens         largest T one forward may see (buffers are preallocated for it)
 * @param layerIndex        parameter names; this layer's row of the {@link CompeteSchedule}
 */
public record CompeteConfig(int dModel, int numExperts, int topK, int expertHidden, ExpertType expertType,
                            double balanceLossCoef, double routerZLossCoef, int groupSize,
                            double routerLossCoef, double diversityLossCoef, double balCompLossCoef,
                            boolean normSigmoid, boolean hybrid, double routerTheta, int maxTokens, int layerIndex) {

    public static Builder builder() { return new Builder(); }

    public static final class Builder {
        private int dModel = -1, numExperts = -1, topK = 2, expertHidden = -1;
        private ExpertType expertType = ExpertType.SWIGLU;
        private double balanceLossCoef = 0.0, routerZLossCoef = 0.0;
        private int groupSize = 0;
        private double routerLossCoef = 0.01, diversityLossCoef = 0.01, balCompLossCoef = 0.01;
        private boolean normSigmoid = false, hybrid = false;
        private double routerTheta = 0.1;
        private int maxTokens = 4096, layerIndex = 0;

        public Builder dModel(int v) { dModel = v; return this; }
        public Builder numExperts(int v) { numExperts = v; return this; }
        public Builder topK(int v) { topK = v; return this; }
        public Builder expertHidden(int v) { expertHidden = v; return this; }
        public Builder expertType(ExpertType v) { expertType = v; return this; }
        public Builder balanceLossCoef(double v) { balanceLossCoef = v; return this; }
        public Builder routerZLossCoef(double v) { routerZLossCoef = v; return this; }
        public Builder groupSize(int v) { groupSize = v; return this; }
        public Builder routerLossCoef(double v) { routerLossCoef = v; return this; }
        public Builder diversityLossCoef(double v) { diversityLossCoef = v; return this; }
        public Builder balCompLossCoef(double v) { balCompLossCoef = v; return this; }
        public Builder normSigmoid(boolean v) { normSigmoid = v; return this; }
        public Builder hybrid(boolean v) { hybrid = v; return this; }
        public Builder routerTheta(double v) { routerTheta = v; return this; }
        public Builder maxTokens(int v) { maxTokens = v; return this; }
        public Builder layerIndex(int v) { layerIndex = v; return this; }

        public CompeteConfig build() {
            require(dModel > 0, "compete.dModel must be > 0, got " + dModel);
            require(numExperts > 0, "compete.numExperts must be > 0, got " + numExperts);
            require(topK >= 1, "compete.topK must be >= 1, got " + topK);
            require(topK <= numExperts, "compete.topK = " + topK + " exceeds compete.numExperts = " + numExperts);
            require(expertHidden > 0, "compete.expertHidden must be > 0, got " + expertHidden);
            require(expertType != null, "compete.expertType must be set");
            coef("compete.balanceLossCoef", balanceLossCoef);
            coef("compete.routerZLossCoef", routerZLossCoef);
            coef("compete.routerLossCoef", routerLossCoef);
            coef("compete.diversityLossCoef", diversityLossCoef);
            coef("compete.balCompLossCoef", balCompLossCoef);
            coef("compete.routerTheta", routerTheta);
            require(groupSize >= 0, "compete.groupSize must be >= 0 (0 = whole batch), got " + groupSize);
            require(maxTokens > 0, "compete.maxTokens must be > 0, got " + maxTokens);
            require(layerIndex >= 0, "compete.layerIndex must be >= 0, got " + layerIndex);
            return new CompeteConfig(dModel, numExperts, topK, expertHidden, expertType, balanceLossCoef,
                    routerZLossCoef, groupSize, routerLossCoef, diversityLossCoef, balCompLossCoef, normSigmoid,
                    hybrid, routerTheta, maxTokens, layerIndex);
        }

        private static void coef(String field, double v) {
            require(v >= 0 && Double.isFinite(v), field + " must be >= 0, got " + v);
        }

        private static void require(boolean ok, String message) {
            if (!ok) throw new InvalidConfigException(message);
        }
    }
}
