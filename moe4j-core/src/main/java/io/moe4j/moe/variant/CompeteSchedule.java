package io.moe4j.moe.variant;

import io.moe4j.moe.InvalidConfigException;
import io.moe4j.nn.CounterRng;

import java.util.BitSet;

/**
 * Which training steps run CompeteSMoE's competition policy, per layer (spec §4.18 "Schedule";
 * {@code CompeteSMoE.set_total_steps}). Drawn once, before training:
 * <pre>
 *   stepWarm  = floor(warmUp · totalSteps)          steps before it: router policy only
 *   flipSteps = totalSteps − stepWarm
 *   for layer l = 0..L−1, for flip step i: a draw u(l, i) &lt; rateFlip asks for a competition at i;
 *     granted if fewer than maxCompeteInIter layers compete at i, otherwise moved to the nearest free step on the
 *     left, else on the right (dropped if none)
 * </pre>
 * so at most {@code maxCompeteInIter} layers pay the all-experts cost in one step. The draws are
 * {@link CounterRng#uniform}(l, i) of one seed: a pure function of (seed, layer, step), identical on every process
 * without a broadcast, and the schedule is rebuilt identically when a run resumes.
 *
 * <p>One difference from the reference: there, a draw landing on a step this layer already holds (filled earlier by
 * a right shift) is granted again and counted twice in the step's load; here it is moved like any blocked draw.
 * Memory: one bit per (layer, flip step).
 */
public final class CompeteSchedule {
    private final long totalSteps;
    private final int layers;
    private final int stepWarm, flipSteps;
    private final BitSet[] competes; // (L) bit i = competition at step stepWarm + i

    /**
     * @param totalSteps       optimizer steps of the run
     * @param numLayers        CompeteSMoE layers, indexed by {@link CompeteConfig#layerIndex()} in [0, numLayers)
     * @param warmUp           fraction of steps with the router policy only (reference 0.05)
     * @param rateFlip         probability that a layer competes in a post-warm-up step (reference 0.05)
     * @param maxCompeteInIter most layers competing in one step (reference 3)
     * @param seed             seed of the draws
     */
    public CompeteSchedule(int totalSteps, int numLayers, double warmUp, double rateFlip, int maxCompeteInIter,
                           long seed) {
        require(totalSteps > 0, "compete.totalSteps must be > 0, got " + totalSteps);
        require(numLayers > 0, "compete.numLayers must be > 0, got " + numLayers);
        require(warmUp >= 0 && warmUp < 1, "compete.warmUp must be in [0, 1), got " + warmUp);
        require(rateFlip >= 0 && rateFlip <= 1, "compete.rateFlip must be in [0, 1], got " + rateFlip);
        require(maxCompeteInIter >= 1, "compete.maxCompeteInIter must be >= 1, got " + maxCompeteInIter);
        this.totalSteps = totalSteps;
        this.layers = numLayers;
        this.stepWarm = (int) (warmUp * totalSteps);
        this.flipSteps = totalSteps - stepWarm;
        require(flipSteps > 0, "compete.warmUp = " + warmUp + " leaves no step after warm-up of " + totalSteps);
        this.competes = new BitSet[numLayers];
        CounterRng rng = new CounterRng(seed);
        int[] load = new int[flipSteps]; // layers competing at each flip step so far
        for (int l = 0; l < numLayers; l++) {
            BitSet mine = new BitSet(flipSteps);
            for (int i = 0; i < flipSteps; i++) {
                if (rng.uniform(l, i) >= rateFlip) continue;
                int at = free(load, mine, i, maxCompeteInIter) ? i : nearestFree(load, mine, i, maxCompeteInIter);
                if (at < 0) continue;
                mine.set(at);
                load[at]++;
            }
            competes[l] = mine;
        }
    }

    private static boolean free(int[] load, BitSet mine, int i, int max) { return load[i] < max && !mine.get(i); }

    /** Nearest free step left of i, else right of i, else −1 (the reference's search order). */
    private static int nearestFree(int[] load, BitSet mine, int i, int max) {
        for (int j = i - 1; j >= 0; j--) if (free(load, mine, j, max)) return j;
        for (int j = i + 1; j < load.length; j++) if (free(load, mine, j, max)) return j;
        return -1;
    }

    /** True if layer {@code layerIndex} runs the competition policy at training step {@code step} (0-based). */
    public boolean competes(int layerIndex, long step) {
        if (layerIndex < 0 || layerIndex >= layers) {
            throw new IllegalArgumentException("layer " + layerIndex + " is outside the schedule's " + layers + " layers");
        }
        if (step < stepWarm || step >= totalSteps) return false;
        return competes[layerIndex].get((int) (step - stepWarm));
    }

    /** Competition steps of one layer. */
    public int competitionSteps(int layerIndex) { return competes[layerIndex].cardinality(); }

    /** First step that may compete. */
    public int warmUpSteps() { return stepWarm; }

    public long totalSteps() { return totalSteps; }

    public int layers() { return layers; }

    private static void require(boolean ok, String message) {
        if (!ok) throw new InvalidConfigException(message);
    }
}
