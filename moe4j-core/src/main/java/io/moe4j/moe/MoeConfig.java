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
 * @param jitter         router-input jitter ε (training only): x ⊙ U[1−ε, 1+ε] (spec §3.8); 0 = off
 * @param noiseEps       noisy top-k (§4.1): minimum noise std added to softplus(W_noise·x)
 * @param secondExpert   GShard (§4.2) second-expert policy: "all", "random" or "sampling"
 * @param secondExpertThreshold GShard "random" policy threshold (keep probability g2/threshold)
 * @param legacyNormalize GShard legacy_mtf_behavior: renormalise top-2 gates before capacity
 * @param topPThreshold  dynamic top-p (§4.12) cumulative-probability threshold
 * @param entropyCoef    dynamic top-p entropy ("dynamic") loss coefficient
 * @param l1Init         ReMoE (§4.13) initial L1 coefficient λ₀
 * @param l1Multiplier   ReMoE λ update factor α
 * @param temperatureMax EvoMoE (§4.17) initial Gumbel-softmax temperature
 * @param temperatureMin EvoMoE final temperature
 * @param temperatureDecaySteps EvoMoE steps over which the temperature decays (exponential schedule)
 * @param temperatureLinear EvoMoE: linear schedule τ = max(τ_max − t·(τ_max − τ_min)/decay, τ_min) instead of exp
 * @param hardAfterStep  EvoMoE step from which the gate is hard top-1 (−1 = from the start)
 * @param vocabSize      hash routing (§4.11): vocabulary size of the token-id → expert table
 * @param seed           seed of the router's random numbers (noise, random policies, Gumbel, hash table)
 * @param constantExperts MoE++ (§4.14) constant experts α0·u + α1·v, α = softmax(W_c·u); counted in numExperts
 * @param copyExperts    MoE++ copy experts (output = input); counted in numExperts
 * @param zeroExperts    MoE++ zero experts (output 0); counted in numExperts. The routed expert list is
 *                       [FFN × (numExperts − constant − copy − zero)] [constant] [copy] [zero]
 * @param dropZeroExpertWeight moe++ router: a selected zero expert's weight is set to 0 before the top-k
 *                       renormalisation, so its partner gets weight 1 (released code); false: it keeps its gate
 *                       value, which the zero output discards (paper)
 * @param expertInputNoMulTopK moe++ router: experts see x (true, MoE++ moe_feature_no_mul_topk) instead of k·x
 *                       (false, the released code's default)
 * @param routerHidden   moe++ router: hidden width of the two-layer gate W2·tanh(W1·x) (MoE++ uses 8·numExperts);
 *                       0 = one linear layer
 * @param gatingResidual moe++ router: logits += G·logits of the previous MoE layer (G is E×E)
 * @param logitsNormStd  moe++ router: softmax over logits / (std(logits)/logitsNormStd) (unbiased std per token);
 *                       0 = off
 * @param expertGateRank AoE (§4.15) d_low: each expert's gate projection is factorised W_up,e·W_down,e with
 *                       W_down shared with the aoe router's norm scores; 0 = full-rank gate. No default value is
 *                       known to be the paper's (spec §6 item 9), so AoE configs must set it
 * @param noiseStd       vmoe router (§4.10): training noise on the logits is N(0, (noiseStd/E)²) (V-MoE noise_std = 1.0)
 * @param zeroComputeBalanceWeight moe++ router: τ of the paper's heterogeneous load-balance loss — the balance
 *                       loss's terms of the zero-computation (constant, copy, zero) experts are weighted by τ, the FFN
 *                       experts' by 1: L = coef·E·Σ_e η_e·F_e·P_e (see MoePlusPlusRouter). 1 = the plain configured
 *                       loss (default; the released code has no heterogeneous loss). The formula and the paper's
 *                       value are unverified (spec §6 item 8); must be >= 0 and needs moe++ with zero-computation experts
 * @param balanceUnbiasedTopK deepseek-v3: the sequence-wise balance loss counts the UNBIASED top-k of the sigmoid
 *                       scores (the paper's formula) instead of the actual biased, group-limited routing decision
 *                       (the default; spec §6 item 13 — which DeepSeek trained with is unverified)
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
        double jitter, double noiseEps, String secondExpert, double secondExpertThreshold, boolean legacyNormalize,
        double topPThreshold, double entropyCoef, double l1Init, double l1Multiplier,
        double temperatureMax, double temperatureMin, int temperatureDecaySteps, int hardAfterStep,
        int vocabSize, long seed,
        // ---- MoE++ (§4.14) and Autonomy-of-Experts (§4.15) ----
        int constantExperts, int copyExperts, int zeroExperts, boolean dropZeroExpertWeight,
        boolean expertInputNoMulTopK, int routerHidden, boolean gatingResidual, double logitsNormStd,
        int expertGateRank,
        // ---- V-MoE (§4.10), DeepSeek-V3 loss indicator (§4.8) ----
        double noiseStd, boolean balanceUnbiasedTopK, boolean temperatureLinear,
        // ---- MoE++ heterogeneous balance loss (§4.14) ----
        double zeroComputeBalanceWeight,
        // ----
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
        b.jitter = jitter; b.noiseEps = noiseEps; b.secondExpert = secondExpert;
        b.secondExpertThreshold = secondExpertThreshold; b.legacyNormalize = legacyNormalize;
        b.topPThreshold = topPThreshold; b.entropyCoef = entropyCoef; b.l1Init = l1Init; b.l1Multiplier = l1Multiplier;
        b.temperatureMax = temperatureMax; b.temperatureMin = temperatureMin;
        b.temperatureDecaySteps = temperatureDecaySteps; b.hardAfterStep = hardAfterStep;
        b.vocabSize = vocabSize; b.seed = seed;
        // MoE++ / AoE
        b.constantExperts = constantExperts; b.copyExperts = copyExperts; b.zeroExperts = zeroExperts;
        b.dropZeroExpertWeight = dropZeroExpertWeight; b.expertInputNoMulTopK = expertInputNoMulTopK;
        b.routerHidden = routerHidden; b.gatingResidual = gatingResidual; b.logitsNormStd = logitsNormStd;
        b.expertGateRank = expertGateRank;
        b.noiseStd = noiseStd; b.balanceUnbiasedTopK = balanceUnbiasedTopK; b.temperatureLinear = temperatureLinear;
        b.zeroComputeBalanceWeight = zeroComputeBalanceWeight;
        return b;
    }

    /** Width of the merged shared FFN (0 when there is none). */
    public int sharedWidth() { return sharedExperts * sharedHidden; }

    /** MoE++ zero-computation experts (constant + copy + zero): routed, but not run through the expert GEMMs. */
    public int specialExperts() { return constantExperts + copyExperts + zeroExperts; }

    /** Routed FFN experts: the first {@code numExperts − specialExperts()} expert ids. */
    public int ffnExperts() { return numExperts - specialExperts(); }

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
        private double jitter = 0, noiseEps = 0.01, secondExpertThreshold = 0.0;
        private String secondExpert = "all";
        private boolean legacyNormalize = true;
        private double topPThreshold = 0.4, entropyCoef = 0.0, l1Init = 1e-8, l1Multiplier = 1.2;
        private double temperatureMax = 1.0, temperatureMin = 0.5;
        private int temperatureDecaySteps = 1, hardAfterStep = -1, vocabSize = 0;
        private long seed = 0;
        // MoE++ / AoE: defaults leave every other router and expert type unchanged
        private int constantExperts = 0, copyExperts = 0, zeroExperts = 0, routerHidden = 0, expertGateRank = 0;
        private boolean dropZeroExpertWeight = true, expertInputNoMulTopK = false, gatingResidual = false;
        private double logitsNormStd = 0;
        private double noiseStd = 1.0;
        private boolean balanceUnbiasedTopK = false, temperatureLinear = false;
        private double zeroComputeBalanceWeight = 1.0;
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
        public Builder jitter(double v) { jitter = v; return this; }
        public Builder noiseEps(double v) { noiseEps = v; return this; }
        public Builder secondExpert(String v) { secondExpert = v; return this; }
        public Builder secondExpertThreshold(double v) { secondExpertThreshold = v; return this; }
        public Builder legacyNormalize(boolean v) { legacyNormalize = v; return this; }
        public Builder topPThreshold(double v) { topPThreshold = v; return this; }
        public Builder entropyCoef(double v) { entropyCoef = v; return this; }
        public Builder l1Init(double v) { l1Init = v; return this; }
        public Builder l1Multiplier(double v) { l1Multiplier = v; return this; }
        public Builder temperatureMax(double v) { temperatureMax = v; return this; }
        public Builder temperatureMin(double v) { temperatureMin = v; return this; }
        public Builder temperatureDecaySteps(int v) { temperatureDecaySteps = v; return this; }
        public Builder hardAfterStep(int v) { hardAfterStep = v; return this; }
        public Builder vocabSize(int v) { vocabSize = v; return this; }
        public Builder seed(long v) { seed = v; return this; }
        // MoE++ / AoE
        public Builder constantExperts(int v) { constantExperts = v; return this; }
        public Builder copyExperts(int v) { copyExperts = v; return this; }
        public Builder zeroExperts(int v) { zeroExperts = v; return this; }
        public Builder dropZeroExpertWeight(boolean v) { dropZeroExpertWeight = v; return this; }
        public Builder expertInputNoMulTopK(boolean v) { expertInputNoMulTopK = v; return this; }
        public Builder routerHidden(int v) { routerHidden = v; return this; }
        public Builder gatingResidual(boolean v) { gatingResidual = v; return this; }
        public Builder logitsNormStd(double v) { logitsNormStd = v; return this; }
        public Builder expertGateRank(int v) { expertGateRank = v; return this; }
        public Builder noiseStd(double v) { noiseStd = v; return this; }
        public Builder balanceUnbiasedTopK(boolean v) { balanceUnbiasedTopK = v; return this; }
        public Builder temperatureLinear(boolean v) { temperatureLinear = v; return this; }
        public Builder zeroComputeBalanceWeight(double v) { zeroComputeBalanceWeight = v; return this; }
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
            require(jitter >= 0 && jitter < 1, "moe.jitter must be in [0, 1), got " + jitter);
            require(noiseEps >= 0 && Double.isFinite(noiseEps), "moe.noiseEps must be >= 0, got " + noiseEps);
            require(java.util.List.of("all", "random", "sampling").contains(secondExpert),
                    "moe.secondExpert must be all, random or sampling, got '" + secondExpert + "'");
            require(secondExpertThreshold >= 0 && Double.isFinite(secondExpertThreshold),
                    "moe.secondExpertThreshold must be >= 0, got " + secondExpertThreshold);
            require(topPThreshold > 0 && topPThreshold <= 1, "moe.topPThreshold must be in (0, 1], got " + topPThreshold);
            require(entropyCoef >= 0 && Double.isFinite(entropyCoef), "moe.entropyCoef must be >= 0, got " + entropyCoef);
            require(l1Init >= 0 && Double.isFinite(l1Init), "moe.l1Init must be >= 0, got " + l1Init);
            require(l1Multiplier >= 1 && Double.isFinite(l1Multiplier), "moe.l1Multiplier must be >= 1, got " + l1Multiplier);
            require(temperatureMin > 0 && temperatureMax >= temperatureMin && Double.isFinite(temperatureMax),
                    "moe.temperatureMin/Max must satisfy 0 < min <= max, got " + temperatureMin + " / " + temperatureMax);
            require(temperatureDecaySteps >= 1, "moe.temperatureDecaySteps must be >= 1, got " + temperatureDecaySteps);
            require(vocabSize >= 0, "moe.vocabSize must be >= 0, got " + vocabSize);
            // MoE++ / AoE
            require(constantExperts >= 0, "moe.constantExperts must be >= 0, got " + constantExperts);
            require(copyExperts >= 0, "moe.copyExperts must be >= 0, got " + copyExperts);
            require(zeroExperts >= 0, "moe.zeroExperts must be >= 0, got " + zeroExperts);
            int special = constantExperts + copyExperts + zeroExperts;
            require(special < numExperts, "moe.constantExperts + moe.copyExperts + moe.zeroExperts = " + special
                    + " leaves no FFN expert in moe.numExperts = " + numExperts);
            require(routerHidden >= 0, "moe.routerHidden must be >= 0 (0 = linear gate), got " + routerHidden);
            require(logitsNormStd >= 0 && Double.isFinite(logitsNormStd),
                    "moe.logitsNormStd must be >= 0 (0 = off), got " + logitsNormStd);
            require(expertGateRank >= 0, "moe.expertGateRank must be >= 0 (0 = full-rank gate), got " + expertGateRank);
            require(expertGateRank == 0 || expertType.gated(), "moe.expertGateRank = " + expertGateRank
                    + " factorises the gate projection, which moe.expertType = " + expertType + " does not have");
            require(noiseStd > 0 && Double.isFinite(noiseStd), "moe.noiseStd must be > 0, got " + noiseStd);
            require(zeroComputeBalanceWeight >= 0 && Double.isFinite(zeroComputeBalanceWeight),
                    "moe.zeroComputeBalanceWeight must be >= 0, got " + zeroComputeBalanceWeight);
            require(zeroComputeBalanceWeight == 1.0 || ("moe++".equals(router) && special > 0),
                    "moe.zeroComputeBalanceWeight = " + zeroComputeBalanceWeight + " weights the balance terms of MoE++ "
                            + "zero-computation experts; it needs moe.router = moe++ and moe.constantExperts/copyExperts/"
                            + "zeroExperts > 0 (got moe.router = " + router + ", " + special + " such experts)");
            return new MoeConfig(dModel, numExperts, topK, expertHidden, expertType, router, normalizeTopK, routedScale,
                    sharedExperts, sharedHidden, sharedGate, dispatch, capacityRule, capacityFactor, fixedCapacity,
                    priority, balanceLoss == null ? BalanceLoss.NONE : balanceLoss, balanceCoef, zLossCoef, groupSize,
                    nGroup, topkGroup, biasUpdateSpeed, jitter, noiseEps, secondExpert, secondExpertThreshold,
                    legacyNormalize, topPThreshold, entropyCoef, l1Init, l1Multiplier, temperatureMax, temperatureMin,
                    temperatureDecaySteps, hardAfterStep, vocabSize, seed,
                    constantExperts, copyExperts, zeroExperts, dropZeroExpertWeight, expertInputNoMulTopK,
                    routerHidden, gatingResidual, logitsNormStd, expertGateRank, noiseStd, balanceUnbiasedTopK, temperatureLinear,
                    zeroComputeBalanceWeight, maxTokens, layerIndex);
        }

        private static void require(boolean ok, String message) {
            if (!ok) throw new InvalidConfigException(message);
        }
    }
}
