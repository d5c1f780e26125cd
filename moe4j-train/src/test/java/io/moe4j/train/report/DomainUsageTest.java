package io.moe4j.train.report;

import io.moe4j.kernel.Kernels;
import io.moe4j.moe.MoeConfig;
import io.moe4j.moe.router.HashRouter;
import io.moe4j.parallel.WorkerPool;
import io.moe4j.train.data.BatchSource;
import io.moe4j.train.model.ModelConfig;
import io.moe4j.train.model.MoeTransformer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/**
 * The per-domain expert table and the specialisation score on a real transformer whose routing is known exactly:
 * hash routing (top-1, token id → expert fixed by a table), so a domain written only in tokens of expert 0 must
 * show 100 % on expert 0 in every layer, whatever the weights.
 */
class DomainUsageTest {
    static final int V = 16, B = 4, T = 8, E = 4;

    private static MoeTransformer model() {
        MoeConfig moe = MoeConfig.builder().dModel(16).numExperts(E).topK(1).expertHidden(8).router("hash")
                .vocabSize(V).build();
        ModelConfig c = new ModelConfig(V, 16, 2, 2, 2, 8, T, 10000.0, 1e-5, false, false, 0, 0, moe, 0.05, 3L);
        MoeTransformer m = MoeTransformer.create(c, Kernels.get(), WorkerPool.common(), B);
        int[] table = new int[V];
        for (int v = 0; v < V; v++) table[v] = v % E; // expert of token v = v mod 4
        for (var l : m.moeLayers()) ((HashRouter) l.router()).loadTable(table);
        return m;
    }

    /** Row r of a batch: only tokens ≡ e (mod 4), so every one of its tokens goes to expert e. */
    private static int[] batch(int... expertOfRow) {
        int[] t = new int[B * (T + 1)];
        for (int b = 0; b < B; b++) {
            for (int j = 0; j <= T; j++) t[b * (T + 1) + j] = expertOfRow[b] + E * ((b + j) % (V / E));
        }
        return t;
    }

    @Test
    void domainWrittenInOneExpertsTokensIsFullySpecialised() {
        try (MoeTransformer m = model()) {
            // code rows use expert 0's tokens, prose rows expert 1's (batch 2: both), drama rows experts 2 and 3
            BatchSource.ValidationSet val = new BatchSource.ValidationSet(
                    List.of(batch(0, 0, 1, 1), batch(0, 1, 2, 3)), 2L * B * T, 2L * B * T,
                    List.of(new String[]{"code", "code", "prose", "prose"}, new String[]{"code", "prose", "drama", "drama"}));
            DomainUsage u = DomainUsage.measure(m, val, B, T);
            assertThat(u.domains()).containsExactly("code", "drama", "prose");
            assertThat(u.rows()).containsExactly(3, 2, 3);
            assertThat(u.layers()).hasSize(2);
            for (DomainUsage.Layer l : u.layers()) {
                assertThat(l.counts()[0]).containsExactly(3L * T, 0, 0, 0);
                assertThat(l.counts()[1]).containsExactly(0, 0, T, T);
                assertThat(l.counts()[2]).containsExactly(0, 3L * T, 0, 0);
                assertThat(l.shares()[1]).containsExactly(0, 0, 0.5, 0.5);
                // the expert determines the domain: I = H(domain) = H(3/8, 2/8, 3/8)
                double h = -(2 * 3 / 8.0 * Math.log(3 / 8.0) + 2 / 8.0 * Math.log(2 / 8.0)) / Math.log(2);
                assertThat(l.domainEntropyBits()).isCloseTo(h, within(1e-12));
                assertThat(l.mutualInformationBits()).isCloseTo(h, within(1e-12));
                // KL of code from the overall mix (3/8, 3/8, 1/8, 1/8) = log2(8/3)
                assertThat(l.klBits(0)).isCloseTo(Math.log(8 / 3.0) / Math.log(2), within(1e-12));
            }
            assertThat(u.table()).contains("drama").contains("100.0").contains("I(domain; expert)");
        }
    }

    @Test
    void domainBlindRoutingScoresZero() {
        try (MoeTransformer m = model()) {
            // both domains use the same token mix: expert shares are equal, so I(domain; expert) = 0 exactly
            BatchSource.ValidationSet val = new BatchSource.ValidationSet(List.of(batch(0, 1, 0, 1)), B * T, B * T,
                    List.<String[]>of(new String[]{"a", "a", "b", "b"}));
            DomainUsage.Layer l = DomainUsage.measure(m, val, B, T).layers().getFirst();
            assertThat(l.mutualInformationBits()).isCloseTo(0, within(1e-12));
            assertThat(l.biasBits()).isGreaterThan(0);
        }
    }

    @Test
    void unknownDomainsAndHeatMaps(@TempDir Path dir) {
        try (MoeTransformer m = model()) {
            BatchSource.ValidationSet val = new BatchSource.ValidationSet(List.of(batch(0, 1, 2, 3)), B * T, B * T, null);
            DomainUsage u = DomainUsage.measure(m, val, B, T);
            assertThat(u.domains()).containsExactly(DomainUsage.UNKNOWN);
            assertThat(u.layers().getFirst().mutualInformationBits()).isEqualTo(0);
            String html = u.writeHtml(dir.resolve("report"));
            assertThat(html).contains("domain_experts_0.png").contains("domain_experts_1.png");
            assertThat(dir.resolve("report/domain_experts_1.png")).isRegularFile();
        }
    }
}
