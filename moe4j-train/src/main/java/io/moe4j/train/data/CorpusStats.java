package io.moe4j.train.data;

import java.util.List;

/**
 * What went into a token cache: per-domain statistics of each split (sorted by domain) and the source files that
 * were skipped, with the reason (binary, not UTF-8).
 */
public record CorpusStats(List<DomainStats> train, List<DomainStats> validation, List<String> skipped) {

    public CorpusStats {
        train = List.copyOf(train);
        validation = List.copyOf(validation);
        skipped = List.copyOf(skipped);
    }

    /** A plain-text table: one line per split and domain, then the skipped files. */
    public String table() {
        StringBuilder sb = new StringBuilder(String.format("%-10s %-14s %9s %13s %13s %8s%n",
                "split", "domain", "docs", "bytes", "tokens", "B/token"));
        String[] names = {"train", "validation"};
        List<List<DomainStats>> splits = List.of(train, validation);
        for (int i = 0; i < 2; i++) {
            List<DomainStats> rows = new java.util.ArrayList<>(splits.get(i));
            if (rows.size() > 1) rows.add(total(splits.get(i)));
            for (DomainStats d : rows) {
                sb.append(String.format(java.util.Locale.ROOT, "%-10s %-14s %9d %13d %13d %8.3f%n", names[i],
                        d.domain(), d.documents(), d.bytes(), d.tokens(), d.bytesPerToken()));
            }
        }
        for (String s : skipped) sb.append("skipped: ").append(s).append('\n');
        return sb.toString();
    }

    public static DomainStats total(List<DomainStats> split) {
        DomainStats t = new DomainStats("total", 0, 0, 0);
        for (DomainStats d : split) t = t.plus(d.documents(), d.bytes(), d.tokens());
        return t;
    }
}
