package io.moe4j.train.checkpoint;

import io.moe4j.nn.Param;
import io.moe4j.train.model.CausalLm;
import io.moe4j.train.optim.AdamW;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The checkpoints of one run directory: {@code ckpt-00000300.moe4j} per saved step, the last {@code keep} kept.
 * Saving captures the model's parameters, AdamW's moments and the router states; restoring checks that the file
 * fits the model (names, shapes, router kinds) before touching anything.
 */
public final class Checkpoints {
    private static final Pattern NAME = Pattern.compile("ckpt-(\\d{8})\\.moe4j");

    private final Path dir;
    private final int keep;

    public Checkpoints(Path dir, int keep) {
        if (keep < 1) throw new IllegalArgumentException("train.keepCheckpoints must be >= 1, got " + keep);
        this.dir = dir;
        this.keep = keep;
    }

    public Path dir() { return dir; }

    public Path pathFor(int step) { return dir.resolve(String.format("ckpt-%08d.moe4j", step)); }

    /** Checkpoint files by ascending step ({@code .tmp} leftovers of an interrupted write are not listed). */
    public List<Path> list() {
        if (!Files.isDirectory(dir)) return List.of();
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> NAME.matcher(p.getFileName().toString()).matches()).sorted().toList();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list checkpoints in " + dir, e);
        }
    }

    /** Step of a checkpoint file name, or −1. */
    public static int stepOf(Path p) {
        Matcher m = NAME.matcher(p.getFileName().toString());
        return m.matches() ? Integer.parseInt(m.group(1)) : -1;
    }

    /** Saves the state under {@link #pathFor}(header.step) and deletes all but the newest {@code keep}. */
    public Path save(CheckpointHeader header, CausalLm model, AdamW opt) {
        List<Param> ps = model.params();
        List<MemorySegment> values = new ArrayList<>(), m = new ArrayList<>(), v = new ArrayList<>();
        for (int i = 0; i < ps.size(); i++) {
            values.add(ps.get(i).data());
            m.add(opt.moment1(i));
            v.add(opt.moment2(i));
        }
        Path file = pathFor(header.step());
        CheckpointFile.write(file, header, values, m, v);
        List<Path> all = list();
        for (int i = 0; i < all.size() - keep; i++) {
            try {
                Files.deleteIfExists(all.get(i));
            } catch (IOException e) {
                throw new UncheckedIOException("cannot delete old checkpoint " + all.get(i), e);
            }
        }
        return file;
    }

    /**
     * The newest checkpoint that reads cleanly, or null. Newer files that fail the checks are skipped, each with one
     * line to {@code warn} naming the file and the problem (a stray {@code .tmp} is never considered).
     */
    public Path latestValid(Consumer<String> warn) {
        List<Path> all = new ArrayList<>(list());
        for (int i = all.size() - 1; i >= 0; i--) {
            try (CheckpointFile.Loaded ignored = CheckpointFile.read(all.get(i))) {
                return all.get(i);
            } catch (CheckpointException e) {
                warn.accept("skipping " + e.getMessage());
            }
        }
        return null;
    }

    /** A header builder's fields for params: the model's parameter table. */
    public static List<CheckpointHeader.ParamEntry> table(CausalLm model) {
        List<CheckpointHeader.ParamEntry> out = new ArrayList<>();
        for (Param p : model.params()) out.add(new CheckpointHeader.ParamEntry(p.name(), p.value().shape(), p.numel()));
        return out;
    }

    /**
     * Loads {@code file} into the model's parameters, the optimiser's moments (when {@code opt} is not null) and the
     * router states, after checking that it fits; returns its header. Nothing is modified when it does not fit.
     */
    public static CheckpointHeader restore(Path file, CausalLm model, AdamW opt) {
        try (CheckpointFile.Loaded ck = CheckpointFile.read(file)) {
            CheckpointHeader h = ck.header();
            List<Param> ps = model.params();
            if (h.params().size() != ps.size()) {
                throw new CheckpointException(file, "has " + h.params().size() + " parameters, the model has " + ps.size());
            }
            for (int i = 0; i < ps.size(); i++) {
                CheckpointHeader.ParamEntry e = h.params().get(i);
                Param p = ps.get(i);
                if (!e.name().equals(p.name()) || !Arrays.equals(e.shape(), p.value().shape())) {
                    throw new CheckpointException(file, "parameter " + i + " is " + e.name() + " " + Arrays.toString(e.shape())
                            + ", the model has " + p.name() + " " + Arrays.toString(p.value().shape()));
                }
            }
            try {
                // checks every layer before writing any: a misfit leaves the model untouched
                RouterStates.apply(h.routers(), model.moeLayers());
            } catch (IllegalArgumentException e) {
                throw new CheckpointException(file, e.getMessage());
            }
            for (int i = 0; i < ps.size(); i++) {
                ck.copyTo("params", i, ps.get(i).data());
                if (opt != null) {
                    ck.copyTo("adam.m", i, opt.moment1(i));
                    ck.copyTo("adam.v", i, opt.moment2(i));
                }
            }
            if (opt != null) opt.setStepCount(h.optimizerStep());
            return h;
        }
    }
}
