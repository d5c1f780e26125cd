package io.moe4j.moe.router;

import io.moe4j.kernel.Kernels;
import io.moe4j.moe.DispatchMode;
import io.moe4j.moe.InvalidConfigException;
import io.moe4j.moe.MoeConfig;
import io.moe4j.moe.PriorityOrder;
import io.moe4j.moe.loss.BalanceLoss;
import io.moe4j.parallel.WorkerPool;

import java.lang.foreign.Arena;
import java.util.List;

/** The router registry: config name → strategy. The only place that knows the list of routers. */
public final class Routers {
    private Routers() {}

    /** Names accepted by {@code MoeConfig.router}. */
    public static final List<String> NAMES = List.of("softmax-topk", "switch", "deepseek-v2", "deepseek-v3",
            "expert-choice", "top-p", "remoe", "noisy-topk", "gshard", "hash", "evomoe",
            "moe++", "aoe", "vmoe");

    /** Routers with a variable number of experts per token (slots = E). */
    private static final List<String> VARIABLE_COUNT = List.of("expert-choice", "top-p", "remoe");

    public static Router create(MoeConfig c, Arena arena, Kernels kernels, WorkerPool pool) {
        if (VARIABLE_COUNT.contains(c.router()) && c.routedScale() != 1f) {
            // Their weights are the raw scores by definition (spec §4.9, §4.12, §4.13); a silently ignored scale
            // would make a DeepSeek-style config behave differently from what it says.
            throw new InvalidConfigException("moe.routedScale = " + c.routedScale() + " is not supported by moe.router = "
                    + c.router() + " (its combine weights are the raw router scores); leave it at 1");
        }
        return switch (c.router()) {
            case "softmax-topk" -> new SoftmaxTopKRouter("softmax-topk", c, arena, kernels, pool);
            case "switch" -> {
                if (c.topK() != 1) throw new InvalidConfigException("moe.topK must be 1 for the switch router, got " + c.topK());
                yield new SoftmaxTopKRouter("switch", c, arena, kernels, pool);
            }
            case "deepseek-v2", "deepseek-v3" -> new DeepSeekRouter(c.router(), c, arena, kernels, pool);
            case "expert-choice" -> {
                // The router already caps every expert at C tokens; a second, token-choice capacity pass would
                // drop some of the experts' picks and break the "every expert is exactly full" guarantee.
                if (c.dispatch() == DispatchMode.CAPACITY) {
                    throw new InvalidConfigException("moe.dispatch = CAPACITY is not allowed with moe.router = "
                            + "expert-choice: expert choice is capacity-limited by construction and runs dropless at "
                            + "the layer; use DROPLESS and set moe.capacityRule / moe.capacityFactor");
                }
                yield new ExpertChoiceRouter(c, arena, kernels, pool);
            }
            case "top-p" -> new TopPRouter(c, arena, kernels, pool);
            case "remoe" -> new ReMoERouter(c, arena, kernels, pool);
            case "noisy-topk" -> {
                if (c.jitter() > 0) throw new InvalidConfigException("moe.jitter must be 0 for the noisy-topk router "
                        + "(its noise is the learned Gaussian noise, moe.noiseEps), got " + c.jitter());
                yield new NoisyTopKRouter(c, arena, kernels, pool);
            }
            case "gshard" -> {
                if (c.topK() != 2) throw new InvalidConfigException("moe.topK must be 2 for the gshard router, got " + c.topK());
                if (c.balanceLoss() != BalanceLoss.SWITCH && c.balanceLoss() != BalanceLoss.NONE) {
                    throw new InvalidConfigException("moe.balanceLoss must be SWITCH (GShard's top-1 loss) or NONE for "
                            + "the gshard router, got " + c.balanceLoss());
                }
                if (c.priority() != PriorityOrder.POSITION) {
                    throw new InvalidConfigException("moe.priority must be POSITION for the gshard router (GShard claims "
                            + "capacity in position order, top-1 choices first), got " + c.priority());
                }
                yield new GShardRouter(c, arena, kernels, pool);
            }
            case "hash" -> {
                if (c.vocabSize() <= 0) {
                    throw new InvalidConfigException("moe.vocabSize must be > 0 for the hash router, got " + c.vocabSize());
                }
                if (c.topK() != 1) throw new InvalidConfigException("moe.topK must be 1 for the hash router, got " + c.topK());
                if (c.jitter() > 0 || c.zLossCoef() > 0) {
                    throw new InvalidConfigException("moe.jitter and moe.zLossCoef must be 0 for the hash router "
                            + "(it has no router logits), got " + c.jitter() + " and " + c.zLossCoef());
                }
                yield new HashRouter(c);
            }
            case "evomoe" -> {
                if (c.topK() != 1) {
                    throw new InvalidConfigException("moe.topK must be 1 for the evomoe router (its hard phase is top-1), got "
                            + c.topK());
                }
                if (c.dispatch() != DispatchMode.DROPLESS) {
                    throw new InvalidConfigException("moe.dispatch must be DROPLESS for the evomoe router (EvoMoE never "
                            + "drops tokens), got " + c.dispatch());
                }
                yield new EvoMoeRouter(c, arena, kernels, pool);
            }
            case "moe++" -> new MoePlusPlusRouter(c, arena, kernels, pool);
            case "aoe" -> new AutonomyRouter(c, arena, kernels, pool);
            case "vmoe" -> {
                if (c.jitter() > 0) throw new InvalidConfigException("moe.jitter must be 0 for the vmoe router "
                        + "(its noise is N(0, (moe.noiseStd/E)²) on the logits), got " + c.jitter());
                yield new VMoeRouter(c, arena, kernels, pool);
            }
            default -> throw new InvalidConfigException("moe.router '" + c.router() + "' is unknown; known routers: "
                    + String.join(", ", NAMES));
        };
    }
}
