package io.moe4j.moe.router;

import io.moe4j.kernel.Kernels;
import io.moe4j.moe.InvalidConfigException;
import io.moe4j.moe.MoeConfig;
import io.moe4j.parallel.WorkerPool;

import java.lang.foreign.Arena;
import java.util.List;

/** The router registry: config name → strategy. The only place that knows the list of routers. */
public final class Routers {
    private Routers() {}

    /** Names accepted by {@code MoeConfig.router}. */
    public static final List<String> NAMES = List.of("softmax-topk", "switch", "deepseek-v2", "deepseek-v3",
            "moe++", "aoe");

    public static Router create(MoeConfig c, Arena arena, Kernels kernels, WorkerPool pool) {
        return switch (c.router()) {
            case "softmax-topk" -> new SoftmaxTopKRouter("softmax-topk", c, arena, kernels, pool);
            case "switch" -> {
                if (c.topK() != 1) throw new InvalidConfigException("moe.topK must be 1 for the switch router, got " + c.topK());
                yield new SoftmaxTopKRouter("switch", c, arena, kernels, pool);
            }
            case "deepseek-v2", "deepseek-v3" -> new DeepSeekRouter(c.router(), c, arena, kernels, pool);
            case "moe++" -> new MoePlusPlusRouter(c, arena, kernels, pool);
            case "aoe" -> new AutonomyRouter(c, arena, kernels, pool);
            default -> throw new InvalidConfigException("moe.router '" + c.router() + "' is unknown; known routers: "
                    + String.join(", ", NAMES));
        };
    }
}
