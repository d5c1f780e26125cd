package io.moe4j.bench;

import io.moe4j.parallel.WorkerPool;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * The machine's memory read bandwidth as Java sees it: a vectorised sum over a large off-heap buffer (default
 * 1 GiB, far larger than any cache), each thread summing a disjoint contiguous part. This is the ceiling for a
 * memory-bound kernel such as a quantized matvec, so those kernels are reported as a fraction of it.
 *
 * <p>The sum uses four independent vector accumulators so the adds are never the bottleneck; what is measured is
 * how fast the cores can stream bytes in. Non-goals: no write or copy bandwidth, no latency, no NUMA placement.
 *
 * <p>Needs {@code --add-modules=jdk.incubator.vector} (the {@code ./moe4j} launcher passes it).
 */
public final class MemoryBandwidth implements AutoCloseable {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.nativeOrder());
    private static final long ALIGN = 4096;

    private final Arena arena = Arena.ofShared();
    private final MemorySegment buffer;
    private final float[] partial = new float[64];
    private volatile float sink;

    /** Allocates and touches {@code bytes} (rounded down to a multiple of 4 KiB). */
    public MemoryBandwidth(long bytes) {
        long n = bytes / ALIGN * ALIGN;
        if (n <= 0) throw new IllegalArgumentException("buffer must be at least 4 KiB, got " + bytes);
        buffer = arena.allocate(n, ALIGN);
        // Write every page so the test reads real memory, not the kernel's shared zero page.
        buffer.fill((byte) 0x3c);
    }

    public long bytes() { return buffer.byteSize(); }

    /** One pass: sums the whole buffer with {@code pool.threads()} threads, each a disjoint contiguous part. */
    public float sumOnce(WorkerPool pool) {
        int t = Math.min(pool.threads(), partial.length);
        long chunk = buffer.byteSize() / t / ALIGN * ALIGN;
        pool.parallelFor(t, (task, worker) -> {
            long from = task * chunk;
            long to = task == t - 1 ? buffer.byteSize() : from + chunk;
            partial[task] = sum(buffer, from, to);
        });
        float s = 0;
        for (int i = 0; i < t; i++) s += partial[i];
        sink = s;
        return s;
    }

    /** Measures read bandwidth in bytes per second (as {@link Stats} over whole passes). */
    public Stats measure(WorkerPool pool, Stats.Plan plan) {
        return Stats.measure(() -> sumOnce(pool), plan);
    }

    /** Sum of the floats in bytes {@code [from, to)} of {@code seg} ({@code to - from} a multiple of 4). */
    static float sum(MemorySegment seg, long from, long to) {
        long step = S.vectorByteSize();
        FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, a3 = a0;
        long i = from;
        long end4 = from + (to - from) / (4 * step) * (4 * step);
        ByteOrder bo = ByteOrder.nativeOrder();
        for (; i < end4; i += 4 * step) {
            a0 = a0.add(FloatVector.fromMemorySegment(S, seg, i, bo));
            a1 = a1.add(FloatVector.fromMemorySegment(S, seg, i + step, bo));
            a2 = a2.add(FloatVector.fromMemorySegment(S, seg, i + 2 * step, bo));
            a3 = a3.add(FloatVector.fromMemorySegment(S, seg, i + 3 * step, bo));
        }
        for (; i + step <= to; i += step) a0 = a0.add(FloatVector.fromMemorySegment(S, seg, i, bo));
        float s = a0.add(a1).add(a2.add(a3)).reduceLanes(VectorOperators.ADD);
        for (; i < to; i += Float.BYTES) s += seg.get(F, i);
        return s;
    }

    @Override
    public void close() { arena.close(); }
}
