package io.moe4j.bench;

import io.moe4j.kernel.gemm.Gemm;
import io.moe4j.kernel.gemm.ScalarGemm;
import io.moe4j.kernel.quant.QuantMatmul;
import io.moe4j.parallel.WorkerPool;
import io.moe4j.tensor.DType;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.EnumSet;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/** The harness measures what is available and reports what is not, without crashing. */
class KernelBenchTest {
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.nativeOrder());

    /** A slow but real F16 matvec; every other type is unsupported, like a kernel still being written. */
    static final class F16Only implements QuantMatmul {
        @Override
        public void matmul(WorkerPool pool, DType wType, MemorySegment w, long wOff, int rows, int k,
                           MemorySegment x, long xOff, int ldx, int n, MemorySegment y, long yOff, int ldy, boolean acc) {
            if (wType != DType.F16) throw new UnsupportedOperationException(wType + " not yet");
            pool.parallelFor(rows, (r, worker) -> {
                float s = 0;
                for (int i = 0; i < k; i++) {
                    s += Float.float16ToFloat(w.get(I16, wOff + 2L * ((long) r * k + i))) * x.getAtIndex(F, xOff + i);
                }
                y.setAtIndex(F, yOff + r, s);
            });
        }

        @Override
        public String name() { return "f16-only"; }
    }

    static final class Unsupported implements Gemm {
        @Override
        public void sgemm(WorkerPool pool, boolean transA, boolean transB, int m, int n, int k, MemorySegment a, long aOff,
                          int lda, MemorySegment b, long bOff, int ldb, MemorySegment c, long cOff, int ldc, boolean acc) {
            throw new UnsupportedOperationException("skeleton");
        }

        @Override
        public String name() { return "unsupported"; }
    }

    private static KernelBench.Config quick(KernelBench.Part... parts) {
        return KernelBench.Config.defaults(true).withRepeat(2).withThreads(List.of(1, 2))
                .withParts(EnumSet.of(parts[0], parts));
    }

    @Test
    void quantReportsMeasuredTypesAgainstBandwidthAndMarksTheRestNotAvailable() {
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        KernelBench.Report r = KernelBench.run(quick(KernelBench.Part.QUANT), new ScalarGemm(), new F16Only(),
                new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
        String text = out.toString(StandardCharsets.UTF_8);

        assertThat(r.bandwidth()).extracting(KernelBench.BandwidthResult::threads).containsExactly(1, 2);
        assertThat(r.gemm()).isEmpty();
        assertThat(r.quant()).hasSize(KernelBench.quantCases(true).size() * 2);
        for (KernelBench.QuantResult q : r.quant()) {
            if (q.c().type() == DType.F16) {
                assertThat(q.moe4j()).isNotNull();
                assertThat(q.copies()).isGreaterThanOrEqualTo(1);
            } else {
                assertThat(q.moe4j()).isNull();
                assertThat(q.note()).isEqualTo("not available");
            }
        }
        assertThat(text).contains("Memory read bandwidth", "Quantized matvec", "not available", "best/read");
        assertThat(text.lines().filter(l -> l.trim().startsWith("F16 ")).count()).isEqualTo(2);
        assertThat(err.toString(StandardCharsets.UTF_8)).contains("bench [1/");
        assertThat(r.toJson()).contains("\"type\": \"F16\"", "\"ratio_best\"", "\"moe4j_note\": \"not available\"");
    }

    @Test
    void unsupportedGemmIsReportedNotThrown() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        KernelBench.Report r = KernelBench.run(quick(KernelBench.Part.SGEMM).withThreads(List.of(1)), new Unsupported(),
                new F16Only(), new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(new ByteArrayOutputStream()));
        assertThat(r.gemm()).hasSize(KernelBench.gemmCases(true).size());
        assertThat(r.gemm()).allSatisfy(g -> assertThat(g.moe4jNote()).isEqualTo("not available"));
        assertThat(r.quant()).isEmpty();
        assertThat(r.bandwidth()).isEmpty();
        String text = out.toString(StandardCharsets.UTF_8);
        assertThat(text).contains("sgemm GFLOP/s", "not available");
        if (OpenBlas.load().isEmpty()) assertThat(text).contains(OpenBlas.NOT_FOUND);
        else assertThat(r.gemm()).allSatisfy(g -> assertThat(g.blas()).isNotNull());
    }

    @Test
    void scalarGemmAgreesWithOpenBlasInTheReport() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        KernelBench.Report r = KernelBench.run(quick(KernelBench.Part.SGEMM).withThreads(List.of(2)), new ScalarGemm(),
                new F16Only(), new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(new ByteArrayOutputStream()));
        for (KernelBench.GemmResult g : r.gemm()) {
            assertThat(g.moe4j()).isNotNull();
            if (g.blas() != null) assertThat(g.maxRelDiff()).as(g.c().form()).isLessThan(1e-5);
        }
        assertThat(out.toString(StandardCharsets.UTF_8)).doesNotContain("WARNING");
    }
}
