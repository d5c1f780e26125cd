package io.moe4j.train;

import io.moe4j.train.data.BatchSource;
import io.moe4j.train.report.ComparisonReport;
import io.moe4j.train.report.DomainUsage;
import io.moe4j.train.ui.SummaryTable;

import java.nio.file.Path;
import java.util.List;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * {@code moe4j demo}: the MoE model of a config and its matched dense baseline (same attention, dense FFN width =
 * k·f + shared width, so the same active parameters per token) trained on the same data, compared in one table
 * (validation loss, bits per byte, tokens/s), a comparison report and a generated sample from each.
 */
public final class Demo {
    private Demo() {}

    /** {@code usage}: the trained MoE's expert usage per validation domain. */
    public record Result(List<TrainResult> runs, String table, Path report, String moeSample, String denseSample,
                         DomainUsage usage) {}

    /**
     * Runs both models into {@code outDir/moe} and {@code outDir/dense}. {@code listeners} gives each run its
     * progress display; {@code prompt} null or empty = no sample.
     */
    public static Result run(TrainConfig moeCfg, RunInputs in, Path outDir, Function<TrainConfig, Trainer.Listener> listeners,
                             Consumer<String> warn, String prompt, int sampleTokens) {
        TrainConfig moe = moeCfg.model().dense() ? moeCfg.with("model.dense=false") : moeCfg;
        TrainConfig dense = moe.dense();
        TrainRun.Outcome a = TrainRun.train(moe, in, outDir.resolve("moe"), null, listeners.apply(moe), warn);
        TrainRun.Outcome b = TrainRun.train(dense, in, outDir.resolve("dense"), null, listeners.apply(dense), warn);
        List<TrainResult> runs = List.of(a.result(), b.result());
        String sa = null, sb = null;
        StringBuilder extra = new StringBuilder();
        if (prompt != null && !prompt.isEmpty() && in.tokenizer() != null) {
            sa = Generator.continueText(a.model(), in.tokenizer(), prompt, sampleTokens, 0.8, 40, moe.train().seed());
            sb = Generator.continueText(b.model(), in.tokenizer(), prompt, sampleTokens, 0.8, 40, moe.train().seed());
            extra.append("<h2>Samples</h2><p>Prompt: <code>").append(esc(prompt)).append("</code> (temperature 0.8, top-40)</p>")
                    .append("<h3>MoE</h3><pre>").append(esc(prompt + sa)).append("</pre><h3>Dense</h3><pre>")
                    .append(esc(prompt + sb)).append("</pre>\n");
        }
        DomainUsage usage = domainUsage(a, moe, in);
        extra.insert(0, usage.writeHtml(outDir));
        String intro = "MoE (" + moe.describe() + ") against the dense baseline with the same active parameters per "
                + "token (" + dense.describe() + "), same data, same steps.";
        String verdict = verdict(a.result(), b.result());
        if (!verdict.isBlank()) extra.insert(0, "<p><b>" + esc(verdict.strip()) + "</b></p>\n");
        Path report = ComparisonReport.write(outDir, "MoE vs dense", intro, runs, extra.toString());
        String usageText = usage.layers().isEmpty() ? ""
                : "\nExpert usage per validation domain (do experts specialise?):\n" + usage.table() + usage.summary();
        return new Result(runs, SummaryTable.plain(runs) + verdict + usageText, report, sa, sb, usage);
    }

    /** Routes the validation set through the trained MoE and counts expert choices per domain. */
    static DomainUsage domainUsage(TrainRun.Outcome moe, TrainConfig cfg, RunInputs in) {
        int b = cfg.train().batch(), t = cfg.train().seqLen();
        BatchSource.ValidationSet val = in.data().get().validation(b, t, cfg.train().evalBatches());
        return DomainUsage.measure(moe.model(), val, b, t);
    }

    /**
     * The verdict: which model reached the lower validation loss, by how much (nats/token, relative, bits/byte), at
     * what active and total parameters and speed. A gap under {@link #TIE_NATS} is called a tie. One run says
     * little more: the demo preset's gap ranged from −0.017 to −0.073 over seeds (docs/RESULTS.md).
     */
    static String verdict(TrainResult moe, TrainResult dense) {
        if (!Double.isFinite(moe.valLoss()) || !Double.isFinite(dense.valLoss())) return "";
        double d = moe.valLoss() - dense.valLoss();
        String who = Math.abs(d) < TIE_NATS ? "a tie (gap under " + TIE_NATS + " nats/token)"
                : d < 0 ? "the MoE wins" : "the dense baseline wins";
        return String.format(java.util.Locale.ROOT, "%nVerdict: %s. Validation loss MoE %.4f vs dense %.4f: %+.4f "
                        + "nats/token (%+.2f%%), %+.4f bits/byte, at %,d vs %,d active parameters per token and %d vs %d "
                        + "steps. The MoE has %.2f× the dense model's parameters and runs at %.2f× its tokens/s.%n",
                who, moe.valLoss(), dense.valLoss(), d, 100 * d / dense.valLoss(), moe.bitsPerByte() - dense.bitsPerByte(),
                moe.activeParams(), dense.activeParams(), moe.steps(), dense.steps(),
                moe.params() / (double) Math.max(dense.params(), 1),
                moe.tokensPerSec() / Math.max(dense.tokensPerSec(), 1e-9));
    }

    /** Validation-loss gap (nats/token) below which the demo calls a tie. */
    static final double TIE_NATS = 0.005;

    private static String esc(String s) { return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"); }
}
