package io.moe4j.train;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/** The demo's verdict line: winner by validation loss, ties below {@link Demo#TIE_NATS}, the numbers it quotes. */
class DemoVerdictTest {
    private static TrainResult run(String name, double val, double bpb, long params, long active, double tps) {
        return new TrainResult(name, 300, val, val, bpb, tps, 10, params, active, 1, 0, 2, null, null);
    }

    @Test
    void namesTheWinnerAndQuotesGapActiveParamsAndRatios() {
        String v = Demo.verdict(run("m", 3.60, 2.70, 900, 199, 500), run("d", 3.70, 2.80, 200, 197, 1000));
        assertThat(v).contains("Verdict: the MoE wins").contains("MoE 3.6000 vs dense 3.7000").contains("-0.1000 nats/token")
                .contains("(-2.70%)").contains("-0.1000 bits/byte").contains("199 vs 197 active").contains("4.50×")
                .contains("0.50× its tokens/s");
        assertThat(Demo.verdict(run("m", 3.80, 2.9, 900, 199, 1), run("d", 3.70, 2.8, 200, 197, 1)))
                .contains("the dense baseline wins").contains("+0.1000 nats/token");
        assertThat(Demo.verdict(run("m", 3.7010, 2.8, 900, 199, 1), run("d", 3.7000, 2.8, 200, 197, 1))).contains("a tie");
        assertThat(Demo.verdict(run("m", Double.NaN, 2.8, 900, 199, 1), run("d", 3.7, 2.8, 200, 197, 1))).isEmpty();
    }
}
