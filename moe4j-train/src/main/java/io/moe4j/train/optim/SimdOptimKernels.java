package io.moe4j.train.optim;

import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * Vector API optimizer loops, bit-identical to {@link ScalarOptimKernels}: the same lanewise operations in the same
 * order (no FMA), vector body then the scalar reference for the tail.
 */
final class SimdOptimKernels implements OptimKernels {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    // Sum of squares: 4 floats widened to 4 doubles per vector, two accumulators = the 8 partials of SUM_LANES.
    private static final VectorSpecies<Float> S4 = FloatVector.SPECIES_128;
    private static final VectorSpecies<Double> D4 = DoubleVector.SPECIES_256;
    private static final ByteOrder NATIVE = ByteOrder.nativeOrder();
    private static final int L = S.length();

    @Override
    public void adamw(MemorySegment w, MemorySegment g, MemorySegment m, MemorySegment v, long from, long to, float gs,
                      float keep, float b1, float omb1, float b2, float omb2, float bc2s, float eps, float stepSize) {
        long j = from;
        for (long end = to - L; j <= end; j += L) {
            long o = j * 4;
            FloatVector gj = FloatVector.fromMemorySegment(S, g, o, NATIVE).mul(gs);
            FloatVector pj = FloatVector.fromMemorySegment(S, w, o, NATIVE).mul(keep);
            FloatVector mj = FloatVector.fromMemorySegment(S, m, o, NATIVE).mul(b1).add(gj.mul(omb1));
            FloatVector vj = FloatVector.fromMemorySegment(S, v, o, NATIVE).mul(b2).add(gj.mul(gj).mul(omb2));
            FloatVector denom = vj.lanewise(VectorOperators.SQRT).div(bc2s).add(eps);
            mj.intoMemorySegment(m, o, NATIVE);
            vj.intoMemorySegment(v, o, NATIVE);
            pj.sub(mj.div(denom).mul(stepSize)).intoMemorySegment(w, o, NATIVE);
        }
        ScalarOptimKernels.INSTANCE.adamw(w, g, m, v, j, to, gs, keep, b1, omb1, b2, omb2, bc2s, eps, stepSize);
    }

    @Override
    public double sumSquares(MemorySegment g, long from, long to) {
        DoubleVector s0 = DoubleVector.zero(D4), s1 = DoubleVector.zero(D4);
        long i = from;
        for (long end = to - SUM_LANES; i <= end; i += SUM_LANES) {
            DoubleVector x0 = (DoubleVector) FloatVector.fromMemorySegment(S4, g, i * 4, NATIVE).convertShape(VectorOperators.F2D, D4, 0);
            DoubleVector x1 = (DoubleVector) FloatVector.fromMemorySegment(S4, g, i * 4 + 16, NATIVE).convertShape(VectorOperators.F2D, D4, 0);
            s0 = s0.add(x0.mul(x0));
            s1 = s1.add(x1.mul(x1));
        }
        double[] partial = new double[SUM_LANES];
        for (int l = 0; l < 4; l++) {
            partial[l] = s0.lane(l);
            partial[4 + l] = s1.lane(l);
        }
        // the tail continues the same partials: element i goes to (i - from) % SUM_LANES, and i - from ≡ 0 here
        for (int l = 0; i < to; i++, l++) {
            double x = g.getAtIndex(io.moe4j.nn.F32.LAYOUT, i);
            partial[l] += x * x;
        }
        return ScalarOptimKernels.combine(partial);
    }

    @Override
    public void scale(MemorySegment g, long from, long to, float s) {
        long i = from;
        for (long end = to - L; i <= end; i += L) {
            FloatVector.fromMemorySegment(S, g, i * 4, NATIVE).mul(s).intoMemorySegment(g, i * 4, NATIVE);
        }
        ScalarOptimKernels.INSTANCE.scale(g, i, to, s);
    }

    @Override
    public String name() { return "simd-" + S.vectorBitSize(); }
}
