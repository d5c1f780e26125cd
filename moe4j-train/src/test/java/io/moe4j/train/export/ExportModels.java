package io.moe4j.train.export;

import io.moe4j.kernel.Kernels;
import io.moe4j.moe.MoeConfig;
import io.moe4j.moe.loss.BalanceLoss;
import io.moe4j.parallel.WorkerPool;
import io.moe4j.tokenizer.GgufVocab;
import io.moe4j.tokenizer.TokenType;
import io.moe4j.train.model.ModelConfig;
import io.moe4j.train.model.MoeTransformer;

import java.util.ArrayList;
import java.util.List;

/** Small models of each export family and a byte-level-looking vocabulary llama.cpp accepts. */
final class ExportModels {
    static final int VOCAB = 64, D = 64, LAYERS = 2, HEADS = 4, KV = 2, HD = 16;
    static final int[] PROMPT = {1, 17, 5, 42, 9, 63, 30, 30, 2, 11};

    private ExportModels() {}

    static MoeConfig.Builder moe() {
        return MoeConfig.builder().dModel(D).numExperts(4).topK(2).expertHidden(32)
                .balanceLoss(BalanceLoss.HF).balanceCoef(0.01);
    }

    /** initStd 0.3 spreads the logits over a few units, so engine differences show and softmax does not saturate. */
    static ModelConfig config(MoeConfig moe, boolean qkNorm, boolean tied) {
        return new ModelConfig(VOCAB, D, LAYERS, HEADS, KV, HD, 64, 10000.0, 1e-5, qkNorm, tied,
                moe == null ? LAYERS : 0, 96, moe, 0.3, 11L);
    }

    static MoeTransformer model(ModelConfig c) {
        return MoeTransformer.create(c, Kernels.get(), WorkerPool.common());
    }

    static GgufVocab vocab() {
        List<String> tokens = new ArrayList<>(List.of("<pad>", "<s>", "</s>", "\u010a"));
        for (int i = tokens.size(); i < VOCAB; i++) tokens.add("\u0120t" + i);
        TokenType[] types = new TokenType[VOCAB];
        for (int i = 0; i < VOCAB; i++) types[i] = i <= 2 ? TokenType.CONTROL : TokenType.NORMAL;
        return new GgufVocab("gpt2", "default", tokens, types, null, List.of(), 1, 2, -1, false, false);
    }
}
