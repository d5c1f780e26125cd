package io.moe4j.infer;

import io.moe4j.parallel.WorkerPool;
import io.moe4j.tensor.DType;
import io.moe4j.testutil.LlamaPeer;
import io.moe4j.testutil.TinyGgufModels.Config;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.CleanupMode;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * moe4j vs llama.cpp on every supported architecture × every weight type moe4j computes with (K-quants on wider
 * models, their rows need 256 elements); see {@link LlamaDiff}. About a minute: tagged slow (run with -Pslow).
 */
@Tag("slow")
class LlamaDifferentialAllTypesTest {
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
            for (DType t : List.of(DType.F32, DType.F16, DType.BF16, DType.Q8_0, DType.Q4_0)) CASES.add(LlamaDiff.write(dir, c, t));
        }
        // K-quants need rows of 256 elements: wider models
        for (Config c : List.of(Config.mixtral(21).widened(8), Config.qwen2moe(22).widened(8).withSharedFf(256),
                Config.olmoe(23).widened(8), Config.qwen3moe(24).widened(8), Config.granitemoe(25).widened(8))) {
            for (DType t : List.of(DType.Q4_K, DType.Q6_K)) CASES.add(LlamaDiff.write(dir, c, t));
        }
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
