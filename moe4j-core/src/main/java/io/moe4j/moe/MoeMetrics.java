package io.moe4j.moe;

import java.util.Arrays;

/**
 * What one MoE layer did on one batch: a plain data object that training, inference and the server read.
 *
 * @param layer              layer index
 * @param tokens             T
 * @param tokensPerExpert    kept assignments per expert
 * @param assignedPerExpert  assignments per expert before capacity dropping
 * @param imbalanceMaxMean   max / mean of tokensPerExpert (1 = perfectly balanced)
 * @param imbalanceCv        coefficient of variation (population std / mean) of tokensPerExpert
 * @param droppedFraction    dropped assignments / all assignments
 * @param routerEntropy      mean over tokens of the entropy (nats) of the router's score distribution, normalised
 *                           to sum 1 per token
 * @param activeExperts      mean number of experts computed per token
 * @param balanceLoss        balance-loss value (coefficient included)
 * @param zLoss              z-loss value (coefficient included)
 * @param otherLoss          other auxiliary losses (coefficient included)
 * @param expertBias         DeepSeek-V3 selection bias per expert (empty for routers without one)
 * @param paddingTokens      tokens of the batch excluded by a padding mask (0 without one); {@code tokens} and
 *                           every other field count only the real tokens
 */
public record MoeMetrics(int layer, int tokens, int[] tokensPerExpert, int[] assignedPerExpert,
                         double imbalanceMaxMean, double imbalanceCv, double droppedFraction,
                         double routerEntropy, double activeExperts,
                         double balanceLoss, double zLoss, double otherLoss, float[] expertBias,
                         int paddingTokens) {

    /** Computes the metrics of the batch held in {@code r}. */
    public static MoeMetrics of(int layer, Routing r, float[] expertBias) {
        int t = r.tokens(), e = r.numExperts;
        int[] load = r.load.clone();
        int kept = 0, max = 0;
        for (int c : load) {
            kept += c;
            max = Math.max(max, c);
        }
        double mean = kept / (double) e;
        double var = 0;
        for (int c : load) var += (c - mean) * (c - mean);
        var /= e;
        int total = r.totalAssignments();
        double entropy = 0;
        for (int i = 0; i < t; i++) {
            double sum = 0;
            for (int j = 0; j < e; j++) sum += Math.max(0f, r.scores[i * e + j]);
            if (sum <= 0) continue;
            for (int j = 0; j < e; j++) {
                double q = Math.max(0f, r.scores[i * e + j]) / sum;
                if (q > 0) entropy -= q * Math.log(q);
            }
        }
        return new MoeMetrics(layer, t, load, r.assigned.clone(),
                mean > 0 ? max / mean : 0, mean > 0 ? Math.sqrt(var) / mean : 0,
                total > 0 ? (total - kept) / (double) total : 0,
                t > 0 ? entropy / t : 0, t > 0 ? kept / (double) t : 0,
                r.balanceLoss, r.zLoss, r.otherLoss, expertBias == null ? new float[0] : expertBias.clone(),
                r.fullTokens() - t);
    }

    @Override
    public String toString() {
        return String.format(java.util.Locale.ROOT,
                "layer %d: T=%d load=%s imbalance max/mean=%.3f cv=%.3f dropped=%.2f%% entropy=%.3f active=%.2f aux=%.5f z=%.5f",
                layer, tokens, Arrays.toString(tokensPerExpert), imbalanceMaxMean, imbalanceCv, 100 * droppedFraction,
                routerEntropy, activeExperts, balanceLoss + otherLoss, zLoss);
    }
}
