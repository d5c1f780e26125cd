package io.moe4j.train.optim;

import io.moe4j.nn.F32;

import java.lang.foreign.MemorySegment;

/** The reference optimizer loops: one element at a time, in the order {@link OptimKernels} defines. */
final class ScalarOptimKernels implements OptimKernels {
    static final ScalarOptimKernels INSTANCE = new ScalarOptimKernels();

    private ScalarOptimKernels() {}

    @Override
    public void adamw(MemorySegment w, MemorySegment g, MemorySegment m, MemorySegment v, long from, long to, float gs,
                      float keep, float b1, float omb1, float b2, float omb2, float bc2s, float eps, float stepSize) {
        for (long j = from; j < to; j++) {
            float gj = F32.get(g, j) * gs;
            float pj = F32.get(w, j) * keep;
            float mj = F32.get(m, j) * b1 + gj * omb1;
            float vj = F32.get(v, j) * b2 + gj * gj * omb2;
            float denom = (float) Math.sqrt(vj) / bc2s + eps;
            F32.set(m, j, mj);
            F32.set(v, j, vj);
            F32.set(w, j, pj - stepSize * (mj / denom));
        }
    }

    @Override
    public double sumSquares(MemorySegment g, long from, long to) {
        double[] partial = new double[SUM_LANES];
        for (long i = from; i < to; i++) {
            double x = F32.get(g, i);
            partial[(int) ((i - from) % SUM_LANES)] += x * x;
        }
        return combine(partial);
    }

    /** ((p0 + p1) + p2) + … : the fixed order both implementations end with. */
    static double combine(double[] partial) {
        double s = 0;
        for (double p : partial) s += p;
        return s;
    }

    @Override
    public void scale(MemorySegment g, long from, long to, float s) {
        for (long i = from; i < to; i++) F32.set(g, i, F32.get(g, i) * s);
    }

    @Override
    public String name() { return "scalar"; }
}
