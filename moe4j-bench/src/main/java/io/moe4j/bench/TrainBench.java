package io.moe4j.bench;

import io.moe4j.kernel.Kernels;
import io.moe4j.moe.MoeConfig;
import io.moe4j.moe.loss.BalanceLoss;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;
import io.moe4j.train.model.ModelConfig;
import io.moe4j.train.model.ModelProfile;
import io.moe4j.train.model.MoeTransformer;
import io.moe4j.train.optim.AdamW;
import io.moe4j.train.optim.AdamWConfig;
import io.moe4j.train.optim.GradClip;

import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * {@code moe4j bench train}: training throughput of the whole MoE transformer — one optimizer step = zero grads,
 * forward, cross-entropy + balance loss, backward, global-norm clipping, AdamW — moe4j next to the same model and
 * batch in PyTorch (resources/torch/train_bench.py: float32, the usual loop over experts) in the same run, with the
 * same thread count. PyTorch runs with Debian's python3, {@code OMP_WAIT_POLICY=PASSIVE} and
 * {@code OPENBLAS_NUM_THREADS} = threads (shared/PEERS.md). Reports tokens/s best (median) and the ratio.
 */
public final class TrainBench {
    /**
     * Untimed warm-up: at least this many steps and this many seconds. The first step runs mostly in the
     * interpreter (13–25 s on a loaded 2-core machine) and step times keep falling for ~60 tiny steps while C2
     * compiles the kernels, so a 3-second warm-up measured the JIT, not the model (tiny shape: 0.9k tokens/s
     * timed vs ~4k once warm, same run). PyTorch gets 2 warm-up steps (no JIT).
     */
    private static final int WARMUP_STEPS = 20;
    private static final double WARMUP_SECONDS = 20;

    private TrainBench() {}

    /** One benchmarked model and batch. */
    public record Shape(String name, int vocab, int d, int layers, int heads, int kv, int experts, int k, int f,
                        int batch, int seq) {
        ModelConfig config() {
            MoeConfig moe = MoeConfig.builder().dModel(d).numExperts(experts).topK(k).expertHidden(f)
                    .balanceLoss(BalanceLoss.HF).balanceCoef(0.01).maxTokens(batch * seq).build();
            return new ModelConfig(vocab, d, layers, heads, kv, d / heads, seq, 10000.0, 1e-5, false, false, 0, 4 * d,
                    moe, 0.02, 1L);
        }
    }

    public static List<Shape> defaultShapes(boolean quick) {
        if (quick) return List.of(new Shape("tiny MoE (d128 L2 E8k2 f256, B4xT64)", 1024, 128, 2, 4, 2, 8, 2, 256, 4, 64));
        return List.of(new Shape("small MoE (d256 L4 E8k2 f512 V4096, B8xT128)", 4096, 256, 4, 8, 4, 8, 2, 512, 8, 128),
                new Shape("wider MoE (d512 L4 E8k2 f1024 V8192, B8xT128)", 8192, 512, 4, 8, 4, 8, 2, 1024, 8, 128));
    }

    public static void run(List<Shape> shapes, int threads, int repeat, boolean withTorch, PrintStream out, PrintStream err) {
        out.printf(Locale.ROOT, "moe4j bench train — %s, %d threads, kernels %s%n", Machine.detect().cpu(), threads, Kernels.get());
        out.println("one step = zero grads + forward + backward + clip + AdamW; tokens/s best (median) of " + repeat + " steps after warm-up");
        Table table = new Table("model", "tokens/step", "moe4j tok/s", "PyTorch tok/s", "moe4j/PyTorch");
        List<String> notes = new ArrayList<>();
        try (WorkerPool pool = new WorkerPool(threads); Arena arena = Arena.ofShared()) {
            for (Shape s : shapes) {
                err.printf("  %s: moe4j...%n", s.name());
                int tokensPerStep = s.batch() * s.seq();
                try (MoeTransformer m = MoeTransformer.create(s.config(), Kernels.get(), pool, s.batch())) {
                    AdamW opt = new AdamW(m.params(), AdamWConfig.defaults(), arena, pool);
                    int[] tokens = new int[s.batch() * (s.seq() + 1)];
                    SplittableRandom r = new SplittableRandom(3);
                    for (int i = 0; i < tokens.length; i++) tokens[i] = r.nextInt(s.vocab());
                    long[] optimizer = {Long.MAX_VALUE}; // fastest norm + clip + AdamW of any step, nanos
                    Runnable step = () -> {
                        for (Param p : m.params()) p.zeroGrad();
                        m.forwardBackward(tokens, s.batch(), s.seq(), 1f);
                        long t0 = System.nanoTime();
                        // as the Trainer does: the norm once, clipping inside the AdamW pass
                        double norm = GradClip.globalNorm(m.params(), pool);
                        opt.step(1e-3, GradClip.factor(1.0, norm));
                        optimizer[0] = Math.min(optimizer[0], System.nanoTime() - t0);
                        m.afterStep(0);
                    };
                    for (int i = 0; i < WARMUP_STEPS; i++) step.run();
                    Stats st = Stats.measure(step, new Stats.Plan(WARMUP_SECONDS, repeat, 300));
                    long ours = 0;
                    for (Param p : m.params()) ours += p.numel();
                    m.profile().reset();
                    for (int i = 0; i < 2; i++) step.run();
                    notes.add(s.name() + ": moe4j time per phase over 2 steps: " + m.profile().report());
                    // fastest of all steps (warm-up included) against the fastest timed step: minima resist load
                    notes.add(String.format(Locale.ROOT, "%s: optimizer (gradient norm + AdamW with clipping, %s) best %.1f ms "
                                    + "per step = %.1f %% of the best step", s.name(), opt.kernels().name(),
                            optimizer[0] / 1e6, 100.0 * optimizer[0] / st.minNanos()));
                    double[] torch = withTorch ? torch(s, threads, repeat, err, notes) : null;
                    if (torch != null) {
                        long theirs = (long) torch[2];
                        notes.add(s.name() + ": parameters moe4j " + ours + ", PyTorch " + theirs
                                + (ours == theirs ? " (same model)" : " — MISMATCH: the two sides do not train the same model"));
                    }
                    String tt = "-", ratio = "-";
                    if (torch != null) {
                        tt = fmt(tokensPerStep / torch[0]) + " (" + fmt(tokensPerStep / torch[1]) + ")";
                        ratio = String.format(Locale.ROOT, "%.2f", st.best(tokensPerStep) / (tokensPerStep / torch[0]));
                    }
                    table.add(s.name(), "" + tokensPerStep, fmt(st.best(tokensPerStep)) + " (" + fmt(st.median(tokensPerStep)) + ")", tt, ratio);
                }
            }
        }
        table.print(out);
        for (String n : notes) out.println("  " + n);
    }

    private static String fmt(double v) {
        return v >= 1000 ? String.format(Locale.ROOT, "%.2fk", v / 1000) : String.format(Locale.ROOT, "%.0f", v);
    }

    /** {best, median} seconds per step and the parameter count of the PyTorch peer, or null when it cannot run. */
    private static double[] torch(Shape s, int threads, int repeat, PrintStream err, List<String> notes) {
        err.printf("  %s: PyTorch...%n", s.name());
        String json = TorchBench.run("train_bench.py", List.of("" + s.vocab(), "" + s.d(), "" + s.layers(),
                "" + s.heads(), "" + s.kv(), "" + s.d() / s.heads(), "" + s.experts(), "" + s.k(), "" + s.f(),
                "" + s.batch(), "" + s.seq(), "" + threads, "2", "" + repeat), threads, 900, notes);
        if (json == null) return null;
        double[] v = TorchBench.times(json, "step_seconds");
        double med = TorchBench.median(json, "step_seconds");
        java.util.regex.Matcher pm = java.util.regex.Pattern.compile("\"params\":\\s*(\\d+)").matcher(json);
        return new double[]{v[0], med, pm.find() ? Double.parseDouble(pm.group(1)) : -1};
    }
}
