package io.moe4j.train;

import io.moe4j.moe.MoeMetrics;
import io.moe4j.train.report.LayerRecord;

/**
 * Sums one MoE layer's {@link MoeMetrics} over the micro-batches of a step (with gradient accumulation each
 * forward overwrites the layer's metrics, so the trainer collects them after every micro-batch).
 */
final class LayerStats {
    private final int layer;
    private long[] load;
    private double entropySum, activeSum, droppedSum, assignSum;
    private long tokens;
    private float[] bias = new float[0];

    LayerStats(int layer) { this.layer = layer; }

    void add(MoeMetrics m) {
        if (m == null) return;
        if (load == null) load = new long[m.tokensPerExpert().length];
        long assigned = 0;
        for (int e = 0; e < load.length; e++) {
            load[e] += m.tokensPerExpert()[e];
            assigned += m.assignedPerExpert()[e];
        }
        entropySum += m.routerEntropy() * m.tokens();
        activeSum += m.activeExperts() * m.tokens();
        droppedSum += m.droppedFraction() * assigned;
        assignSum += assigned;
        tokens += m.tokens();
        bias = m.expertBias();
    }

    LayerRecord toRecord() {
        int n = load == null ? 0 : load.length;
        int[] l = new int[n];
        long sum = 0, max = 0;
        for (int e = 0; e < n; e++) {
            l[e] = (int) load[e];
            sum += load[e];
            max = Math.max(max, load[e]);
        }
        double mean = n == 0 ? 0 : sum / (double) n, var = 0;
        for (int e = 0; e < n; e++) var += (load[e] - mean) * (load[e] - mean);
        var = n == 0 ? 0 : var / n;
        return new LayerRecord(layer, l, mean > 0 ? max / mean : 0, mean > 0 ? Math.sqrt(var) / mean : 0,
                assignSum > 0 ? droppedSum / assignSum : 0, tokens > 0 ? entropySum / tokens : 0,
                tokens > 0 ? activeSum / tokens : 0, bias);
    }
}
