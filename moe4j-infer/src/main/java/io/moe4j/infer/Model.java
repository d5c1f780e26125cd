package io.moe4j.infer;

import io.moe4j.gguf.GgufFile;
import io.moe4j.gguf.GgufFormatException;
import io.moe4j.gguf.GgufTensorInfo;
import io.moe4j.kernel.Kernels;
import io.moe4j.kernel.quant.QuantMatmul;
import io.moe4j.tensor.DType;
import io.moe4j.tensor.NativeMemory;
import io.moe4j.tensor.quant.Quant;
import io.moe4j.tensor.quant.RowGroups;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A GGUF decoder model ready to run: hyper-parameters ({@link HyperParams}) and weights. The file is mapped once;
 * projections and experts stay in the mapping in their GGML type (zero-copy — a 7 GB model costs 7 GB of address
 * space, and only the pages a forward pass touches are read); norm gains and biases are copied to F32.
 *
 * <p>Loading checks every tensor an architecture needs against the shape the hyper-parameters imply (llama.cpp's
 * {@code create_tensor} shapes, GGUF order, fastest dimension first) and that moe4j has kernels for its type; the
 * first problem is a {@link ModelFormatException} naming the file and the tensor.
 *
 * <p>Thread safety: immutable after {@link #open}; many engines may share one model. {@link #close()} unmaps it.
 */
public final class Model implements AutoCloseable {
    private final GgufFile file;
    private final Arena arena;
    private long repackedBytes;
    private final HyperParams hp;
    private final Matrix tokenEmbd;        // (V, D)
    private final Matrix output;           // (V, D), token_embd when tied
    private final MemorySegment outputBias; // (V) or null
    private final MemorySegment outputNorm; // (D)
    private final List<LayerWeights> layers;
    private final float[] ropeFreqs;       // (rot/2) frequency divisors (llama3 rope_freqs), or null

    private Model(GgufFile file, Arena arena, HyperParams hp, Matrix tokenEmbd, Matrix output, MemorySegment outputBias,
                  MemorySegment outputNorm, List<LayerWeights> layers, float[] ropeFreqs) {
        this.file = file;
        this.arena = arena;
        this.hp = hp;
        this.tokenEmbd = tokenEmbd;
        this.output = output;
        this.outputBias = outputBias;
        this.outputNorm = outputNorm;
        this.layers = layers;
        this.ropeFreqs = ropeFreqs;
    }

    /**
     * Maps and validates {@code path}.
     *
     * @throws IOException            if the file cannot be read
     * @throws GgufFormatException    if it is not a well-formed GGUF file
     * @throws ModelFormatException   if it is GGUF but not a model moe4j can run
     */
    public static Model open(Path path) throws IOException {
        return open(path, repackByDefault());
    }

    /**
     * As {@link #open(Path)}; {@code repack} chooses whether Q8_0 / Q4_0 matrices are copied into the layout the
     * kernels compute fastest with ({@link io.moe4j.kernel.quant.QuantMatmul#preferredLayout}, e.g. 16-row groups
     * on AVX-512) — more resident memory for the copy and a few seconds of load time, faster matmuls — or computed
     * with in place, zero-copy from the mapping.
     */
    public static Model open(Path path, boolean repack) throws IOException {
        return open(path, repack, null);
    }

    /**
     * As {@link #open(Path, boolean)}, reporting progress: {@code progress} receives the bytes of tensor data
     * processed so far and the total (the file's tensor bytes), from the loading thread, after each tensor.
     */
    public static Model open(Path path, boolean repack, LoadProgress progress) throws IOException {
        GgufFile g = GgufFile.open(path);
        try {
            return load(g, repack, progress);
        } catch (RuntimeException | Error e) {
            g.close();
            throw e;
        }
    }

    /** Builds a model over an open file, which the model then owns (closes). */
    public static Model load(GgufFile g) {
        return load(g, repackByDefault());
    }

    /**
     * Whether a repacked copy of the file's weights fits comfortably in RAM: at most {@link #REPACK_MEMORY_SHARE} of
     * the machine's physical memory. A model that does not fit stays memory-mapped, where the OS can page it from
     * the file (as llama.cpp does); a repacked copy would be anonymous memory with nowhere to go but swap.
     */
    static boolean repackFits(GgufFile g) {
        long tensors = g.tensors().stream().mapToLong(GgufTensorInfo::byteSize).sum();
        long ram = physicalMemory();
        return ram <= 0 || tensors <= (long) (REPACK_MEMORY_SHARE * ram);
    }

    /** Share of physical memory a repacked model may take (see {@link #repackFits}). */
    static final double REPACK_MEMORY_SHARE = 0.6;

    private static long physicalMemory() {
        try {
            return ((com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean()).getTotalMemorySize();
        } catch (RuntimeException | LinkageError e) {
            return -1;
        }
    }

    /** Repacking is on unless the system property {@code moe4j.repack} is {@code false}. */
    public static boolean repackByDefault() {
        return !"false".equalsIgnoreCase(System.getProperty("moe4j.repack"));
    }

    /** As {@link #load(GgufFile)}, with the choice of {@link #open(Path, boolean)}. */
    public static Model load(GgufFile g, boolean repack) {
        return load(g, repack, null);
    }

    /** Progress of {@link #open(Path, boolean, LoadProgress)}: bytes of tensor data processed so far, of a total. */
    @FunctionalInterface
    public interface LoadProgress {
        void loaded(long bytesDone, long bytesTotal);
    }

    /** As {@link #load(GgufFile, boolean)}, reporting progress (may be null). */
    public static Model load(GgufFile g, boolean repack, LoadProgress progress) {
        HyperParams hp = HyperParams.read(g);
        Arena arena = Arena.ofShared();
        try {
            Loader l = new Loader(g, arena, repack && repackFits(g) ? Kernels.get().quant() : null, progress);
            int d = hp.dim(), v = hp.vocab(), q = hp.qDim(), kv = hp.kvDim();
            Matrix embd = l.matrixAsIs("token_embd.weight", v, d); // rows are looked up one at a time
            l.advance("token_embd.weight");
            Matrix out = g.hasTensor("output.weight") ? l.matrix("output.weight", v, d) : embd;
            MemorySegment outB = l.optVector("output.bias", v);
            MemorySegment outNorm = l.vector("output_norm.weight", d);
            List<LayerWeights> layers = new ArrayList<>();
            for (int i = 0; i < hp.layers(); i++) {
                String b = "blk." + i + ".";
                MemorySegment qn = null, kn = null;
                switch (hp.arch().qkNorm()) {
                    case PER_HEAD -> {
                        qn = l.vector(b + "attn_q_norm.weight", hp.headDim());
                        kn = l.vector(b + "attn_k_norm.weight", hp.headDim());
                    }
                    case FULL_WIDTH -> {
                        qn = l.vector(b + "attn_q_norm.weight", q);
                        kn = l.vector(b + "attn_k_norm.weight", kv);
                    }
                    case NONE -> { }
                }
                Matrix gate = null, up = null, down = null, router = null, eg = null, eu = null, ed = null;
                Matrix sg = null, su = null, sd = null, sr = null;
                MemorySegment probsBias = null;
                boolean moeBlock = hp.moe() && i >= hp.denseLead();
                if (moeBlock) {
                    int e = hp.experts(), f = hp.expertFf();
                    router = l.matrix(b + "ffn_gate_inp.weight", e, d);
                    if (g.hasTensor(b + "ffn_gate_up_exps.weight")) {
                        // fused per expert: gate rows then up rows (llama.cpp's create_tensor_gate_up_exps)
                        String n = b + "ffn_gate_up_exps.weight";
                        Matrix gu = l.stackAsIs(n, e, 2 * f, d);
                        eg = l.repack(gu.rows(n + "[gate]", 0, f));
                        eu = l.repack(gu.rows(n + "[up]", f, f));
                        if (eg.type() != gu.type() && eu.type() != gu.type()) g.release(n);
                        l.advance(n);
                    } else {
                        eg = l.stack(b + "ffn_gate_exps.weight", e, f, d);
                        eu = l.stack(b + "ffn_up_exps.weight", e, f, d);
                    }
                    ed = l.stack(b + "ffn_down_exps.weight", e, d, f);
                    probsBias = l.optVector(b + "exp_probs_b.bias", e);
                    if (hp.sharedFf() > 0) {
                        int fs = hp.sharedFf();
                        sg = l.matrix(b + "ffn_gate_shexp.weight", fs, d);
                        su = l.matrix(b + "ffn_up_shexp.weight", fs, d);
                        sd = l.matrix(b + "ffn_down_shexp.weight", d, fs);
                        if (hp.arch().sharedExpertGated()) sr = l.gateVector(b + "ffn_gate_inp_shexp.weight", d);
                    }
                } else {
                    gate = l.matrix(b + "ffn_gate.weight", hp.ff(), d);
                    up = l.matrix(b + "ffn_up.weight", hp.ff(), d);
                    down = l.matrix(b + "ffn_down.weight", d, hp.ff());
                }
                if (hp.mlaAttention()) {
                    HyperParams.Mla a = hp.mla();
                    int h = hp.heads(), qh = h * a.qHead();
                    Matrix qA = a.qLoraRank() > 0 ? l.matrix(b + "attn_q_a.weight", a.qLoraRank(), d) : null;
                    LayerWeights.Mla mla = new LayerWeights.Mla(qA,
                            qA != null ? l.vector(b + "attn_q_a_norm.weight", a.qLoraRank()) : null,
                            l.matrix(b + "attn_kv_a_mqa.weight", a.latentRow(), d),
                            l.vector(b + "attn_kv_a_norm.weight", a.kvLoraRank()),
                            l.stack(b + "attn_k_b.weight", h, a.kvLoraRank(), a.qkNope()),
                            l.stack(b + "attn_v_b.weight", h, a.vHeadDim(), a.kvLoraRank()));
                    Matrix wq = qA != null ? l.matrix(b + "attn_q_b.weight", qh, a.qLoraRank()) : l.matrix(b + "attn_q.weight", qh, d);
                    layers.add(new LayerWeights(l.vector(b + "attn_norm.weight", d), wq, null, null,
                            l.matrix(b + "attn_output.weight", d, h * a.vHeadDim()), null, null, null, null,
                            null, null, l.vector(b + "ffn_norm.weight", d),
                            gate, up, down, router, eg, eu, ed, sg, su, sd, sr, probsBias, mla));
                    continue;
                }
                layers.add(new LayerWeights(
                        l.vector(b + "attn_norm.weight", d),
                        l.matrix(b + "attn_q.weight", q, d), l.matrix(b + "attn_k.weight", kv, d),
                        l.matrix(b + "attn_v.weight", kv, d), l.matrix(b + "attn_output.weight", d, q),
                        l.optVector(b + "attn_q.bias", q), l.optVector(b + "attn_k.bias", kv),
                        l.optVector(b + "attn_v.bias", kv), l.optVector(b + "attn_output.bias", d),
                        qn, kn, l.vector(b + "ffn_norm.weight", d),
                        gate, up, down, router, eg, eu, ed, sg, su, sd, sr, probsBias, null));
            }
            float[] freqs = null;
            if (g.hasTensor("rope_freqs.weight")) {
                int rot = hp.mla() != null ? hp.mla().qkRope() : hp.headDim();
                MemorySegment f = l.vector("rope_freqs.weight", rot / 2);
                freqs = f.toArray(ValueLayout.JAVA_FLOAT);
                for (int i = 0; i < freqs.length; i++) {
                    if (!(freqs[i] > 0)) throw new ModelFormatException(g.name() + ": tensor 'rope_freqs.weight' has entry " + i + " = " + freqs[i] + ", must be > 0");
                }
            }
            l.checkAllUsed();
            if (progress != null) progress.loaded(l.total(), l.total());
            Model m = new Model(g, arena, hp, embd, out, outB, outNorm, List.copyOf(layers), freqs);
            m.repackedBytes = l.packed()[0];
            return m;
        } catch (RuntimeException | Error e) {
            arena.close();
            throw e;
        }
    }

    public HyperParams hyperParams() { return hp; }
    public GgufFile gguf() { return file; }
    /** Bytes of weights copied into a load-time layout (0 when nothing was repacked). */
    public long repackedBytes() { return repackedBytes; }
    public Matrix tokenEmbedding() { return tokenEmbd; }
    public Matrix output() { return output; }
    public MemorySegment outputBias() { return outputBias; }
    public MemorySegment outputNorm() { return outputNorm; }
    public LayerWeights layer(int i) { return layers.get(i); }
    /** Per-pair RoPE frequency divisors from {@code rope_freqs.weight} (Llama 3.1+ long-context scaling), or null. */
    public float[] ropeFreqs() { return ropeFreqs == null ? null : ropeFreqs.clone(); }

    @Override
    public void close() {
        if (arena.scope().isAlive()) arena.close();
        file.close();
    }

    @Override
    public String toString() {
        return "Model[" + file.name() + ", " + hp + "]";
    }

    /** Tensor lookup with shape and type checks; remembers what it handed out. */
    private record Loader(GgufFile g, Arena arena, QuantMatmul layouts, LoadProgress progress, java.util.Set<String> used,
                          long[] done, long[] packed, long total) {
        Loader(GgufFile g, Arena arena, QuantMatmul layouts, LoadProgress progress) {
            this(g, arena, layouts, progress, new java.util.HashSet<>(), new long[1], new long[1],
                    g.tensors().stream().mapToLong(GgufTensorInfo::byteSize).sum());
        }

        /** Counts tensor {@code name} as processed and tells the listener. */
        void advance(String name) {
            if (progress == null) return;
            done[0] += g.tensorInfo(name).byteSize();
            progress.loaded(Math.min(done[0], total), total);
        }

        /**
         * {@code m} in the layout {@link #layouts} prefers, copied into the model's arena (each matrix of a stack
         * packed in parallel), or {@code m} itself when that is its own layout or repacking is off.
         */
        Matrix repack(Matrix m) {
            if (layouts == null) return m;
            DType t = layouts.preferredLayout(m.type(), m.rows(), m.cols());
            if (t == m.type()) return m;
            long per = m.rows() * t.byteSize(m.cols());
            MemorySegment dst = NativeMemory.allocate(arena, per * m.count()); // fresh pages are costly on a VM: see there
            packed[0] += dst.byteSize();
            java.util.stream.IntStream.range(0, m.count()).parallel()
                    .forEach(i -> RowGroups.pack(m.type(), m.data(), m.offset(i), m.rows(), m.cols(), dst, i * per));
            return new Matrix(m.name(), dst, t, m.count(), m.rows(), m.cols());
        }

        /** {@link #repack} of a whole tensor, whose mapped pages are then released; counted as loaded. */
        private Matrix repackTensor(Matrix m) {
            Matrix p = repack(m);
            if (p != m) g.release(m.name());
            advance(m.name());
            return p;
        }

        /**
         * A tensor nobody asked for means a feature moe4j does not implement (llama.cpp likewise refuses files with
         * tensors its architecture does not create); failing beats silently computing something else.
         */
        void checkAllUsed() {
            for (GgufTensorInfo t : g.tensors()) {
                if (!used.contains(t.name())) {
                    throw new ModelFormatException(g.name() + ": tensor '" + t.name() + "' is not used by moe4j's "
                            + g.architecture() + " (an unsupported feature of this file)");
                }
            }
        }

        GgufTensorInfo info(String name, long... ne) {
            if (!g.hasTensor(name)) throw new ModelFormatException(g.name() + ": missing tensor '" + name + "'");
            used.add(name);
            GgufTensorInfo t = g.tensorInfo(name);
            if (t.type().dtype() == null) {
                throw new ModelFormatException(g.name() + ": tensor '" + name + "' is " + t.type()
                        + ", a type moe4j has no kernels for (supported: " + DType.fileTypes() + ")");
            }
            if (!Arrays.equals(t.ne(), ne)) {
                throw new ModelFormatException(g.name() + ": tensor '" + name + "' has GGUF dims " + Arrays.toString(t.ne())
                        + ", expected " + Arrays.toString(ne) + " from the metadata");
            }
            return t;
        }

        /** (rows, cols) matrix: GGUF dims {cols, rows}; in the preferred layout (see {@link #repack}). */
        Matrix matrix(String name, int rows, int cols) {
            return repackTensor(matrixAsIs(name, rows, cols));
        }

        /** As {@link #matrix}, always in the file's layout over the mapping (rows addressable one by one). */
        Matrix matrixAsIs(String name, int rows, int cols) {
            GgufTensorInfo t = info(name, cols, rows);
            return new Matrix(name, g.tensorData(name), t.type().dtype(), 1, rows, cols);
        }

        /** count × (rows, cols): GGUF dims {cols, rows, count}; in the preferred layout. */
        Matrix stack(String name, int count, int rows, int cols) {
            return repackTensor(stackAsIs(name, count, rows, cols));
        }

        /** As {@link #stack}, in the file's layout. */
        Matrix stackAsIs(String name, int count, int rows, int cols) {
            GgufTensorInfo t = info(name, cols, rows, count);
            return new Matrix(name, g.tensorData(name), t.type().dtype(), count, rows, cols);
        }

        /** A 1-D gate weight used as a (1, n) matrix. */
        Matrix gateVector(String name, int n) {
            GgufTensorInfo t = info(name, n);
            return new Matrix(name, g.tensorData(name), t.type().dtype(), 1, 1, n);
        }

        /** A 1-D tensor copied to F32. */
        MemorySegment vector(String name, int n) {
            GgufTensorInfo t = info(name, n);
            float[] f = new float[n];
            Quant.dequantize(t.type().dtype(), g.tensorData(name), 0, f, 0, n);
            MemorySegment s = arena.allocate((long) n * Float.BYTES, 64);
            MemorySegment.copy(f, 0, s, ValueLayout.JAVA_FLOAT, 0, n);
            return s;
        }

        MemorySegment optVector(String name, int n) {
            return g.hasTensor(name) ? vector(name, n) : null;
        }
    }
}
