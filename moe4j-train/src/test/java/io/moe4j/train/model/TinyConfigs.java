package io.moe4j.train.model;

import io.moe4j.moe.CapacityRule;
import io.moe4j.moe.DispatchMode;
import io.moe4j.moe.MoeConfig;
import io.moe4j.moe.loss.BalanceLoss;

import java.util.SplittableRandom;

/** Small model configs and token batches shared by the model tests. */
final class TinyConfigs {
    static final int VOCAB = 11, D = 8, LAYERS = 2, HEADS = 2, KV = 1, HD = 4, T = 5, B = 2;

    private TinyConfigs() {}

    static ModelConfig model(MoeConfig moe, int denseLayers, boolean qkNorm, boolean tied) {
        return new ModelConfig(VOCAB, D, LAYERS, HEADS, KV, HD, 16, 10000.0, 1e-5, qkNorm, tied,
                denseLayers, 12, moe, 0.4, 7L);
    }

    static ModelConfig dense(boolean tied) { return model(null, LAYERS, false, tied); }

    static MoeConfig.Builder softmaxTopK() {
        return MoeConfig.builder().dModel(D).numExperts(4).topK(2).expertHidden(6).sharedExperts(1).sharedHidden(5)
                .balanceLoss(BalanceLoss.HF).balanceCoef(0.1).zLossCoef(0.01);
    }

    static MoeConfig deepseekV3() {
        return MoeConfig.builder().router("deepseek-v3").dModel(D).numExperts(4).topK(2).expertHidden(6).nGroup(2)
                .topkGroup(1).routedScale(2.5f).sharedExperts(1).sharedHidden(5).balanceLoss(BalanceLoss.MEGABLOCKS)
                .balanceCoef(0.1).groupSize(T).build();
    }

    static MoeConfig switchCapacity() {
        return MoeConfig.builder().router("switch").dModel(D).numExperts(4).topK(1).expertHidden(6)
                .dispatch(DispatchMode.CAPACITY).capacityRule(CapacityRule.FIXED).fixedCapacity(3)
                .balanceLoss(BalanceLoss.SWITCH).balanceCoef(0.1).zLossCoef(0.01).build();
    }

    /** batch rows of T + 1 uniform random tokens. */
    static int[] tokens(long seed, int batch, int seqLen, int vocab) {
        SplittableRandom rng = new SplittableRandom(seed);
        int[] t = new int[batch * (seqLen + 1)];
        for (int i = 0; i < t.length; i++) t[i] = rng.nextInt(vocab);
        return t;
    }
}
