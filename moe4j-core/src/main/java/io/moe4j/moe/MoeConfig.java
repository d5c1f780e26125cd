package io.moe4j.moe;

import io.moe4j.moe.loss.BalanceLoss;
import io.moe4j.moe.router.Routers;

/**
 * Everything that defines one MoE layer. Built with {@link #builder()}; {@link Builder#build()} validates and
 * names the offending field in its message ("moe.topK = 9 exceeds moe.numExperts = 8").
 *
 * @param dModel         d, the hidden size
 * @param numExperts     E, routed experts
 * @param topK           k, experts per token (token-choice routers)
 * @param expertHidden   f, each routed expert's intermediate size
 * @param expertType     SwiGLU (default), GeGLU, plain MLP
 * @param router         router strategy name (see {@link Routers#NAMES})
 * @param normalizeTopK  renormalise the selected weights to sum 1 (Mixtral: true; Qwen/OLMoE: norm_topk_prob)
 * @param routedScale    multiplies the routed weights (DeepSeek routed_scaling_factor)
 * @param sharedExperts  number of always-on shared experts (merged into one FFN of width sharedExperts·sharedHidden)
 * @param sharedHidden   width of each shared expert
 * @param sharedGate     Qwen2-MoE: multiply the shared path by σ(w_sg·x)
 * @param dispatch       dropless or capacity-limited
 * @param capacityRule   capacity formula when capacity-limited
 * @param capacityFactor CF in the capacity formula
 * @param fixedCapacity  capacity when capacityRule = FIXED
 * @param priority       slot-claiming order when capacity-limited
 * @param balanceLoss    balance loss normalisation
 * @param balanceCoef    its coefficient
 * @param zLossCoef      router z-loss coefficient (0 = off)
 * @param groupSize      tokens per routing group / sequence for capacity and balance losses (0 = the whole batch)
 * @param nGroup         expert groups for group-limited routing (DeepSeek; 1 = off); must divide numExperts
 * @param topkGroup      groups kept per token in group-limited routing
 * @param biasUpdateSpeed DeepSeek-V3 bias update speed γ (0 = frozen bias)
 * @param maxTokens      largest T one forward may see (buffers are preallocated for it)
 * @param layerIndex     used in names and error messages
 */
public record MoeConfig(
        int dModel, int numExperts, int topK, int expertHidden, ExpertType expertType,
        String router, boolean normalizeTopK, float routedScale,
        int sharedExperts, int sharedHidden, boolean sharedGate,
        DispatchMode dispatch, CapacityRule capacityRule, double capacityFactor, int fixedCapacity, PriorityOrder priority,
        BalanceLoss balanceLoss, double balanceCoef, double zLossCoef, int groupSize,
        int nGroup, int topkGroup, double biasUpdateSpeed,
        int maxTokens, int layerIndex) {

    public static Builder builder() { return new Builder(); }

    public Builder toBuilder() {
        Builder b = new Builder();
        b.dModel = dModel; b.numExperts = numExperts; b.topK = topK; b.expertHidden = expertHidden;
        b.expertType = expertType; b.router = router; b.normalizeTopK = normalizeTopK; b.routedScale = routedScale;
        b.sharedExperts = sharedExperts; b.sharedHidden = sharedHidden; b.sharedGate = sharedGate;
        b.dispatch = dispatch; b.capacityRule = capacityRule; b.capacityFactor = capacityFactor;
        b.fixedCapacity = fixedCapacity; b.priority = priority; b.balanceLoss = balanceLoss;
        b.balanceCoef = balanceCoef; b.zLossCoef = zLossCoef; b.groupSize = groupSize; b.nGroup = nGroup;
        b.topkGroup = topkGroup; b.biasUpdateSpeed = biasUpdateSpeed; b.maxTokens = maxTokens; b.layerIndex = layerIndex;
        return b;
    }

    /** Width of the merged shared FFN (0 when there is none). */
    public int sharedWidth() { return sharedExperts * sharedHidden; }

    /** Capacity per expert for a routing group of {@code tokens} tokens. */
    public int capacity(int tokens) {
        return capacityRule.capacity(tokens, numExperts, topK, capacityFactor, fixedCapacity);
    }

    /** Tokens per routing group for a batch of {@code tokens} tokens. */
    public int groupTokens(int tokens) {
        return groupSize <= 0 || groupSize > tokens ? tokens : groupSize;
    }

    public static final class Builder {
        private int dModel = -1, numExperts = -1, topK = 2, expertHidden = -1;
        private ExpertType expertType = ExpertType.SWIGLU;
        private String router = "softmax-topk";
        private boolean normalizeTopK = true;
        private float routedScale = 1f;
        private int sharedExperts = 0, sharedHidden = 0;
        private boolean sharedGate = false;
        private DispatchMode dispatch = DispatchMode.DROPLESS;
        private CapacityRule capacityRule = CapacityRule.FLAXFORMER;
        private double capacityFactor = 1.25;
        private int fixedCapacity = 64;
        private PriorityOrder priority = PriorityOrder.POSITION;
        private BalanceLoss balanceLoss = BalanceLoss.HF;
        private double balanceCoef = 0.01, zLossCoef = 0;
        private int groupSize = 0, nGroup = 1, topkGroup = 1;
        private double biasUpdateSpeed = 0.001;
        private int maxTokens = 4096, layerIndex = 0;

        public Builder dModel(int v) { dModel = v; return this; }
        public Builder numExperts(int v) { numExperts = v; return this; }
        public Builder topK(int v) { topK = v; return this; }
        public Builder expertHidden(int v) { expertHidden = v; return this; }
        public Builder expertType(ExpertType v) { expertType = v; return this; }
        public Builder router(String v) { router = v; return this; }
        public Builder normalizeTopK(boolean v) { normalizeTopK = v; return this; }
        public Builder routedScale(float v) { routedScale = v; return this; }
        public Builder sharedExperts(int v) { sharedExperts = v; return this; }
        public Builder sharedHidden(int v) { sharedHidden = v; return this; }
        public Builder sharedGate(boolean v) { sharedGate = v; return this; }
        public Builder dispatch(DispatchMode v) { dispatch = v; return this; }
        public Builder capacityRule(CapacityRule v) { capacityRule = v; return this; }
        public Builder capacityFactor(double v) { capacityFactor = v; return this; }
        public Builder fixedCapacity(int v) { fixedCapacity = v; return this; }
        public Builder priority(PriorityOrder v) { priority = v; return this; }
        public Builder balanceLoss(BalanceLoss v) { balanceLoss = v; return this; }
        public Builder balanceCoef(double v) { balanceCoef = v; return this; }
        public Builder zLossCoef(double v) { zLossCoef = v; return this; }
        public Builder groupSize(int v) { groupSize = v; return this; }
        public Builder nGroup(int v) { nGroup = v; return this; }
        public Builder topkGroup(int v) { topkGroup = v; return this; }
        public Builder biasUpdateSpeed(double v) { biasUpdateSpeed = v; return this; }
        public Builder maxTokens(int v) { maxTokens = v; return this; }
        public Builder layerIndex(int v) { layerIndex = v; return this; }

        public MoeConfig build() {
            require(dModel > 0, "moe.dModel must be > 0, got " + dModel);
            require(numExperts > 0, "moe.numExperts must be > 0, got " + numExperts);
            require(expertHidden > 0, "moe.expertHidden must be > 0, got " + expertHidden);
            require(topK >= 1, "moe.topK must be >= 1, got " + topK);
            require(topK <= numExperts, "moe.topK = " + topK + " exceeds moe.numExperts = " + numExperts);
            require(expertType != null, "moe.expertType must be set");
            require(router != null && Routers.NAMES.contains(router),
                    "moe.router '" + router + "' is unknown; known routers: " + String.join(", ", Routers.NAMES));
            require(Float.isFinite(routedScale) && routedScale > 0, "moe.routedScale must be a positive number, got " + routedScale);
            require(sharedExperts >= 0, "moe.sharedExperts must be >= 0, got " + sharedExperts);
            require(!(sharedExperts == 0 && sharedHidden > 0),
                    "moe.sharedHidden = " + sharedHidden + " is set but moe.sharedExperts = 0 (no shared experts)");
            require(!(sharedExperts == 0 && sharedGate), "moe.sharedGate needs moe.sharedExperts > 0");
            require(!(sharedExperts > 0 && sharedHidden <= 0), "moe.sharedHidden must be > 0 when moe.sharedExperts > 0");
            require(dispatch != null, "moe.dispatch must be set");
            if (dispatch == DispatchMode.CAPACITY) {
                require(capacityRule != null, "moe.capacityRule must be set");
                require(capacityRule == CapacityRule.FIXED || (capacityFactor > 0 && Double.isFinite(capacityFactor)),
                        "moe.capacityFactor must be > 0, got " + capacityFactor);
                require(capacityRule != CapacityRule.FIXED || fixedCapacity > 0,
                        "moe.fixedCapacity must be > 0, got " + fixedCapacity);
            }
            require(balanceCoef >= 0 && Double.isFinite(balanceCoef), "moe.balanceCoef must be >= 0, got " + balanceCoef);
            require(zLossCoef >= 0 && Double.isFinite(zLossCoef), "moe.zLossCoef must be >= 0, got " + zLossCoef);
            require(maxTokens > 0, "moe.maxTokens must be > 0, got " + maxTokens);
            require(groupSize >= 0, "moe.groupSize must be >= 0 (0 = whole batch), got " + groupSize);
            require(nGroup >= 1, "moe.nGroup must be >= 1, got " + nGroup);
            require(numExperts % nGroup == 0, "moe.nGroup = " + nGroup + " does not divide moe.numExperts = " + numExperts);
            require(topkGroup >= 1 && topkGroup <= nGroup,
                    "moe.topkGroup must be in [1, moe.nGroup = " + nGroup + "], got " + topkGroup);
            require(nGroup == 1 || topK <= topkGroup * (numExperts / nGroup),
                    "moe.topK = " + topK + " exceeds the experts in moe.topkGroup = " + topkGroup + " groups of "
                            + numExperts / nGroup);
            require(biasUpdateSpeed >= 0 && Double.isFinite(biasUpdateSpeed),
                    "moe.biasUpdateSpeed must be >= 0, got " + biasUpdateSpeed);
            return new MoeConfig(dModel, numExperts, topK, expertHidden, expertType, router, normalizeTopK, routedScale,
                    sharedExperts, sharedHidden, sharedGate, dispatch, capacityRule, capacityFactor, fixedCapacity,
                    priority, balanceLoss == null ? BalanceLoss.NONE : balanceLoss, balanceCoef, zLossCoef, groupSize,
                    nGroup, topkGroup, biasUpdateSpeed, maxTokens, layerIndex);
        }

        private static void require(boolean ok, String message) {
            if (!ok) throw new InvalidConfigException(message);
        }
    }
}
