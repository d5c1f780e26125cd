package io.moe4j.train;

import io.moe4j.train.model.ModelConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class TrainConfigTest {

    @Test
    void layersDefaultsPresetFileAndOverrides(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("run.yaml");
        Files.writeString(f, "name: mine\nmodel:\n  layers: 3\n  moe: {router: deepseek-v3}\ntrain: {steps: 77}\n");
        TrainConfig c = TrainConfig.load("small", f, List.of("train.steps=5", "model.moe.topK=1", "data.paths=a.txt"));
        assertThat(c.name()).isEqualTo("mine");
        assertThat(c.model().layers()).isEqualTo(3);          // file over preset
        assertThat(c.model().dModel()).isEqualTo(192);        // preset over defaults
        assertThat(c.model().moe().router()).isEqualTo("deepseek-v3");
        assertThat(c.train().steps()).isEqualTo(5);           // --set over file
        assertThat(c.model().moe().topK()).isEqualTo(1);
        assertThat(c.data().paths()).containsExactly("a.txt");
        assertThat(c.train().beta2()).isEqualTo(0.95);        // defaults
        assertThat(TrainConfig.load(null, null, List.of("train.lr=1e-3")).train().lr()).isEqualTo(1e-3);
        TrainConfig v3 = TrainConfig.load(null, null, List.of("model.moe.router=deepseek-v3", "model.moe.nGroup=2",
                "model.moe.topkGroup=1", "model.moe.routedScale=2.5", "model.moe.priority=BATCH_PRIORITY"));
        assertThat(v3.moeConfig(10).nGroup()).isEqualTo(2);
        assertThat(v3.moeConfig(10).routedScale()).isEqualTo(2.5f);
        assertThat(v3.moeConfig(10).priority()).isEqualTo(io.moe4j.moe.PriorityOrder.BATCH_PRIORITY);
        TrainConfig back = TrainConfig.fromJson(c.toJson());
        assertThat(back).usingRecursiveComparison().isEqualTo(c);
    }

    @Test
    void jsonFilesWorkToo(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("run.json");
        Files.writeString(f, "{\"train\": {\"batch\": 3}}");
        assertThat(TrainConfig.load(null, f, List.of()).train().batch()).isEqualTo(3);
    }

    @Test
    void mistakesNameTheField(@TempDir Path dir) throws Exception {
        assertThatThrownBy(() -> TrainConfig.load("tiny", null, List.of("model.layer=4")))
                .isInstanceOf(ConfigException.class).hasMessageContaining("unknown setting 'model.layer'")
                .hasMessageContaining("model.layers");
        assertThatThrownBy(() -> TrainConfig.load("tiny", null, List.of("train.steps=0")))
                .hasMessageContaining("train.steps must be > 0");
        assertThatThrownBy(() -> TrainConfig.load("tiny", null, List.of("model.moe.topK=9")))
                .hasMessageContaining("model.moe.topK = 9 exceeds moe.numExperts = 4");
        assertThatThrownBy(() -> TrainConfig.load("tiny", null, List.of("model.moe.dispatch=SOMETIMES")))
                .hasMessageContaining("model.moe.dispatch").hasMessageContaining("DROPLESS");
        assertThatThrownBy(() -> TrainConfig.load("tiny", null, List.of("train.lr=fast")))
                .hasMessageContaining("train.lr");
        assertThatThrownBy(() -> TrainConfig.load("huge", null, List.of())).hasMessageContaining("unknown preset 'huge'");
        assertThatThrownBy(() -> TrainConfig.load(null, null, List.of("train.onNonFinite=ignore")))
                .hasMessageContaining("train.onNonFinite");
        assertThatThrownBy(() -> TrainConfig.load(null, null, List.of("model.kvHeads=3")))
                .hasMessageContaining("model.kvHeads");
        Path f = dir.resolve("bad.yaml");
        Files.writeString(f, "train:\n  stepz: 4\n");
        assertThatThrownBy(() -> TrainConfig.load(null, f, List.of()))
                .hasMessageContaining(f.toString()).hasMessageContaining("train.stepz");
        Files.writeString(f, "train: [\n");
        assertThatThrownBy(() -> TrainConfig.load(null, f, List.of())).hasMessageContaining("cannot parse config");
        assertThatThrownBy(() -> TrainConfig.load(null, dir.resolve("missing.yaml"), List.of()))
                .hasMessageContaining("config file not found");
    }

    @Test
    void denseBaselineHasTheSameActiveFfnWidth() {
        TrainConfig moe = TrainConfig.load("tiny", null, List.of("model.moe.sharedExperts=1", "model.moe.sharedHidden=32"));
        TrainConfig dense = moe.dense();
        ModelConfig m = moe.modelConfig(100), d = dense.modelConfig(100);
        assertThat(m.denseLayers()).isZero();
        assertThat(d.denseLayers()).isEqualTo(d.layers());
        assertThat(d.denseHidden()).isEqualTo(2 * 128 + 32);
        assertThat(d.heads()).isEqualTo(m.heads());
        assertThat(d.dModel()).isEqualTo(m.dModel());
        assertThat(dense.name()).isEqualTo("tiny-dense");
        assertThat(m.moe().maxTokens()).isEqualTo(8 * 64);
        assertThat(m.vocabSize()).isEqualTo(100);
    }

    /** Spec §4.22: every routed-expert tensor of a real MoE layer, and only those, gets the expert multiplier. */
    @Test
    void expertLrGroupHoldsExactlyTheRoutedExpertTensors() {
        TrainConfig c = TrainerTest.config("train.expertLrMult=0.25", "model.moe.sharedExperts=1",
                "model.moe.sharedHidden=8", "model.moe.sharedGate=true");
        try (io.moe4j.parallel.WorkerPool pool = new io.moe4j.parallel.WorkerPool(1)) {
            FakeLm m = new FakeLm(c.modelConfig(24), pool);
            io.moe4j.moe.MoeLayer layer = m.moeLayers().getFirst();
            java.util.Set<io.moe4j.nn.Param> routed = new java.util.HashSet<>(layer.experts().params());
            assertThat(routed).isNotEmpty();
            int grouped = 0;
            for (io.moe4j.nn.Param p : m.params()) {
                double mult = c.adamW().lrMultiplier(p.name());
                assertThat(mult).as(p.name()).isEqualTo(routed.contains(p) ? 0.25 : 1.0);
                if (mult != 1.0) grouped++;
            }
            assertThat(grouped).isEqualTo(routed.size());
            assertThat(m.params()).anyMatch(p -> p.name().contains(".shared")).anyMatch(p -> p.name().contains("router"));
        }
    }

    @Test
    void expertLrMultiplierMakesARoutedExpertGroup() {
        TrainConfig c = TrainConfig.load("tiny", null, List.of("train.expertLrMult=0.25"));
        assertThat(c.adamW().lrMultiplier("layers.1.moe.experts.up")).isEqualTo(0.25);
        assertThat(c.adamW().lrMultiplier("layers.1.moe.shared.up")).isEqualTo(1.0);
        assertThat(c.adamW().lrMultiplier("layers.1.moe.router.weight")).isEqualTo(1.0);
    }

    @Test
    void routerLrMultiplierMakesARouterGroupAndZeroFreezesIt() {
        TrainConfig c = TrainConfig.load("tiny", null, List.of("train.routerLrMult=0", "train.expertLrMult=2"));
        assertThat(c.adamW().lrMultiplier("layers.0.moe.router.weight")).isEqualTo(0.0);
        assertThat(c.adamW().lrMultiplier("layers.0.moe.experts.up")).isEqualTo(2.0);
        assertThat(c.adamW().lrMultiplier("layers.0.attn.wq")).isEqualTo(1.0);
        TrainConfig d = TrainConfig.load("tiny", null, List.of("train.ffnLrMult=0.5")).dense();
        assertThat(d.adamW().lrMultiplier("layers.1.ffn.down")).isEqualTo(0.5);
        assertThat(d.adamW().lrMultiplier("layers.1.ffn_norm.weight")).isEqualTo(1.0);
        assertThatThrownBy(() -> TrainConfig.load("tiny", null, List.of("train.routerLrMult=-1")))
                .hasMessageContaining("train.routerLrMult");
    }

    @Test
    void topOneWithNormalisedWeightsWarnsThatTheRouterLearnsNothing() {
        assertThat(TrainConfig.load("tiny", null, List.of("model.moe.topK=1")).warnings())
                .singleElement().asString().contains("model.moe.topK = 1").contains("normalizeTopK");
        assertThat(TrainConfig.load("tiny", null, List.of("model.moe.topK=1", "model.moe.normalizeTopK=false")).warnings()).isEmpty();
        assertThat(TrainConfig.load("tiny", null, List.of("model.moe.topK=1")).dense().warnings()).isEmpty();
        assertThat(TrainConfig.load("demo", null, List.of()).warnings()).isEmpty();
    }
}
