package io.moe4j.train.model;

import io.moe4j.kernel.row.RowOps;
import io.moe4j.moe.NonFiniteException;
import io.moe4j.nn.F32;

import java.lang.foreign.MemorySegment;

/**
 * Cheap NaN/Inf detection on whole activation or gradient tensors: one SIMD sum of squares (NaN and Inf
 * propagate into it), then, only when it is not finite, a scalar scan to name the first bad element. Costs one
 * read of the tensor, O(N·d) per check against O(N·d²) for the layer that produced it.
 */
final class FiniteCheck {
    private FiniteCheck() {}

    /** Throws {@link NonFiniteException} "NaN in {what}" when floats [off, off+n) of s are not all finite. */
    static void check(RowOps ops, MemorySegment s, long off, int n, String what) {
        if (n == 0) return;
        float ss = ops.dot(n, s, off, s, off);
        if (Float.isFinite(ss)) return;
        for (int i = 0; i < n; i++) {
            float v = F32.get(s, off + i);
            if (!Float.isFinite(v)) {
                throw new NonFiniteException((Float.isNaN(v) ? "NaN" : "Inf") + " in " + what + " (element " + i + " of " + n + ")");
            }
        }
        throw new NonFiniteException("overflow in " + what + ": sum of squares is " + ss + " (values beyond ~1e19)");
    }
}
