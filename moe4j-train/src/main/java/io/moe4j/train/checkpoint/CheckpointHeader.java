package io.moe4j.train.checkpoint;

import java.util.List;

/**
 * The JSON header of a checkpoint: everything but the tensors.
 *
 * @param config        the run's TrainConfig as JSON
 * @param vocabSize     the model's vocabulary size (to rebuild it)
 * @param step          steps completed; training resumes at this step index
 * @param dataPosition  {@link io.moe4j.train.data.BatchSource#position()} after those steps
 * @param optimizerStep AdamW's bias-correction step count
 * @param lrScale       LR factor left by lower-lr rollbacks (1 normally)
 * @param tokens        training tokens seen
 * @param routers       per MoE layer: its router's random-stream position and non-trainable state
 * @param params        the parameter table, in model order
 */
public record CheckpointHeader(String config, int vocabSize, int step, long dataPosition, long optimizerStep,
                               double lrScale, long tokens, List<RouterState> routers, List<ParamEntry> params) {

    /**
     * @param rngDraws   draws of the router's CounterRng (−1: none)
     * @param state      {@code Router.state()}, e.g. the DeepSeek-V3 bias or the ReMoE λ
     * @param routerStep the router's own step counter (EvoMoE temperature schedule), −1 when it has none
     */
    public record RouterState(int layer, String router, long rngDraws, float[] state, long routerStep) {}

    public record ParamEntry(String name, long[] shape, long numel) {}
}
