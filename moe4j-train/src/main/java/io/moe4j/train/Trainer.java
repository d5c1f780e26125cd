package io.moe4j.train;

import io.moe4j.moe.MoeLayer;
import io.moe4j.nn.F32;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;
import io.moe4j.train.checkpoint.CheckpointHeader;
import io.moe4j.train.checkpoint.Checkpoints;
import io.moe4j.train.checkpoint.RouterStates;
import io.moe4j.train.data.BatchSource;
import io.moe4j.train.model.CausalLm;
import io.moe4j.train.model.LossBreakdown;
import io.moe4j.train.optim.AdamW;
import io.moe4j.train.optim.GradClip;
import io.moe4j.train.optim.LrSchedule;
import io.moe4j.train.report.LayerRecord;
import io.moe4j.train.report.RunLog;
import io.moe4j.train.report.StepRecord;
import io.moe4j.train.report.ValRecord;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The training loop: per step, {@code accum} micro-batches of forward+backward (gradients scaled by 1/accum),
 * a finiteness check, global-norm clipping, AdamW at the scheduled LR, {@link CausalLm#afterStep}; then the
 * step's metrics to the run log, validation every {@code evalEvery} steps and checkpoints every
 * {@code checkpointEvery} steps (and both at the end).
 *
 * <p><b>Reproducibility.</b> Everything that decides the next step — parameters, AdamW moments and step count,
 * data position, router random streams and state, the LR backoff — is in the checkpoint, and every reduction is
 * in a fixed order, so a run resumed from a checkpoint produces bit-identical losses and weights to one that never
 * stopped. Wall-clock fields (tokens/s) are the only exception.
 *
 * <p><b>Non-finite steps.</b> A NaN/Inf loss or gradient (or a {@link io.moe4j.moe.NonFiniteException} from the
 * model) means the step is not applied. The trainer logs which parameter or layer was at fault, rolls back to the
 * last good checkpoint and either skips the offending batch ({@code skip-batch}: the data stream continues after
 * it) or replays the same data at a lower LR ({@code lower-lr}: LR × lrBackoff from then on). After
 * {@code maxFailures} consecutive failures it stops with a {@link TrainingDivergedException} instead of writing
 * garbage. A step-0 checkpoint is written at the start so there is always one to roll back to.
 */
public final class Trainer implements AutoCloseable {

    /** What the user interface hears about. All methods are optional. */
    public interface Listener {
        default void onStart(TrainConfig config, int fromStep, int totalSteps) {}
        default void onStep(StepRecord step, int totalSteps) {}
        default void onValidation(ValRecord val) {}
        default void onEvent(String message) {}
        default void onEnd() {}
    }

    private final TrainConfig cfg;
    private final CausalLm model;
    private final BatchSource data;
    private final Path runDir;
    private final WorkerPool pool;
    private final Listener listener;
    private final Arena arena = Arena.ofShared();
    private final AdamW opt;
    private final LrSchedule schedule;
    private final Checkpoints checkpoints;
    private final List<Param> params;
    private final int[] tokens;                 // (batch · (seqLen + 1)) one micro-batch
    private int step;                           // index of the next step
    private long tokensSeen;
    private double lrScale = 1.0;
    private int failures;                       // non-finite steps since training last got past failedAt
    private int failedAt = -1;                  // the furthest step that failed
    private Path lastCheckpoint;
    private Path resumedFrom;                   // announced once the listener has started
    private BatchSource.ValidationSet valSet;
    private ValRecord lastVal;
    private final List<StepRecord> recent = new ArrayList<>();
    private double runSeconds;                  // wall clock of this process's steps, validation and checkpoints
    private final List<Double> stepRates = new ArrayList<>(); // tokens/s of this process's steps

    public Trainer(TrainConfig cfg, CausalLm model, BatchSource data, Path runDir, WorkerPool pool, Listener listener) {
        this.cfg = cfg;
        this.model = model;
        this.data = data;
        this.runDir = runDir;
        this.pool = pool;
        this.listener = listener == null ? new Listener() {} : listener;
        this.params = model.params();
        this.opt = new AdamW(params, cfg.adamW(), arena, pool);
        this.schedule = cfg.schedule();
        this.checkpoints = new Checkpoints(runDir, cfg.train().keepCheckpoints());
        this.tokens = new int[cfg.train().batch() * (cfg.train().seqLen() + 1)];
    }

    public int step() { return step; }
    public double lrScale() { return lrScale; }
    public AdamW optimizer() { return opt; }
    public Checkpoints checkpoints() { return checkpoints; }

    /** Continues from a checkpoint file (of this run or another run with the same model shape). */
    public void resume(Path checkpoint) {
        CheckpointHeader h = Checkpoints.restore(checkpoint, model, opt);
        applyHeader(h, true);
        lastCheckpoint = checkpoint;
        resumedFrom = checkpoint;
    }

    private void applyHeader(CheckpointHeader h, boolean restoreData) {
        step = h.step();
        tokensSeen = h.tokens();
        lrScale = h.lrScale();
        if (restoreData) data.seek(h.dataPosition());
    }

    /** Trains to {@code train.steps}; returns the summary. */
    public TrainResult run() { return run(Integer.MAX_VALUE); }

    /**
     * Trains until {@code stopAt} steps are done (or {@code train.steps}, whichever is first) and checkpoints there:
     * an interrupted run, to be continued by a new trainer's {@link #resume}.
     */
    public TrainResult run(int stopAt) {
        int total = cfg.train().steps();
        int until = Math.min(stopAt, total);
        listener.onStart(cfg, step, total);
        if (resumedFrom != null) {
            listener.onEvent("resumed from " + resumedFrom + " at step " + step);
            resumedFrom = null;
        }
        try (RunLog log = new RunLog(runDir, step)) {
            if (lastCheckpoint == null || Checkpoints.stepOf(lastCheckpoint) != step
                    || !lastCheckpoint.startsWith(runDir)) {
                lastCheckpoint = saveCheckpoint();
            }
            while (step < until) {
                long t0 = System.nanoTime();
                StepRecord rec = trainStep(log);
                if (rec == null) continue; // rolled back
                double secs = (System.nanoTime() - t0) / 1e9;
                runSeconds += secs;
                stepRates.add(rec.tokensPerSec());
                log.step(rec);
                remember(rec);
                listener.onStep(rec, total);
                int done = step;
                boolean last = done == total;
                int every = cfg.train().evalEvery();
                if (last || (every > 0 && done % every == 0)) {
                    long v0 = System.nanoTime();
                    lastVal = validate(done - 1);
                    runSeconds += (System.nanoTime() - v0) / 1e9;
                    log.validation(lastVal);
                    listener.onValidation(lastVal);
                }
                int ck = cfg.train().checkpointEvery();
                if (last || done == until || (ck > 0 && done % ck == 0)) {
                    long c0 = System.nanoTime();
                    lastCheckpoint = saveCheckpoint();
                    runSeconds += (System.nanoTime() - c0) / 1e9;
                }
            }
        }
        listener.onEnd();
        return result();
    }

    /** One optimiser step, or null when it was not applied (rolled back). */
    private StepRecord trainStep(RunLog log) {
        long t0 = System.nanoTime();
        int accum = cfg.train().accum(), b = cfg.train().batch(), t = cfg.train().seqLen();
        for (Param p : params) p.zeroGrad();
        List<MoeLayer> moe = model.moeLayers();
        List<LayerStats> stats = new ArrayList<>();
        for (MoeLayer l : moe) stats.add(new LayerStats(l.config().layerIndex()));
        double ce = 0, aux = 0;
        String fault = null;
        for (int a = 0; a < accum && fault == null; a++) {
            data.nextTrain(tokens, b, t);
            LossBreakdown lb;
            try {
                lb = model.forwardBackward(tokens, b, t, 1f / accum);
            } catch (ArithmeticException e) { // NonFiniteException and friends
                fault = e.getMessage();
                break;
            }
            if (!Double.isFinite(lb.ce()) || !Double.isFinite(lb.aux())) {
                fault = "loss is " + (Double.isFinite(lb.ce()) ? "finite but the aux loss is " + lb.aux() : lb.ce())
                        + " (micro-batch " + a + ")";
                break;
            }
            ce += lb.ce() / accum;
            aux += lb.aux() / accum;
            for (int i = 0; i < moe.size(); i++) stats.get(i).add(moe.get(i).metrics());
        }
        double norm = fault == null ? GradClip.globalNorm(params, pool) : Double.NaN;
        if (fault == null && !Double.isFinite(norm)) fault = firstNonFinite();
        else if (fault != null) fault += "; " + firstNonFinite();
        if (fault != null) {
            rollback(log, fault);
            return null;
        }
        if (step > failedAt) failures = 0; // replayed steps before the failure do not count as progress
        double clip = cfg.train().clip();
        double lr = schedule.lr(step) * lrScale;
        // clipping (norm measured above) inside the AdamW pass: same bits, one pass less over the gradients
        opt.step(lr, clip > 0 ? GradClip.factor(clip, norm) : 1f);
        model.afterStep(step);
        long stepTokens = (long) accum * b * t;
        tokensSeen += stepTokens;
        double secs = (System.nanoTime() - t0) / 1e9;
        List<LayerRecord> layers = new ArrayList<>();
        for (LayerStats s : stats) layers.add(s.toRecord());
        StepRecord rec = new StepRecord(step, ce, aux, lr, norm, stepTokens / Math.max(secs, 1e-9), tokensSeen, layers);
        step++;
        return rec;
    }

    /**
     * Names where the first non-finite number is: a weight (the model had already diverged) before a gradient,
     * e.g. "non-finite gradient in layers.1.moe.router.weight (first at element 17 of 256: NaN)".
     */
    private String firstNonFinite() {
        for (int pass = 0; pass < 2; pass++) {
            for (Param p : params) {
                MemorySegment s = pass == 0 ? p.data() : p.gradData();
                long n = p.numel();
                for (long i = 0; i < n; i++) {
                    float v = F32.get(s, i);
                    if (!Float.isFinite(v)) {
                        return "non-finite " + (pass == 0 ? "weight" : "gradient") + " in " + p.name()
                                + " (first at element " + i + " of " + n + ": " + v + ")";
                    }
                }
            }
        }
        return "all weights and gradients are finite";
    }

    private void rollback(RunLog log, String fault) {
        failures++;
        failedAt = Math.max(failedAt, step);
        String policy = cfg.train().onNonFinite();
        int max = cfg.train().maxFailures();
        String msg = "step " + step + " not applied: " + fault;
        if (failures >= max) {
            log.event(step, msg + "; stopping after " + failures + " consecutive failures");
            throw new TrainingDivergedException("training stopped at step " + step + " after " + failures
                    + " consecutive non-finite steps (train.maxFailures = " + max + "); last: " + fault
                    + ". Last good checkpoint: " + lastCheckpoint);
        }
        long badPosition = data.position();
        double scale = lrScale; // the backoff so far outlives the rollback (the checkpoint may predate it)
        CheckpointHeader h = Checkpoints.restore(lastCheckpoint, model, opt);
        applyHeader(h, true);
        lrScale = Math.min(scale, h.lrScale());
        if (policy.equals("skip-batch")) {
            data.seek(badPosition);
        } else {
            lrScale *= cfg.train().lrBackoff();
        }
        try {
            log.truncate(step);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException("cannot rewrite run log", e);
        }
        String event = msg + "; rolled back to " + lastCheckpoint.getFileName() + " (step " + step + ")"
                + (policy.equals("skip-batch") ? ", skipping the batch" : String.format(", LR × %.3g", lrScale));
        log.event(step, event);
        listener.onEvent(event);
        recent.removeIf(r -> r.step() >= step);
    }

    /** Mean validation loss and bits per byte over the fixed validation set. */
    public ValRecord validate(int atStep) {
        if (valSet == null) valSet = data.validation(cfg.train().batch(), cfg.train().seqLen(), cfg.train().evalBatches());
        double sum = 0;
        long n = 0;
        for (int[] batch : valSet.batches()) {
            LossBreakdown lb = model.evaluate(batch, cfg.train().batch(), cfg.train().seqLen());
            sum += lb.ce() * lb.tokens();
            n += lb.tokens();
        }
        double loss = n > 0 ? sum / n : Double.NaN;
        double bpb = valSet.targetBytes() > 0 ? loss * valSet.targetTokens() / (valSet.targetBytes() * Math.log(2)) : Double.NaN;
        return new ValRecord(atStep, loss, bpb);
    }

    private Path saveCheckpoint() {
        CheckpointHeader h = new CheckpointHeader(cfg.toJson(), model.config().vocabSize(), step, data.position(),
                opt.stepCount(), lrScale, tokensSeen, RouterStates.capture(model.moeLayers()), Checkpoints.table(model));
        return checkpoints.save(h, model, opt);
    }

    private void remember(StepRecord r) {
        recent.add(r);
        int keep = Math.max(1, cfg.train().steps() / 10);
        while (recent.size() > keep) recent.removeFirst();
    }

    private TrainResult result() {
        double loss = recent.stream().mapToDouble(StepRecord::loss).average().orElse(Double.NaN);
        double imb = recent.stream().mapToDouble(StepRecord::meanImbalance).average().orElse(1);
        double dropped = recent.stream().flatMap(r -> r.layers().stream()).mapToDouble(LayerRecord::dropped).average().orElse(0);
        double active = recent.stream().flatMap(r -> r.layers().stream()).mapToDouble(LayerRecord::active).average().orElse(0);
        // active parameters per token: routed experts count by the measured experts per token (variable for
        // expert choice, top-p, ReMoE; below k when capacity drops tokens), else by k
        long all = 0;
        double act = 0;
        int e = cfg.model().moe().numExperts();
        double perToken = active > 0 ? active : cfg.model().moe().topK();
        for (Param p : params) {
            all += p.numel();
            act += p.name().contains(".moe.experts.") ? p.numel() * perToken / e : p.numel();
        }
        return new TrainResult(cfg.name(), step, loss, lastVal == null ? Double.NaN : lastVal.loss(),
                lastVal == null ? Double.NaN : lastVal.bpb(), medianRate(), runSeconds,
                all, Math.round(act), imb, dropped, active, runDir, lastCheckpoint);
    }

    /**
     * Median tokens/s over this process's steps: the first steps run in the JIT's interpreter and C1 code (measured
     * 40 tok/s on step 1 against 7k by step 20 for the tiny preset), so a mean over the run would mostly measure
     * warm-up; the median is the steady state once at least half the steps are warm.
     */
    private double medianRate() {
        if (stepRates.isEmpty()) return 0;
        double[] r = stepRates.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        return r.length % 2 == 1 ? r[r.length / 2] : 0.5 * (r[r.length / 2 - 1] + r[r.length / 2]);
    }

    @Override
    public void close() { arena.close(); }
}
