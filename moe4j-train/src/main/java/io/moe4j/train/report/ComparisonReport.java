package io.moe4j.train.report;

import io.moe4j.train.TrainResult;
import io.moe4j.train.ui.SummaryTable;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.ToDoubleFunction;

/**
 * Several runs side by side (the demo's MoE vs dense, the router experiment): overlaid curves, the summary table
 * as Markdown ({@code results.md}) and an {@code index.html} linking each run's own report.
 */
public final class ComparisonReport {
    private ComparisonReport() {}

    /** Writes into {@code dir}; {@code runs} are the finished runs, each with its run directory. */
    public static Path write(Path dir, String title, String intro, List<TrainResult> runs, String extraHtml) {
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create " + dir, e);
        }
        List<RunLog.Contents> logs = new ArrayList<>();
        for (TrainResult r : runs) logs.add(RunLog.read(r.runDir()));
        Map<String, String> charts = new LinkedHashMap<>();
        List<Plots.Line> val = new ArrayList<>(), train = new ArrayList<>(), imb = new ArrayList<>(), act = new ArrayList<>();
        for (int i = 0; i < runs.size(); i++) {
            String n = runs.get(i).name();
            RunLog.Contents c = logs.get(i);
            double[] vx = new double[c.validations().size()], vy = new double[vx.length];
            for (int j = 0; j < vx.length; j++) {
                vx[j] = c.validations().get(j).step() + 1;
                vy[j] = c.validations().get(j).loss();
            }
            val.add(new Plots.Line(n, vx, vy, true));
            train.add(stepLine(n, c.steps(), StepRecord::loss));
            boolean moe = c.steps().stream().anyMatch(s -> !s.layers().isEmpty());
            if (moe) {
                imb.add(stepLine(n, c.steps(), StepRecord::meanImbalance));
                act.add(stepLine(n, c.steps(), s -> s.layers().stream().mapToDouble(LayerRecord::active).average().orElse(0)));
            }
        }
        if (Plots.lines(dir.resolve("val_loss.png"), title + ": validation loss", "step", "nats / token", val, false)) {
            charts.put("val_loss.png", "Validation loss of each run over training.");
        }
        if (Plots.lines(dir.resolve("train_loss.png"), title + ": training loss (moving average)", "step", "nats / token", train, false)) {
            charts.put("train_loss.png", "Training loss, moving average.");
        }
        if (Plots.lines(dir.resolve("imbalance.png"), title + ": load imbalance (max / mean, mean over layers)", "step",
                "max / mean", imb, false)) {
            charts.put("imbalance.png", "Most-loaded expert over the mean load, averaged over MoE layers.");
        }
        if (Plots.lines(dir.resolve("active_experts.png"), title + ": active experts per token", "step", "experts", act, false)) {
            charts.put("active_experts.png", "Experts computed per token, averaged over MoE layers.");
        }
        String md = "# " + title + "\n\n" + intro + "\n\n" + SummaryTable.markdown(runs);
        try {
            Files.writeString(dir.resolve("results.md"), md, StandardCharsets.UTF_8);
            StringBuilder h = new StringBuilder("<!doctype html><html><head><meta charset=\"utf-8\"><title>")
                    .append(RunReport.esc(title)).append("</title><style>").append(RunReport.CSS).append("</style></head><body>\n<h1>")
                    .append(RunReport.esc(title)).append("</h1>\n<p>").append(RunReport.esc(intro)).append("</p>\n")
                    .append(RunReport.SummaryHtml.table(runs));
            if (extraHtml != null) h.append(extraHtml);
            for (Map.Entry<String, String> e : charts.entrySet()) {
                h.append("<figure><img src=\"").append(e.getKey()).append("\"><figcaption>")
                        .append(RunReport.esc(e.getValue())).append("</figcaption></figure>\n");
            }
            h.append("<h2>Runs</h2><ul>");
            for (TrainResult r : runs) {
                String rel = dir.relativize(r.runDir().resolve("report").resolve("index.html")).toString();
                h.append("<li><a href=\"").append(RunReport.esc(rel)).append("\">").append(RunReport.esc(r.name())).append("</a></li>");
            }
            h.append("</ul></body></html>\n");
            Files.writeString(dir.resolve("index.html"), h, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write report in " + dir, e);
        }
        return dir.resolve("index.html");
    }

    private static Plots.Line stepLine(String name, List<StepRecord> steps, ToDoubleFunction<StepRecord> f) {
        double[] x = new double[steps.size()], y = new double[steps.size()];
        for (int i = 0; i < x.length; i++) {
            x[i] = steps.get(i).step() + 1;
            y[i] = f.applyAsDouble(steps.get(i));
        }
        return new Plots.Line(name, x, RunReport.smooth(y, Math.max(1, steps.size() / 40)), false);
    }
}
