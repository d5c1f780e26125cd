package io.moe4j.moe;

/** Order in which tokens claim capacity slots (spec §3.5, §4.10). */
public enum PriorityOrder {
    /** Natural position order (causal-safe). */
    POSITION,
    /** Batch Prioritized Routing: tokens with the highest top-1 gate first (not causal). */
    BATCH_PRIORITY
}
