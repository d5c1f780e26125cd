package io.moe4j.train.report;

import io.moe4j.moe.MoeLayer;
import io.moe4j.moe.Routing;
import io.moe4j.train.data.BatchSource;
import io.moe4j.train.model.CausalLm;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * Do experts specialise by domain? The trained model routes the validation set (every row knows the domain of the
 * document most of its targets come from, {@link BatchSource.ValidationSet#rowDomains}) and each MoE layer's
 * router decisions are counted per (domain, expert): one count per routed slot, so a top-k token adds k counts.
 *
 * <p>The specialisation score of a layer is the mutual information I(domain; expert) in bits over those counts,
 * which equals the mean over domains (weighted by their share of assignments) of KL(p(expert | domain) ‖
 * p(expert)): 0 when every domain uses the experts in the same proportions, at most min(H(domain), log₂ E) when the
 * expert alone tells the domain. Each domain's own KL is reported too. Estimated from a finite sample, the score
 * is biased upwards by about (D−1)(E−1) / (2 · assignments · ln 2) bits; {@link Layer#biasBits} gives that figure
 * so a reader can tell a real score from noise.
 *
 * <p>Counts the router's choice (slots with an expert), before capacity dropping: what the router learned, not
 * what the capacity rule let through. Non-goal: per-token analysis (which tokens go where).
 */
public record DomainUsage(List<String> domains, long[] rows, List<Layer> layers) {

    /** Rows whose domain is not known are counted under this name. */
    public static final String UNKNOWN = "unknown";

    /**
     * One MoE layer.
     *
     * @param layer  block index
     * @param counts (domains, experts) routed slots
     */
    public record Layer(int layer, long[][] counts) {
        public int experts() { return counts.length == 0 ? 0 : counts[0].length; }

        /** (domains, experts) share of each domain's assignments going to each expert (rows sum to 1). */
        public double[][] shares() {
            double[][] s = new double[counts.length][experts()];
            for (int d = 0; d < counts.length; d++) {
                long sum = 0;
                for (long c : counts[d]) sum += c;
                for (int e = 0; e < s[d].length; e++) s[d][e] = sum > 0 ? counts[d][e] / (double) sum : 0;
            }
            return s;
        }

        /** (experts) share of all assignments going to each expert. */
        public double[] overall() {
            double[] p = new double[experts()];
            long total = total();
            for (long[] row : counts) for (int e = 0; e < p.length; e++) p[e] += total > 0 ? row[e] / (double) total : 0;
            return p;
        }

        public long total() {
            long t = 0;
            for (long[] row : counts) for (long c : row) t += c;
            return t;
        }

        /** KL(p(expert | domain d) ‖ p(expert)) in bits; 0 for a domain without assignments. */
        public double klBits(int d) {
            double[] q = overall(), p = shares()[d];
            double kl = 0;
            for (int e = 0; e < p.length; e++) if (p[e] > 0) kl += p[e] * Math.log(p[e] / q[e]);
            return kl / Math.log(2);
        }

        /** I(domain; expert) in bits = Σ_d p(d) · KL(p(e|d) ‖ p(e)). */
        public double mutualInformationBits() {
            long total = total();
            if (total == 0) return 0;
            double mi = 0;
            for (int d = 0; d < counts.length; d++) {
                long sum = 0;
                for (long c : counts[d]) sum += c;
                if (sum > 0) mi += sum / (double) total * klBits(d);
            }
            return mi;
        }

        /** H(domain) in bits over the assignments: the most the expert choice could tell about the domain. */
        public double domainEntropyBits() {
            long total = total();
            double h = 0;
            for (long[] row : counts) {
                long sum = 0;
                for (long c : row) sum += c;
                if (sum > 0) h -= sum / (double) total * Math.log(sum / (double) total);
            }
            return h / Math.log(2);
        }

        /** Expected mutual information of a router that ignores the domain, from the sample size alone (Miller). */
        public double biasBits() {
            int dUsed = 0;
            for (long[] row : counts) {
                long sum = 0;
                for (long c : row) sum += c;
                if (sum > 0) dUsed++;
            }
            long total = total();
            return total == 0 ? 0 : Math.max(0, dUsed - 1) * Math.max(0, experts() - 1) / (2.0 * total * Math.log(2));
        }
    }

    /**
     * Routes {@code val} through {@code model} (evaluation mode) and counts each MoE layer's choices per domain.
     * A dense model gives no layers.
     */
    public static DomainUsage measure(CausalLm model, BatchSource.ValidationSet val, int batch, int seqLen) {
        List<MoeLayer> moe = model.moeLayers();
        Map<String, Integer> index = new TreeMap<>();
        List<String[]> rowDomains = val.rowDomains();
        for (int bi = 0; bi < val.batches().size(); bi++) {
            for (int b = 0; b < batch; b++) index.putIfAbsent(domainOf(rowDomains, bi, b), 0);
        }
        List<String> names = new ArrayList<>(index.keySet());
        for (int i = 0; i < names.size(); i++) index.put(names.get(i), i);
        long[] rows = new long[names.size()];
        long[][][] counts = new long[moe.size()][names.size()][];
        for (int l = 0; l < moe.size(); l++) {
            for (int d = 0; d < names.size(); d++) counts[l][d] = new long[moe.get(l).config().numExperts()];
        }
        int[] rowDomain = new int[batch];
        for (int bi = 0; bi < val.batches().size(); bi++) {
            for (int b = 0; b < batch; b++) {
                rowDomain[b] = index.get(domainOf(rowDomains, bi, b));
                rows[rowDomain[b]]++;
            }
            if (moe.isEmpty()) continue;
            model.evaluate(val.batches().get(bi), batch, seqLen);
            for (int l = 0; l < moe.size(); l++) {
                Routing r = moe.get(l).routing();
                if (r.tokens() != batch * seqLen) {
                    throw new IllegalStateException("MoE layer " + l + " routed " + r.tokens() + " tokens, expected "
                            + batch * seqLen + " (batch × seqLen)");
                }
                // token t of the flat batch is position t % seqLen of row t / seqLen (CausalLm's row-major layout)
                for (int t = 0; t < batch * seqLen; t++) {
                    long[] c = counts[l][rowDomain[t / seqLen]];
                    for (int s = t * r.slots; s < (t + 1) * r.slots; s++) if (r.expert[s] >= 0) c[r.expert[s]]++;
                }
            }
        }
        List<Layer> layers = new ArrayList<>();
        for (int l = 0; l < moe.size(); l++) layers.add(new Layer(moe.get(l).config().layerIndex(), counts[l]));
        return new DomainUsage(List.copyOf(names), rows, List.copyOf(layers));
    }

    private static String domainOf(List<String[]> rowDomains, int batchIndex, int row) {
        if (rowDomains == null || batchIndex >= rowDomains.size()) return UNKNOWN;
        String[] d = rowDomains.get(batchIndex);
        return d == null || row >= d.length || d[row] == null ? UNKNOWN : d[row];
    }

    /** One line per layer: the specialisation score. */
    public String summary() {
        StringBuilder s = new StringBuilder();
        for (Layer l : layers) {
            s.append(String.format(Locale.ROOT, "layer %d: I(domain; expert) = %.3f bits of H(domain) = %.3f (%.0f%%; "
                            + "a domain-blind router would score ~%.3f on this sample)%n", l.layer(), l.mutualInformationBits(),
                    l.domainEntropyBits(), 100 * l.mutualInformationBits() / Math.max(l.domainEntropyBits(), 1e-12), l.biasBits()));
        }
        return s.toString();
    }

    /** Per layer a plain-text domain × expert table of token shares (%), with each domain's KL from the overall mix. */
    public String table() {
        StringBuilder s = new StringBuilder();
        int w = 8;
        for (String d : domains) w = Math.max(w, d.length() + 1);
        for (Layer l : layers) {
            s.append(String.format(Locale.ROOT, "MoE layer %d: share of each domain's routed tokens per expert (%%), "
                    + "I(domain; expert) = %.3f bits%n", l.layer(), l.mutualInformationBits()));
            s.append(String.format(Locale.ROOT, "%-" + w + "s", "domain"));
            for (int e = 0; e < l.experts(); e++) s.append(String.format(Locale.ROOT, "%6s", "e" + e));
            s.append("  KL bits\n");
            double[][] sh = l.shares();
            for (int d = 0; d < domains.size(); d++) {
                s.append(String.format(Locale.ROOT, "%-" + w + "s", domains.get(d)));
                for (double v : sh[d]) s.append(String.format(Locale.ROOT, "%6.1f", 100 * v));
                s.append(String.format(Locale.ROOT, "  %7.3f%n", l.klBits(d)));
            }
            s.append(String.format(Locale.ROOT, "%-" + w + "s", "all"));
            for (double v : l.overall()) s.append(String.format(Locale.ROOT, "%6.1f", 100 * v));
            s.append('\n');
        }
        return s.toString();
    }

    /**
     * Writes one heat map per layer ({@code domain_experts_L.png} in {@code dir}) and returns the HTML section
     * showing them with the scores; empty for a dense model.
     */
    public String writeHtml(Path dir) {
        if (layers.isEmpty()) return "";
        try {
            java.nio.file.Files.createDirectories(dir);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException("cannot create " + dir, e);
        }
        StringBuilder h = new StringBuilder("<h2>Expert usage per domain</h2>\n<p>The trained MoE routes the validation "
                + "set; each row is a domain (rows: ");
        for (int d = 0; d < domains.size(); d++) {
            h.append(d == 0 ? "" : ", ").append(RunReport.esc(domains.get(d))).append(" ").append(rows[d]);
        }
        h.append("), each cell the share of that domain's routed tokens sent to the expert. Specialisation = "
                + "I(domain; expert) in bits (0 = every domain uses the experts alike).</p>\n<pre>")
                .append(RunReport.esc(summary())).append("</pre>\n");
        for (Layer l : layers) {
            String png = "domain_experts_" + l.layer() + ".png";
            double[][] sh = l.shares();
            // heatMap takes values[x][y]: x = experts, y = domains
            double[][] v = new double[l.experts()][domains.size()];
            double max = 0;
            for (int d = 0; d < domains.size(); d++) {
                for (int e = 0; e < l.experts(); e++) {
                    v[e][d] = 100 * sh[d][e];
                    max = Math.max(max, v[e][d]);
                }
            }
            List<String> xs = new ArrayList<>();
            for (int e = 0; e < l.experts(); e++) xs.add("e" + e);
            Plots.heatMap(dir.resolve(png), String.format(Locale.ROOT, "MoE layer %d: expert share per domain (%%), "
                            + "I = %.3f bits", l.layer(), l.mutualInformationBits()), "expert", "", xs, domains, v,
                    Math.max(5, Math.ceil(max / 5) * 5), "0");
            h.append("<figure><img src=\"").append(png).append("\"><figcaption>MoE layer ").append(l.layer())
                    .append(": share of each domain's routed tokens per expert.</figcaption></figure>\n");
        }
        return h.toString();
    }
}
