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

    public static DomainStats total(List<DomainStats> split) {
        DomainStats t = new DomainStats("total", 0, 0, 0);
        for (DomainStats d : split) t = t.plus(d.documents(), d.bytes(), d.tokens());
        return t;
    }
}
