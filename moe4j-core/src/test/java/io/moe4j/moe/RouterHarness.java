package io.moe4j.moe;

import io.moe4j.moe.router.Router;
import io.moe4j.nn.F32;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Runs one router on hand-written inputs, as the router tests need: rows of x (or exact logits through an identity
 * router weight), optional token ids, a fresh {@link Routing}.
 */
final class RouterHarness {
    private RouterHarness() {}

    /** Sets the router's first parameter (E × d) to the identity, so logits equal the first E inputs of each row. */
    static void identity(Router router, int e, int d) {
        float[] eye = new float[e * d];
        for (int i = 0; i < e; i++) eye[i * d + i] = 1;
        router.params().get(0).set(eye);
    }

    /** Routes the given rows (each of width d) with the router's current weights. */
    static Routing route(Router router, MoeConfig c, Arena arena, float[][] rows, int[] tokenIds, boolean training) {
        int d = c.dModel();
        int t = rows != null ? rows.length : tokenIds.length;
        MemorySegment x = F32.alloc(arena, (long) t * d);
        if (rows != null) for (int i = 0; i < t; i++) F32.copyIn(rows[i], x, (long) i * d);
        Routing r = new Routing(c.numExperts(), router.slots(), c.maxTokens());
        r.reset(t);
        router.forward(x, 0, t, tokenIds, r, training);
        return r;
    }

    /** Routes exact logits z (rows of E values; dModel must be ≥ E) through W_r = I. */
    static Routing routeLogits(Router router, MoeConfig c, Arena arena, float[][] z, boolean training) {
        identity(router, c.numExperts(), c.dModel());
        float[][] rows = new float[z.length][];
        for (int i = 0; i < z.length; i++) rows[i] = java.util.Arrays.copyOf(z[i], c.dModel());
        return route(router, c, arena, rows, null, training);
    }
}
