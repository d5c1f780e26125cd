package io.moe4j.moe;

import java.util.Arrays;

/**
 * Dropless dispatch by counting sort (spec §3.4, MegaBlocks "bins"): kept assignments are ordered by expert, and
 * within an expert by slot (i.e. token order), so each expert's inputs form one contiguous block of rows
 * {@code [binStart[e], binStart[e+1])} of the permuted activation matrix.
 *
 * <p>Adjoints: the gather of token rows into permuted rows has the scatter-add as its backward, and the weighted
 * combine's backward is a gather times the weight plus a dot product for the weight's gradient
 * (see {@link MoeLayer}). Preallocated; {@link #plan} allocates nothing.
 *
 * <p>Only the first {@code numExperts} expert ids are dispatched. Higher ids (MoE++'s zero, copy and constant
 * experts, {@link SpecialExperts}) get no permuted row ({@code slotRow = −1}); the combine computes them in place.
 */
public final class Dispatch {
    private final int numExperts;
    /** (E+1) first row of each expert's block. */
    public final int[] binStart;
    /** (maxRows) slot index (t·slots + rank) of each permuted row. */
    public final int[] rowSlot;
    /** (maxRows) token of each permuted row. */
    public final int[] rowToken;
    /** (maxTokens·slots) permuted row of each slot, −1 if the slot is not computed. */
    public final int[] slotRow;
    private final int[] cursor;
    private int rows;

    /** @param numExperts dispatched experts: ids 0 … numExperts−1 (the FFN experts) */
    public Dispatch(int numExperts, int slots, int maxTokens, int maxRows) {
        this.numExperts = numExperts;
        this.binStart = new int[numExperts + 1];
        this.rowSlot = new int[maxRows];
        this.rowToken = new int[maxRows];
        this.slotRow = new int[maxTokens * slots];
        this.cursor = new int[numExperts];
    }

    /** Number of permuted rows (kept assignments) of the last plan. */
    public int rows() { return rows; }

    /** Rows of expert e. */
    public int count(int e) { return binStart[e + 1] - binStart[e]; }

    public void plan(Routing r) {
        int slots = r.slots;
        int n = r.tokens() * slots;
        binStart[0] = 0;
        for (int e = 0; e < numExperts; e++) binStart[e + 1] = binStart[e] + r.load[e];
        rows = binStart[numExperts];
        if (rows > rowSlot.length) {
            throw new IllegalStateException("router produced " + rows + " assignments, more than its bound " + rowSlot.length);
        }
        System.arraycopy(binStart, 0, cursor, 0, numExperts);
        Arrays.fill(slotRow, 0, n, -1);
        for (int s = 0; s < n; s++) {
            if (!r.kept[s] || r.expert[s] >= numExperts) continue;
            int row = cursor[r.expert[s]]++;
            rowSlot[row] = s;
            rowToken[row] = s / slots;
            slotRow[s] = row;
        }
    }
}
