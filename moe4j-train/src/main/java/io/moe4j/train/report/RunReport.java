package io.moe4j.train.report;

import io.moe4j.train.TrainConfig;
import io.moe4j.train.TrainResult;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeSet;

/**
 * A run's report directory ({@code RUN/report/}): PNG charts of the run log and an {@code index.html} that shows
 * them with the run's configuration and summary. Charts: training/validation loss, per MoE layer an expert-load
 * heat map over steps, router entropy, dropped fraction, active experts per token, load imbalance.
 */
public final class RunReport {
    static final int HEAT_BUCKETS = 24;

    private RunReport() {}

    /** Writes the report of {@code runDir} (which holds the run log); returns the index.html path. */
    public static Path write(Path runDir, TrainConfig config, TrainResult result) {
        RunLog.Contents log = RunLog.read(runDir);
        Path dir = runDir.resolve("report");
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create " + dir, e);
        }
        Map<String, String> charts = new LinkedHashMap<>(); // file → caption
        List<StepRecord> steps = log.steps();
        if (lossChart(dir.resolve("loss.png"), config.name(), steps, log.validations())) {
            charts.put("loss.png", "Training loss (moving average) and validation loss, nats per token.");
        }
        TreeSet<Integer> layers = new TreeSet<>();
        for (StepRecord s : steps) for (LayerRecord l : s.layers()) layers.add(l.layer());
        for (int layer : layers) {
            String f = "load_layer" + layer + ".png";
            if (loadHeatMap(dir.resolve(f), steps, layer)) {
                charts.put(f, "MoE layer " + layer + ": share of the routed assignments each expert received, per "
                        + "step range (balanced = 100 / experts %).");
            }
        }
        if (!layers.isEmpty()) {
            perLayer(dir.resolve("entropy.png"), "Router entropy", "nats", steps, layers, LayerRecord::entropy);
            charts.put("entropy.png", "Mean entropy of the router's score distribution per token (ln E = uniform).");
            perLayer(dir.resolve("imbalance.png"), "Load imbalance (max / mean tokens per expert)", "max / mean", steps,
                    layers, LayerRecord::imbalance);
            charts.put("imbalance.png", "Most-loaded expert's tokens over the mean (1 = perfectly balanced).");
            perLayer(dir.resolve("dropped.png"), "Dropped assignments", "% of assignments", steps, layers,
                    l -> 100 * l.dropped());
            charts.put("dropped.png", "Token-expert assignments dropped by the capacity limit (0 for dropless).");
            perLayer(dir.resolve("active.png"), "Active experts per token", "experts", steps, layers, LayerRecord::active);
            charts.put("active.png", "Experts computed per token (fixed k for top-k routers; varies for expert "
                    + "choice, top-p, ReMoE).");
        }
        for (int layer : layers) {
            String f = "bias_layer" + layer + ".png";
            if (biasChart(dir.resolve(f), steps, layer)) {
                charts.put(f, "MoE layer " + layer + ": DeepSeek-V3 selection bias per expert (auxiliary-loss-free "
                        + "balancing: overloaded experts are pushed down, underloaded ones up).");
            }
        }
        Path index = dir.resolve("index.html");
        try {
            Files.writeString(index, html(config, result, charts, log), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + index, e);
        }
        return index;
    }

    /** Moving average over a window of {@code w} points (shorter at the start). */
    static double[] smooth(double[] y, int w) {
        double[] out = new double[y.length];
        double sum = 0;
        for (int i = 0; i < y.length; i++) {
            sum += y[i];
            if (i >= w) sum -= y[i - w];
            out[i] = sum / Math.min(i + 1, w);
        }
        return out;
    }

    static boolean lossChart(Path png, String name, List<StepRecord> steps, List<ValRecord> vals) {
        double[] x = new double[steps.size()], y = new double[steps.size()];
        for (int i = 0; i < x.length; i++) {
            x[i] = steps.get(i).step() + 1;
            y[i] = steps.get(i).loss();
        }
        double[] vx = new double[vals.size()], vy = new double[vals.size()];
        for (int i = 0; i < vx.length; i++) {
            vx[i] = vals.get(i).step() + 1;
            vy[i] = vals.get(i).loss();
        }
        int w = Math.max(1, steps.size() / 40);
        return Plots.lines(png, name + ": loss", "step", "cross-entropy (nats / token)",
                List.of(new Plots.Line("train" + (w > 1 ? " (avg of " + w + " steps)" : ""), x, smooth(y, w), false),
                        new Plots.Line("validation", vx, vy, true)), false);
    }

    static boolean loadHeatMap(Path png, List<StepRecord> steps, int layer) {
        List<StepRecord> with = new ArrayList<>();
        for (StepRecord s : steps) for (LayerRecord l : s.layers()) if (l.layer() == layer) { with.add(s); break; }
        if (with.isEmpty()) return false;
        int experts = layerOf(with.get(0), layer).tokensPerExpert().length;
        int buckets = Math.min(HEAT_BUCKETS, with.size());
        double[][] share = new double[buckets][experts];
        List<String> xLabels = new ArrayList<>();
        for (int b = 0; b < buckets; b++) {
            int from = b * with.size() / buckets, to = (b + 1) * with.size() / buckets;
            double total = 0;
            for (int i = from; i < to; i++) {
                int[] load = layerOf(with.get(i), layer).tokensPerExpert();
                for (int e = 0; e < experts; e++) {
                    share[b][e] += load[e];
                    total += load[e];
                }
            }
            for (int e = 0; e < experts; e++) share[b][e] = total > 0 ? 100 * share[b][e] / total : 0;
            xLabels.add(String.valueOf(with.get(to - 1).step() + 1));
        }
        List<String> yLabels = new ArrayList<>();
        for (int e = 0; e < experts; e++) yLabels.add("expert " + e);
        double max = 0;
        for (double[] r : share) for (double v : r) max = Math.max(max, v);
        Plots.heatMap(png, "MoE layer " + layer + ": expert load (% of assignments)", "step (end of range)", "",
                xLabels, yLabels, share, Math.ceil(Math.max(max, 200.0 / experts) / 5) * 5, "0");
        return true;
    }

    /** One line per expert of the layer's selection bias; false (nothing drawn) when the router has none. */
    static boolean biasChart(Path png, List<StepRecord> steps, int layer) {
        List<double[]> xs = new ArrayList<>();
        List<float[]> bs = new ArrayList<>();
        for (StepRecord s : steps) {
            LayerRecord l = layerOf(s, layer);
            if (l != null && l.bias() != null && l.bias().length > 0) {
                xs.add(new double[]{s.step() + 1});
                bs.add(l.bias());
            }
        }
        if (bs.isEmpty()) return false;
        int experts = bs.get(0).length;
        double[] x = new double[xs.size()];
        for (int i = 0; i < x.length; i++) x[i] = xs.get(i)[0];
        List<Plots.Line> lines = new ArrayList<>();
        for (int e = 0; e < experts; e++) {
            double[] y = new double[bs.size()];
            for (int i = 0; i < y.length; i++) y[i] = bs.get(i)[e];
            lines.add(new Plots.Line("expert " + e, x, y, false));
        }
        return Plots.lines(png, "MoE layer " + layer + ": DeepSeek-V3 expert bias", "step", "bias", lines, false);
    }

    private static LayerRecord layerOf(StepRecord s, int layer) {
        for (LayerRecord l : s.layers()) if (l.layer() == layer) return l;
        return null;
    }

    static void perLayer(Path png, String title, String yTitle, List<StepRecord> steps, TreeSet<Integer> layers,
                         java.util.function.ToDoubleFunction<LayerRecord> f) {
        List<Plots.Line> lines = new ArrayList<>();
        int w = Math.max(1, steps.size() / 40);
        for (int layer : layers) {
            List<double[]> pts = new ArrayList<>();
            for (StepRecord s : steps) {
                LayerRecord l = layerOf(s, layer);
                if (l != null) pts.add(new double[]{s.step() + 1, f.applyAsDouble(l)});
            }
            double[] x = new double[pts.size()], y = new double[pts.size()];
            for (int i = 0; i < x.length; i++) {
                x[i] = pts.get(i)[0];
                y[i] = pts.get(i)[1];
            }
            lines.add(new Plots.Line("layer " + layer, x, smooth(y, w), false));
        }
        Plots.lines(png, title + (w > 1 ? " (avg of " + w + " steps)" : ""), "step", yTitle, lines, false);
    }

    static String esc(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
    }

    static final String CSS = "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:960px;color:#222}"
            + "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ddd;padding:4px 10px;text-align:right}"
            + "th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}"
            + "pre{background:#f7f7f7;padding:1em;overflow:auto;font-size:12px}figure{margin:1.5em 0}"
            + "figcaption{color:#555;font-size:14px}img{max-width:100%;border:1px solid #eee}";

    private static String html(TrainConfig cfg, TrainResult r, Map<String, String> charts, RunLog.Contents log) {
        StringBuilder h = new StringBuilder();
        h.append("<!doctype html><html><head><meta charset=\"utf-8\"><title>moe4j run ").append(esc(cfg.name()))
                .append("</title><style>").append(CSS).append("</style></head><body>\n");
        h.append("<h1>moe4j run: ").append(esc(cfg.name())).append("</h1>\n<p>").append(esc(cfg.describe())).append("</p>\n");
        if (r != null) {
            h.append("<h2>Summary</h2>\n").append(SummaryHtml.table(List.of(r)));
        }
        for (Map.Entry<String, String> c : charts.entrySet()) {
            h.append("<figure><img src=\"").append(c.getKey()).append("\" alt=\"").append(esc(c.getValue()))
                    .append("\"><figcaption>").append(esc(c.getValue())).append("</figcaption></figure>\n");
        }
        if (!log.events().isEmpty()) {
            h.append("<h2>Events</h2><ul>");
            for (String e : log.events()) h.append("<li>").append(esc(e)).append("</li>");
            h.append("</ul>\n");
        }
        h.append("<h2>Configuration</h2><pre>").append(esc(cfg.toJson())).append("</pre>\n</body></html>\n");
        return h.toString();
    }

    /** HTML summary tables (shared with the comparison report). */
    public static final class SummaryHtml {
        private SummaryHtml() {}

        public static String table(List<TrainResult> rs) {
            StringBuilder h = new StringBuilder("<table><tr><th>run</th><th>steps</th><th>params</th><th>active params</th>"
                    + "<th>train loss</th><th>val loss</th><th>bits/byte</th><th>tokens/s</th><th>imbalance</th>"
                    + "<th>dropped</th><th>experts/token</th></tr>\n");
            for (TrainResult r : rs) {
                h.append("<tr><td>").append(esc(r.name())).append("</td>");
                for (String v : List.of(String.valueOf(r.steps()), String.format(Locale.ROOT, "%,d", r.params()),
                        String.format(Locale.ROOT, "%,d", r.activeParams()), fmt(r.trainLoss(), "%.4f"),
                        fmt(r.valLoss(), "%.4f"), fmt(r.bitsPerByte(), "%.4f"), fmt(r.tokensPerSec(), "%,.0f"),
                        moe(r, r.meanImbalance(), "%.3f"), moe(r, 100 * r.dropped(), "%.2f%%"),
                        moe(r, r.activeExperts(), "%.2f"))) {
                    h.append("<td>").append(esc(v)).append("</td>");
                }
                h.append("</tr>\n");
            }
            return h.append("</table>\n").toString();
        }

        static String fmt(double v, String f) { return Double.isFinite(v) ? String.format(Locale.ROOT, f, v) : "–"; }

        /** MoE-only columns: "–" for a dense run. */
        static String moe(TrainResult r, double v, String f) { return r.activeExperts() > 0 ? fmt(v, f) : "–"; }
    }
}
