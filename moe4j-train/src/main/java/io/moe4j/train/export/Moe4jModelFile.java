package io.moe4j.train.export;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moe4j.moe.MoeLayer;
import io.moe4j.nn.F32;
import io.moe4j.nn.Param;
import io.moe4j.safetensors.SafetensorsFile;
import io.moe4j.safetensors.SafetensorsFormatException;
import io.moe4j.safetensors.SafetensorsWriter;
import io.moe4j.train.model.CausalLm;
import io.moe4j.train.model.ModelConfig;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * moe4j's own model file: every model, whatever its router, saved so that it loads back bit-identically. One
 * safetensors file (so any safetensors reader can look inside): each parameter under its moe4j name and shape, each
 * MoE layer's non-trainable router state (DeepSeek-V3 bias, ReMoE λ, EvoMoE step) as
 * {@code router_state.<layer index>}, and in the header metadata {@code moe4j.format}, the model config as JSON
 * ({@code moe4j.config}) and any extra entries the caller adds (e.g. the tokenizer).
 */
public final class Moe4jModelFile {
    public static final String FORMAT = "moe4j-model/1";
    private static final ObjectMapper JSON = new ObjectMapper().disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

    private Moe4jModelFile() {}

    /** Writes {@code model} (atomically) with {@code extra} metadata entries. */
    public static void save(CausalLm model, Map<String, String> extra, Path out) throws IOException {
        SafetensorsWriter w = new SafetensorsWriter().metadata("moe4j.format", FORMAT)
                .metadata("moe4j.config", JSON.writeValueAsString(model.config()));
        extra.forEach(w::metadata);
        for (Param p : model.params()) w.add(p.name(), p.value());
        List<MoeLayer> layers = model.moeLayers();
        java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined();
        try (arena) {
            for (MoeLayer l : layers) {
                float[] s = l.router().state();
                if (s.length == 0) continue;
                MemorySegment seg = F32.alloc(arena, s.length);
                F32.copyIn(s, seg, 0);
                w.add("router_state." + l.config().layerIndex(), "F32", new long[]{s.length}, seg.asSlice(0, s.length * 4L));
            }
            w.write(out);
        }
    }

    /** Reads the config stored in {@code file} without loading weights. */
    public static ModelConfig readConfig(Path file) throws IOException {
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            return config(f);
        }
    }

    /** The extra metadata entries stored with the model. */
    public static Map<String, String> readMetadata(Path file) throws IOException {
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            return new LinkedHashMap<>(f.metadata());
        }
    }

    /**
     * Builds a model with {@code factory} from the stored config and fills every parameter and router state
     * from the file.
     *
     * @throws SafetensorsFormatException if the file is not a moe4j model, or a tensor is missing or misshapen
     */
    public static CausalLm load(Path file, Function<ModelConfig, CausalLm> factory) throws IOException {
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            ModelConfig c = config(f);
            CausalLm m = factory.apply(c);
            try {
                for (Param p : m.params()) {
                    if (!f.has(p.name())) throw new SafetensorsFormatException(f.name(), "no tensor for parameter '" + p.name() + "'");
                    SafetensorsFile.Entry e = f.entry(p.name());
                    if (!e.dtype().equals("F32") || !Arrays.equals(e.shape(), p.value().shape())) {
                        throw new SafetensorsFormatException(f.name(), "parameter '" + p.name() + "' is " + e.dtype()
                                + Arrays.toString(e.shape()) + ", the model needs F32" + Arrays.toString(p.value().shape()));
                    }
                    MemorySegment.copy(f.data(p.name()), 0, p.data(), 0, p.numel() * 4);
                }
                for (MoeLayer l : m.moeLayers()) {
                    String key = "router_state." + l.config().layerIndex();
                    float[] want = l.router().state();
                    if (!f.has(key)) {
                        if (want.length == 0) continue;
                        throw new SafetensorsFormatException(f.name(), "no router state for MoE layer " + l.config().layerIndex());
                    }
                    float[] s = f.tensor(key).toFloatArray();
                    try {
                        l.router().restoreState(s);
                    } catch (IllegalArgumentException ex) {
                        throw new SafetensorsFormatException(f.name(), ex.getMessage());
                    }
                }
            } catch (IOException | RuntimeException ex) {
                if (m instanceof AutoCloseable ac) {
                    try {
                        ac.close();
                    } catch (Exception suppressed) {
                        ex.addSuppressed(suppressed);
                    }
                }
                throw ex;
            }
            return m;
        }
    }

    private static ModelConfig config(SafetensorsFile f) throws IOException {
        String fmt = f.metadata().get("moe4j.format");
        if (fmt == null) throw new SafetensorsFormatException(f.name(), "not a moe4j model file (no moe4j.format metadata)");
        if (!fmt.equals(FORMAT)) throw new SafetensorsFormatException(f.name(), "unsupported moe4j model format '" + fmt + "' (this build reads " + FORMAT + ")");
        String json = f.metadata().get("moe4j.config");
        if (json == null) throw new SafetensorsFormatException(f.name(), "moe4j.config metadata is missing");
        try {
            ModelConfig c = JSON.readValue(json, ModelConfig.class);
            // re-validate the MoE part through its builder: a hand-edited file gets the same checks as code
            return c.moe() == null ? c : new ModelConfig(c.vocabSize(), c.dModel(), c.layers(), c.heads(), c.kvHeads(),
                    c.headDim(), c.maxSeqLen(), c.ropeTheta(), c.normEps(), c.qkNorm(), c.tiedEmbeddings(),
                    c.denseLayers(), c.denseHidden(), c.moe().toBuilder().build(), c.initStd(), c.seed());
        } catch (JsonProcessingException e) {
            throw new SafetensorsFormatException(f.name(), "moe4j.config is not a valid model config: " + e.getOriginalMessage());
        }
    }
}
