package io.moe4j.infer;

import io.moe4j.parallel.WorkerPool;
import io.moe4j.tensor.DType;
import io.moe4j.testutil.TinyGgufModels;
import io.moe4j.testutil.TinyGgufModels.Config;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Several sequences generated together give what each gives alone: greedy and seeded sampling, different prompt
 * lengths, budgets and stop ids, with prompts packed across batch boundaries.
 */
class BatchGeneratorTest {
    @TempDir Path dir;

    @Test
    void togetherEqualsAlone() throws Exception {
        Path file = dir.resolve("m.gguf");
        TinyGgufModels.llama(Config.deepseek2(31)).write(file, DType.F32);   // F32: no activation rounding to amplify last-bit differences into a different token
        int[][] prompts = {{1, 17, 5, 42, 9}, {1, 8}, {1, 30, 31, 32, 33, 34, 35, 36, 37}};
        int[] budgets = {12, 7, 10};
        try (WorkerPool pool = new WorkerPool(2); Model m = Model.open(file);
             Engine alone = new Engine(m, pool, Engine.Options.defaults().withContextLength(32));
             Engine together = new Engine(m, pool, Engine.Options.defaults().withSlots(3).withMaxBatch(4).withContextLength(32))) {
            List<Generator.Result> want = new ArrayList<>();
            List<BatchGenerator.Request> reqs = new ArrayList<>();
            for (int r = 0; r < 3; r++) {
                Sampler.Params p = r == 1 ? Sampler.Params.defaults(77) : Sampler.Params.greedy();
                alone.cache().clear(0);
                want.add(new Generator(alone, new Sampler(p, m.hyperParams().vocab())).generate(0, prompts[r], budgets[r], null, null));
                reqs.add(new BatchGenerator.Request(prompts[r], new Sampler(p, m.hyperParams().vocab()), budgets[r], null));
            }
            // the third request stops at its own 4th token
            int stopAt = want.get(2).tokens()[3];
            reqs.set(2, new BatchGenerator.Request(prompts[2], new Sampler(Sampler.Params.greedy(), m.hyperParams().vocab()), budgets[2], new int[]{stopAt}));
            List<int[]> streamed = new ArrayList<>(List.of(new int[0], new int[0], new int[0]));
            List<Generator.Result> got = new BatchGenerator(together).generate(reqs, (r, id) -> {
                int[] s = streamed.get(r);
                int[] t = java.util.Arrays.copyOf(s, s.length + 1);
                t[s.length] = id;
                streamed.set(r, t);
                return true;
            });
            assertThat(got.get(0).tokens()).containsExactly(want.get(0).tokens());
            assertThat(got.get(1).tokens()).containsExactly(want.get(1).tokens());
            int firstStop = 0;
            while (want.get(2).tokens()[firstStop] != stopAt) firstStop++;
            assertThat(got.get(2).tokens()).containsExactly(java.util.Arrays.copyOf(want.get(2).tokens(), firstStop + 1));
            assertThat(got.get(2).reason()).isEqualTo(Generator.Stop.STOP_TOKEN);
            assertThat(got.get(0).reason()).isEqualTo(Generator.Stop.MAX_TOKENS);
            for (int r = 0; r < 3; r++) assertThat(streamed.get(r)).containsExactly(got.get(r).tokens());
        }
    }
}
