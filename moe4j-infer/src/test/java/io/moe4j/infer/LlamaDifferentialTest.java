package io.moe4j.infer;

import io.moe4j.gguf.GgufValue;
import io.moe4j.parallel.WorkerPool;
import io.moe4j.tensor.DType;
import io.moe4j.testutil.LlamaPeer;
import io.moe4j.testutil.TinyGgufModels;
import io.moe4j.testutil.TinyGgufModels.Config;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.CleanupMode;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * moe4j vs llama.cpp, the default-suite selection (see {@link LlamaDiff} for what is checked and the tolerances):
 * every architecture with F32 weights, the Mixtral-style model in F16, Q8_0, Q4_0 and (wider) Q4_K and Q6_K, and a
 * llama with Llama 3's {@code rope_freqs} frequency divisors, and RoPE context extension (linear, YaRN, DeepSeek's
 * YaRN with its attention-magnitude correction).
 * The full architecture × type matrix is {@link LlamaDifferentialAllTypesTest}. Skipped without the peer.
 */
class LlamaDifferentialTest {
    @TempDir(cleanup = CleanupMode.ON_SUCCESS) static Path dir;   // a failure leaves the .gguf files behind
    private static final List<LlamaDiff.Case> CASES = new ArrayList<>();
    private static List<LlamaPeer.Result> expected;
    private static WorkerPool pool;

    @BeforeAll
    static void runPeer() throws Exception {
        LlamaPeer.assumeAvailable();
        pool = new WorkerPool(2);
        for (Config c : List.of(Config.mixtral(11), Config.dense(12), Config.qwen2(13), Config.qwen2moe(14),
                Config.qwen3moe(15), Config.olmoe(16), Config.granitemoe(17), Config.deepseek2(18),
                Config.qwen3(24), Config.granite(25))) {
            CASES.add(LlamaDiff.write(dir, c, DType.F32));
        }
        for (DType t : List.of(DType.F16, DType.Q8_0, DType.Q4_0)) CASES.add(LlamaDiff.write(dir, Config.mixtral(11), t));
        CASES.add(LlamaDiff.write(dir, "llama3-rope-freqs", LlamaDiff.withRopeFreqs(TinyGgufModels.llama(Config.dense(19))), DType.F32));
        // context extension: linear interpolation, YaRN, and YaRN with DeepSeek's magnitude correction
        CASES.add(LlamaDiff.write(dir, "llama-rope-linear", TinyGgufModels.llama(Config.mixtral(20))
                .with("llama.rope.scaling.type", GgufValue.string("linear"))
                .with("llama.rope.scaling.factor", GgufValue.f32(4f)), DType.F32));
        CASES.add(LlamaDiff.write(dir, "qwen3moe-yarn", TinyGgufModels.llama(Config.qwen3moe(21))
                .with("qwen3moe.rope.scaling.type", GgufValue.string("yarn"))
                .with("qwen3moe.rope.scaling.factor", GgufValue.f32(4f))
                .with("qwen3moe.rope.scaling.original_context_length", GgufValue.u32(32)), DType.F32));
        CASES.add(LlamaDiff.write(dir, "deepseek2-yarn", TinyGgufModels.llama(Config.deepseek2(22))
                .with("deepseek2.rope.scaling.type", GgufValue.string("yarn"))
                .with("deepseek2.rope.scaling.factor", GgufValue.f32(40f))
                .with("deepseek2.rope.scaling.original_context_length", GgufValue.u32(32))
                .with("deepseek2.rope.scaling.yarn_log_multiplier", GgufValue.f32(0.0707f)), DType.F32));
        // tied embeddings: no output.weight, the logits use token_embd (quantized, so the output matmul runs on Q8_0)
        TinyGgufModels.Model qwen = TinyGgufModels.llama(Config.qwen2(27));
        java.util.Map<String, TinyGgufModels.Weight> tied = new java.util.LinkedHashMap<>(qwen.weights());
        tied.remove("output.weight");
        CASES.add(LlamaDiff.write(dir, "qwen2-tied-embeddings",
                new TinyGgufModels.Model(qwen.config(), qwen.tokens(), tied), DType.Q8_0));
        // Granite MoE with an (ungated) shared expert
        CASES.add(LlamaDiff.write(dir, "granitemoe-shared", TinyGgufModels.llama(Config.granitemoe(26).withSharedFf(64)), DType.F32));
        // fused ffn_gate_up_exps (llama.cpp's --fuse-gate-up-exps), quantized so that the row offsets are in blocks
        CASES.add(LlamaDiff.write(dir, "deepseek2-gate-up-fused", LlamaDiff.fuseGateUp(TinyGgufModels.llama(Config.deepseek2(23))), DType.Q8_0));
        for (DType t : List.of(DType.Q4_K, DType.Q6_K)) CASES.add(LlamaDiff.write(dir, Config.mixtral(21).widened(8), t));
        expected = LlamaDiff.runPeer(CASES, dir);
    }

    @AfterAll
    static void closePool() {
        if (pool != null) pool.close();
    }

    @TestFactory
    Stream<DynamicTest> logitsMatchLlamaCpp() {
        return LlamaDiff.tests(CASES, expected, pool);
    }
}
