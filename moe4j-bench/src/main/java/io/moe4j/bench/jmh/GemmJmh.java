package io.moe4j.bench.jmh;

import io.moe4j.bench.OpenBlas;
import io.moe4j.bench.RandomData;
import io.moe4j.kernel.Kernels;
import io.moe4j.kernel.gemm.Gemm;
import io.moe4j.parallel.WorkerPool;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.TimeUnit;

/**
 * JMH: moe4j's NT GEMM ({@code C = A·Bᵀ}, the linear-layer forward) and OpenBLAS on the same shapes, for
 * profiling a single kernel with JMH's tooling ({@code -prof gc}, {@code -prof perfasm}). The everyday numbers come
 * from {@code moe4j bench kernels}; this harness is optional. Run after {@code mvn package}:
 * <pre>
 *   java -cp "moe4j-cli/target/moe4j-cli.jar:moe4j-cli/target/lib/*" org.openjdk.jmh.Main GemmJmh -p threads=1
 * </pre>
 * Score is milliseconds per call; GFLOP/s = 2·M·N·K / (score · 1e6). The {@code openblas} benchmark fails with a
 * clear message when OpenBLAS is not installed.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class GemmJmh {

    /** M x K x N. */
    @Param({"64x2048x1024", "1024x1024x1024"})
    public String shape;

    @Param({"1", "2"})
    public int threads;

    private int m, k, n;
    private Arena arena;
    private MemorySegment a, b, c;
    private WorkerPool pool;
    private Gemm gemm;

    @Setup(Level.Trial)
    public void setup() {
        String[] p = shape.split("x");
        m = Integer.parseInt(p[0]);
        k = Integer.parseInt(p[1]);
        n = Integer.parseInt(p[2]);
        arena = Arena.ofShared();
        a = arena.allocate((long) m * k * Float.BYTES, 64);
        b = arena.allocate((long) n * k * Float.BYTES, 64);
        c = arena.allocate((long) m * n * Float.BYTES, 64);
        RandomData.floats(a, 0, (long) m * k, 1);
        RandomData.floats(b, 0, (long) n * k, 2);
        pool = new WorkerPool(threads);
        gemm = Kernels.get().gemm();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        pool.close();
        arena.close();
    }

    @Benchmark
    public MemorySegment moe4j() {
        gemm.nt(pool, m, n, k, a, 0, k, b, 0, k, c, 0, n, false);
        return c;
    }

    @Benchmark
    public MemorySegment openblas() {
        OpenBlas blas = OpenBlas.load().orElseThrow(() -> new IllegalStateException(OpenBlas.NOT_FOUND));
        blas.setThreads(threads);
        blas.sgemm(false, true, m, n, k, 1f, a, 0, k, b, 0, k, 0f, c, 0, n);
        return c;
    }
}
