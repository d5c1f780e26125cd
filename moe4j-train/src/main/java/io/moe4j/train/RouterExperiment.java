package io.moe4j.train;

import io.moe4j.train.report.ComparisonReport;
import io.moe4j.train.ui.SummaryTable;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * {@code moe4j experiment routers}: the same small model trained once per routing method on the same data, with a
 * Markdown table (validation loss, imbalance, dropped fraction, active experts, tokens/s) and overlaid plots.
 * Each variant is a list of config overrides on the base config, so the methods differ only where they say.
 */
public final class RouterExperiment {
    private RouterExperiment() {}

    /** A routing method as overrides of the base config. */
    public record Variant(String name, String description, List<String> overrides) {}

    public static final List<Variant> VARIANTS = List.of(
            new Variant("softmax-top2-aux", "softmax top-2 with the load-balancing loss (Mixtral)",
                    List.of("model.moe.router=softmax-topk", "model.moe.topK=2", "model.moe.balanceLoss=HF",
                            "model.moe.balanceCoef=0.01")),
            new Variant("switch-top1-cap", "Switch top-1 with capacity factor 1.25 (tokens over capacity dropped)",
                    List.of("model.moe.router=switch", "model.moe.topK=1", "model.moe.dispatch=CAPACITY",
                            "model.moe.capacityFactor=1.25", "model.moe.balanceLoss=SWITCH", "model.moe.balanceCoef=0.01")),
            new Variant("expert-choice", "expert choice: each expert picks its top tokens (capacity factor 2 = on average"
                    + " 2 experts per token, the compute of top-2)",
                    List.of("model.moe.router=expert-choice", "model.moe.topK=2", "model.moe.capacityFactor=2.0",
                            "model.moe.balanceLoss=NONE", "model.moe.balanceCoef=0")),
            new Variant("deepseek-v3-auxfree", "DeepSeek-V3 sigmoid routing, bias-based balancing, no aux loss",
                    List.of("model.moe.router=deepseek-v3", "model.moe.topK=2", "model.moe.balanceLoss=NONE",
                            "model.moe.balanceCoef=0", "model.moe.biasUpdateSpeed=0.001")),
            new Variant("remoe", "ReMoE: ReLU routing with adaptive L1 (target sparsity 1 − k/E)",
                    List.of("model.moe.router=remoe", "model.moe.topK=2", "model.moe.balanceLoss=NONE",
                            "model.moe.balanceCoef=0")),
            new Variant("top-p", "dynamic top-p routing (threshold 0.4)",
                    List.of("model.moe.router=top-p", "model.moe.topPThreshold=0.4", "model.moe.balanceLoss=HF",
                            "model.moe.balanceCoef=0.01")));

    public record Result(List<TrainResult> runs, String markdown, Path report) {}

    /** Variants by name ("all" or null = every variant). */
    public static List<Variant> select(List<String> names) {
        if (names == null || names.isEmpty() || names.contains("all")) return VARIANTS;
        List<Variant> out = new ArrayList<>();
        for (String n : names) {
            out.add(VARIANTS.stream().filter(v -> v.name().equals(n)).findFirst().orElseThrow(() ->
                    new IllegalArgumentException("unknown router variant '" + n + "'; known: "
                            + String.join(", ", VARIANTS.stream().map(Variant::name).toList()))));
        }
        return out;
    }

    /** The config of one variant. */
    public static TrainConfig configOf(TrainConfig base, Variant v) {
        TrainConfig c = base.with("model.dense=false");
        for (String o : v.overrides()) c = c.with(o);
        return c.with("name=" + v.name());
    }

    public static Result run(TrainConfig base, List<Variant> variants, RunInputs in, Path outDir,
                             Function<TrainConfig, Trainer.Listener> listeners, Consumer<String> warn) {
        List<TrainConfig> cfgs = new ArrayList<>();
        for (Variant v : variants) cfgs.add(configOf(base, v)); // validate all before training any
        List<TrainResult> runs = new ArrayList<>();
        for (TrainConfig c : cfgs) {
            runs.add(TrainRun.train(c, in, outDir.resolve(c.name()), null, listeners.apply(c), warn).result());
        }
        StringBuilder intro = new StringBuilder("Base model: " + base.describe() + ". Variants: ");
        for (int i = 0; i < variants.size(); i++) {
            intro.append(i == 0 ? "" : "; ").append(variants.get(i).name()).append(" = ").append(variants.get(i).description());
        }
        intro.append('.');
        Path report = ComparisonReport.write(outDir, "Routers compared", intro.toString(), runs, null);
        return new Result(runs, SummaryTable.markdown(runs), report);
    }
}
