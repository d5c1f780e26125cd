package io.moe4j.gguf;

import io.moe4j.parallel.WorkerPool;
import io.moe4j.tensor.quant.Quant;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * Re-encodes a GGUF file's weights in another tensor type ({@code moe4j quantize}), llama.cpp's rules where they
 * matter for loading the result anywhere:
 * <ul>
 *   <li>only weight matrices are converted: tensors of two or more dimensions whose name ends in {@code .weight};
 *       norms, biases and 1-D tensors stay as they are, and so does the router {@code ffn_gate_inp} (llama.cpp keeps
 *       it F32: a few KB, and routing decisions are sensitive to it);</li>
 *   <li>per-tensor overrides ({@code "ffn_.*_exps=Q4_K"}) are regular expressions found in the name; the first match
 *       wins, and an override may also name a tensor the default leaves alone (except 1-D tensors);</li>
 *   <li>a row length that is not a multiple of the target's block falls back to Q8_0 (or F16 when even 32 does not
 *       divide it) — llama.cpp falls back the same way, to Q5_0/Q8_0 which moe4j does not all have;</li>
 *   <li>re-quantizing an already quantized tensor loses precision twice and needs {@code allowRequantize};</li>
 *   <li>{@code general.file_type} is rewritten to the llama.cpp ftype of the main type and
 *       {@code general.quantization_version} set to 2.</li>
 * </ul>
 * The {@code Q4_K_M} mix follows llama.cpp's: Q4_K everywhere, Q6_K for the output matrix and for {@code attn_v} and
 * {@code ffn_down(_exps)} in the first and last eighth of the layers and every third layer between.
 *
 * <p>Output tensors are produced one at a time while the file is written ({@link GgufWriter.TensorProducer}), so
 * memory stays at one tensor however large the model; rows are converted in parallel; the write is atomic.
 */
public final class GgufQuantizer {

    /** A requested output type: one GGML type or a named llama.cpp mix. */
    public enum Target {
        F32(GgmlType.F32, 0), F16(GgmlType.F16, 1), BF16(GgmlType.BF16, 32), Q8_0(GgmlType.Q8_0, 7),
        Q4_0(GgmlType.Q4_0, 2), Q4_K(GgmlType.Q4_K, 15), Q6_K(GgmlType.Q6_K, 18), Q4_K_M(GgmlType.Q4_K, 15);

        final GgmlType base;
        /** llama.cpp's llama_ftype value for general.file_type (Q4_K alone is written as Q4_K_M like llama.cpp's "Q4_K"). */
        final int ftype;

        Target(GgmlType base, int ftype) {
            this.base = base;
            this.ftype = ftype;
        }

        public static Target parse(String s) {
            String u = s.trim().toUpperCase(Locale.ROOT).replace('-', '_');
            for (Target t : values()) if (t.name().equals(u)) return t;
            throw new IllegalArgumentException("unknown quantization type '" + s + "' (expected one of "
                    + java.util.Arrays.toString(values()) + ")");
        }
    }

    /** One override rule: tensors whose name contains a match of {@code pattern} become {@code type}. */
    public record Override(Pattern pattern, GgmlType type) {
        /** Parses {@code "REGEX=TYPE"}. */
        public static Override parse(String spec) {
            int eq = spec.lastIndexOf('=');
            if (eq <= 0 || eq == spec.length() - 1) {
                throw new IllegalArgumentException("override '" + spec + "' is not of the form PATTERN=TYPE (e.g. ffn_.*_exps=Q4_K)");
            }
            Target t = Target.parse(spec.substring(eq + 1));
            if (t == Target.Q4_K_M) throw new IllegalArgumentException("override '" + spec + "': Q4_K_M is a mix, name a single type");
            try {
                return new Override(Pattern.compile(spec.substring(0, eq)), t.base);
            } catch (PatternSyntaxException e) {
                throw new IllegalArgumentException("override '" + spec + "': bad regular expression: " + e.getDescription());
            }
        }
    }

    /** What happens to one tensor. */
    public record Step(GgufTensorInfo source, GgmlType target, String why) {
        public boolean converts() { return source.type() != target; }
    }

    private final Target target;
    private final List<Override> overrides;
    private final boolean allowRequantize;

    public GgufQuantizer(Target target, List<Override> overrides, boolean allowRequantize) {
        this.target = target;
        this.overrides = List.copyOf(overrides);
        this.allowRequantize = allowRequantize;
    }

    /**
     * The plan for every tensor of {@code in}, in file order.
     *
     * @throws IllegalArgumentException if a tensor would be re-quantized without permission, or its source type
     *                                  cannot be decoded
     */
    public List<Step> plan(GgufFile in) {
        int layers = (int) in.getLong(in.architecture() + ".block_count", 0);
        List<Step> steps = new ArrayList<>();
        for (GgufTensorInfo t : in.tensors()) {
            GgmlType want = null;
            String why = null;
            if (t.nDims() >= 2) {
                for (Override o : overrides) {
                    if (o.pattern().matcher(t.name()).find()) {
                        want = o.type();
                        why = "override /" + o.pattern() + "/";
                        break;
                    }
                }
                if (want == null && isWeightMatrix(t.name())) {
                    want = defaultType(t.name(), layers);
                    why = target.name();
                }
            }
            if (want == null) {
                steps.add(new Step(t, t.type(), "kept"));
                continue;
            }
            long rowLen = t.ne()[0];
            if (rowLen % want.blockSize() != 0) {
                GgmlType fb = rowLen % 32 == 0 ? GgmlType.Q8_0 : GgmlType.F16;
                why = "rows of " + rowLen + " are not a multiple of " + want + "'s block " + want.blockSize() + ": " + fb;
                want = fb;
            }
            if (want != t.type()) {
                if (t.type().dtype() == null) {
                    throw new IllegalArgumentException("tensor '" + t.name() + "' is " + t.type()
                            + ", which moe4j cannot decode; it can only be copied as is");
                }
                if (isQuantized(t.type()) && !allowRequantize) {
                    throw new IllegalArgumentException("tensor '" + t.name() + "' is already " + t.type()
                            + "; converting it to " + want + " quantizes twice and loses precision (pass --allow-requantize to do it anyway)");
                }
            }
            steps.add(new Step(t, want, why));
        }
        return steps;
    }

    /**
     * Writes {@code out}: {@code in}'s metadata (file type updated) and its tensors converted by {@code plan}.
     * {@code progress} receives the number of source bytes done after each tensor.
     */
    public void write(GgufFile in, List<Step> plan, Path out, WorkerPool pool, Consumer<Long> progress) throws IOException {
        GgufWriter w = new GgufWriter();
        for (Map.Entry<String, GgufValue> kv : in.metadata().entrySet()) {
            switch (kv.getKey()) {
                case "general.file_type", "general.quantization_version" -> { }
                default -> w.put(kv.getKey(), kv.getValue());
            }
        }
        w.putU32("general.file_type", target.ftype);
        boolean quantized = plan.stream().anyMatch(s -> isQuantized(s.target()));
        if (quantized) w.putU32("general.quantization_version", 2);
        AtomicLong done = new AtomicLong();
        for (Step s : plan) {
            GgufTensorInfo t = s.source();
            MemorySegment src = in.tensorData(t.name());
            if (!s.converts()) {
                w.addTensor(t.name(), t.type(), t.ne(), src);
                progress.accept(done.addAndGet(t.byteSize()));
                continue;
            }
            w.addTensor(t.name(), s.target(), t.ne(), dst -> {
                convert(t, src, s.target(), dst, pool);
                progress.accept(done.addAndGet(t.byteSize()));
            });
        }
        w.write(out);
    }

    /** Decodes each row of {@code src} to F32 and encodes it as {@code type}; rows in parallel. */
    static void convert(GgufTensorInfo t, MemorySegment src, GgmlType type, MemorySegment dst, WorkerPool pool) {
        long rowLen = t.ne()[0];
        if (rowLen > Integer.MAX_VALUE / 2) throw new IllegalArgumentException("tensor '" + t.name() + "' rows are too long: " + rowLen);
        int n = (int) rowLen;
        long rows = t.numel() / rowLen;
        long srcRowBytes = t.type().byteSize(rowLen), dstRowBytes = type.byteSize(rowLen);
        // parallelFor takes an int task count: chunks of rows keep it small and each task's buffer reused.
        int chunk = (int) Math.max(1, Math.min(rows, Math.max(1, (1 << 20) / n)));
        int tasks = (int) ((rows + chunk - 1) / chunk);
        float[][] bufs = new float[pool.threads()][n];
        pool.parallelFor(tasks, (task, worker) -> {
            float[] row = bufs[worker];
            long r0 = (long) task * chunk, r1 = Math.min(rows, r0 + chunk);
            for (long r = r0; r < r1; r++) {
                Quant.dequantize(t.type().dtype(), src, r * srcRowBytes, row, 0, n);
                Quant.quantize(type.dtype(), row, 0, dst, r * dstRowBytes, n);
            }
        });
    }

    private GgmlType defaultType(String name, int layers) {
        if (target != Target.Q4_K_M) return target.base;
        if (name.equals("output.weight")) return GgmlType.Q6_K;
        if (name.contains("attn_v.weight") || name.contains("ffn_down")) {
            int layer = layerOf(name);
            if (layer >= 0 && layers > 0 && useMoreBits(layer, layers)) return GgmlType.Q6_K;
        }
        return GgmlType.Q4_K;
    }

    /** llama.cpp's use_more_bits: the first and last eighth of the layers, and every third layer in between. */
    static boolean useMoreBits(int layer, int layers) {
        return layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2;
    }

    private static int layerOf(String name) {
        if (!name.startsWith("blk.")) return -1;
        int dot = name.indexOf('.', 4);
        try {
            return Integer.parseInt(name.substring(4, dot));
        } catch (RuntimeException e) {
            return -1;
        }
    }

    static boolean isWeightMatrix(String name) {
        return name.endsWith(".weight") && !name.contains("ffn_gate_inp") && !name.contains("_norm")
                && !name.contains("pos_embd") && !name.contains("token_types");
    }

    static boolean isQuantized(GgmlType t) {
        return t != GgmlType.F32 && t != GgmlType.F16 && t != GgmlType.BF16;
    }

    /** Source and target byte totals of a plan, for the summary line. */
    public static Map<String, Long> sizes(List<Step> plan) {
        long in = 0, out = 0;
        for (Step s : plan) {
            in += s.source().byteSize();
            out += s.target().byteSize(s.source().numel());
        }
        Map<String, Long> m = new LinkedHashMap<>();
        m.put("in", in);
        m.put("out", out);
        return m;
    }
}
