package io.moe4j.nn;

import io.moe4j.tensor.DType;
import io.moe4j.tensor.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;

/**
 * A trainable F32 parameter: its value and its gradient, both off-heap and contiguous, with a stable name
 * (used by checkpoints, optimizers and error messages such as "NaN in layers.3.moe.router.weight").
 */
public final class Param {
    private final String name;
    private final Tensor value;
    private final Tensor grad;

    public Param(Arena arena, String name, long... shape) {
        this.name = name;
        this.value = Tensor.allocate(arena, DType.F32, shape);
        this.grad = Tensor.allocate(arena, DType.F32, shape);
    }

    public String name() { return name; }
    public Tensor value() { return value; }
    public Tensor grad() { return grad; }
    /** The value's memory (contiguous F32). */
    public MemorySegment data() { return value.segment(); }
    /** The gradient's memory (contiguous F32). */
    public MemorySegment gradData() { return grad.segment(); }
    public long numel() { return value.numel(); }

    public void zeroGrad() { grad.segment().fill((byte) 0); }

    /** value ~ N(0, std²), from a seeded generator (bit-reproducible). */
    public Param initNormal(SplittableRandom rng, double std) {
        MemorySegment s = value.segment();
        long n = value.numel();
        for (long i = 0; i < n; i++) F32.set(s, i, (float) (std * gaussian(rng)));
        return this;
    }

    /** value = v everywhere. */
    public Param fill(float v) {
        MemorySegment s = value.segment();
        long n = value.numel();
        for (long i = 0; i < n; i++) F32.set(s, i, v);
        return this;
    }

    /** Copies {@code values} (row-major, length = numel) into the parameter. */
    public Param set(float[] values) {
        if (values.length != value.numel()) {
            throw new IllegalArgumentException(name + ": expected " + value.numel() + " values, got " + values.length);
        }
        MemorySegment.copy(values, 0, value.segment(), F32.LAYOUT, 0, values.length);
        return this;
    }

    public float[] toArray() { return value.toFloatArray(); }
    public float[] gradToArray() { return grad.toFloatArray(); }

    /** Standard normal by Box–Muller on a SplittableRandom (java.util.Random's nextGaussian is not splittable). */
    public static double gaussian(SplittableRandom rng) {
        double u1 = rng.nextDouble();
        double u2 = rng.nextDouble();
        if (u1 < 1e-300) u1 = 1e-300;
        return Math.sqrt(-2.0 * Math.log(u1)) * Math.cos(2.0 * Math.PI * u2);
    }

    @Override
    public String toString() { return name + " " + value; }
}
