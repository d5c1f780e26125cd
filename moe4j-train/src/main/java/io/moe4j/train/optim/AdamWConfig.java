package io.moe4j.train.optim;

import java.util.List;
import java.util.regex.Pattern;

/**
 * Hyper-parameters of {@link AdamW}.
 *
 * @param beta1         first-moment decay
 * @param beta2         second-moment decay
 * @param eps           added to √v̂
 * @param weightDecay   decoupled weight decay λ (p ← p·(1 − lr·λ)), applied only to matrices that are not norms
 * @param lrMultipliers parameter groups: the first rule whose pattern matches a parameter's name sets its LR
 *                      multiplier (e.g. Hunyuan-style expert LR, spec §4.22); unmatched parameters get 1
 */
public record AdamWConfig(double beta1, double beta2, double eps, double weightDecay, List<LrRule> lrMultipliers) {

    public AdamWConfig {
        if (!(beta1 >= 0 && beta1 < 1)) throw new IllegalArgumentException("train.beta1 must be in [0, 1), got " + beta1);
        if (!(beta2 >= 0 && beta2 < 1)) throw new IllegalArgumentException("train.beta2 must be in [0, 1), got " + beta2);
        if (!(eps > 0) || !Double.isFinite(eps)) throw new IllegalArgumentException("train.eps must be > 0, got " + eps);
        if (!(weightDecay >= 0) || !Double.isFinite(weightDecay)) {
            throw new IllegalArgumentException("train.weightDecay must be >= 0, got " + weightDecay);
        }
        lrMultipliers = lrMultipliers == null ? List.of() : List.copyOf(lrMultipliers);
    }

    public static AdamWConfig defaults() { return new AdamWConfig(0.9, 0.95, 1e-8, 0.1, List.of()); }

    /** LR multiplier of the parameter called {@code name}. */
    public double lrMultiplier(String name) {
        for (LrRule r : lrMultipliers) if (r.matches(name)) return r.multiplier();
        return 1.0;
    }

    /**
     * One parameter group: names matching {@code pattern} train at {@code multiplier} × the scheduled LR.
     * The pattern is a glob where {@code *} matches any characters ("layers.*.moe.experts.*"); a pattern without
     * {@code *} matches as a name prefix ("layers.0.").
     */
    public record LrRule(String pattern, double multiplier) {
        public LrRule {
            if (pattern == null || pattern.isEmpty()) throw new IllegalArgumentException("train.lrMultipliers: empty pattern");
            if (!(multiplier >= 0) || !Double.isFinite(multiplier)) {
                throw new IllegalArgumentException("train.lrMultipliers['" + pattern + "'] must be >= 0, got " + multiplier);
            }
        }

        public boolean matches(String name) {
            if (pattern.indexOf('*') < 0) return name.startsWith(pattern);
            StringBuilder re = new StringBuilder();
            for (String part : pattern.split("\\*", -1)) {
                if (!re.isEmpty()) re.append(".*");
                re.append(Pattern.quote(part));
            }
            return name.matches(re.toString());
        }
    }
}
