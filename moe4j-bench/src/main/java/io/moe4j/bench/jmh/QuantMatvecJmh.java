package io.moe4j.bench.jmh;

import io.moe4j.bench.RandomData;
import io.moe4j.kernel.Kernels;
import io.moe4j.kernel.quant.QuantMatmul;
import io.moe4j.parallel.WorkerPool;
import io.moe4j.tensor.DType;
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
 * JMH: one quantized matvec {@code y = W·x} over a {@code rows × k} weight matrix, for profiling the quantized
 * kernels. Unlike {@code moe4j bench kernels}, the same weights are read every call, so a matrix that fits the
 * last-level cache measures cache, not memory, bandwidth. Run after {@code mvn package}:
 * <pre>
 *   java -cp "moe4j-cli/target/moe4j-cli.jar:moe4j-cli/target/lib/*" org.openjdk.jmh.Main QuantMatvecJmh
 * </pre>
 * Score is microseconds per call; GB/s = weight bytes / (score · 1e3).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class QuantMatvecJmh {

    @Param({"Q8_0", "Q4_0"})
    public DType type;

    /** rows x K. */
    @Param({"4096x4096"})
    public String shape;

    @Param({"1"})
    public int threads;

    private int rows, k;
    private Arena arena;
    private MemorySegment w, x, y;
    private WorkerPool pool;
    private QuantMatmul quant;

    @Setup(Level.Trial)
    public void setup() {
        String[] p = shape.split("x");
        rows = Integer.parseInt(p[0]);
        k = Integer.parseInt(p[1]);
        arena = Arena.ofShared();
        w = arena.allocate(type.byteSize((long) rows * k), 64);
        x = arena.allocate((long) k * Float.BYTES, 64);
        y = arena.allocate((long) rows * Float.BYTES, 64);
        RandomData.weights(type, w, 0, (long) rows * k, 3);
        RandomData.floats(x, 0, k, 4);
        pool = new WorkerPool(threads);
        quant = Kernels.get().quant();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        pool.close();
        arena.close();
    }

    @Benchmark
    public MemorySegment moe4j() {
        quant.matvec(pool, type, w, 0, rows, k, x, 0, y, 0);
        return y;
    }
}
