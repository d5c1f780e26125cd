package io.moe4j.train;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.exc.InvalidFormatException;
import com.fasterxml.jackson.databind.exc.MismatchedInputException;
import com.fasterxml.jackson.databind.exc.UnrecognizedPropertyException;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.moe4j.moe.CapacityRule;
import io.moe4j.moe.DispatchMode;
import io.moe4j.moe.ExpertType;
import io.moe4j.moe.InvalidConfigException;
import io.moe4j.moe.MoeConfig;
import io.moe4j.moe.PriorityOrder;
import io.moe4j.moe.loss.BalanceLoss;
import io.moe4j.train.model.ModelConfig;
import io.moe4j.train.optim.AdamWConfig;
import io.moe4j.train.optim.LrSchedule;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;

/**
 * Everything that defines a training run: model shape, optimisation, data. Loaded as YAML or JSON in layers —
 * {@code defaults.yaml} ← preset ({@code tiny}, {@code small}) ← the user's file ← {@code --set a.b=v} overrides —
 * so every field always has a value, and a misspelt field is an error that names it instead of a silent default.
 *
 * <p>Non-goal: no environment-variable layer (one place to look is easier to reason about).
 */
public record TrainConfig(String name, Model model, Train train, Data data) {

    public static final List<String> PRESETS = List.of("tiny", "demo", "small");
    static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory())
            .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES);
    static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT)
            .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

    /** Model shape; {@code dense} switches to the dense baseline with the same active parameters per token. */
    public record Model(int vocabSize, int dModel, int layers, int heads, int kvHeads, int headDim, int maxSeqLen,
                        double ropeTheta, double normEps, boolean qkNorm, boolean tiedEmbeddings,
                        int denseLayers, int denseHidden, double initStd, boolean dense, Moe moe) {}

    /** The MoE layer template (see {@link MoeConfig} for each field). */
    public record Moe(int numExperts, int topK, int expertHidden, ExpertType expertType, String router,
                      boolean normalizeTopK, double routedScale, int sharedExperts, int sharedHidden, boolean sharedGate,
                      DispatchMode dispatch, CapacityRule capacityRule, double capacityFactor, PriorityOrder priority,
                      int groupSize, BalanceLoss balanceLoss, double balanceCoef, double zLossCoef, int nGroup,
                      int topkGroup, double biasUpdateSpeed, double jitter, double noiseEps, String secondExpert,
                      double topPThreshold, double entropyCoef, double l1Init, double l1Multiplier) {}

    /**
     * Optimisation. {@code onNonFinite}: what a NaN/Inf step does after rolling back to the last good checkpoint —
     * {@code skip-batch} (continue past the offending batch) or {@code lower-lr} (replay the same batches with the
     * LR multiplied by {@code lrBackoff}).
     */
    public record Train(int steps, int batch, int seqLen, int accum, double lr, double minLr, int warmupSteps,
                        double weightDecay, double beta1, double beta2, double eps, double clip, double expertLrMult,
                        double routerLrMult, double ffnLrMult,
                        long seed, int evalEvery, int evalBatches, int checkpointEvery, int keepCheckpoints,
                        String onNonFinite, double lrBackoff, int maxFailures, int logEvery) {}

    /** Corpus and tokenizer (read by the data/tokenizer wiring, not by the trainer). */
    public record Data(List<String> paths, double valFraction, String tokenizer, int bpeVocab) {}

    // ---------------------------------------------------------------- loading

    /**
     * Loads a configuration: defaults, then {@code preset} (may be null), then {@code file} (may be null), then the
     * {@code overrides} ("model.layers=4"), then validates.
     */
    public static TrainConfig load(String preset, Path file, List<String> overrides) {
        ObjectNode tree = resource("defaults");
        if (preset != null && !preset.isBlank()) {
            if (!PRESETS.contains(preset)) {
                throw new ConfigException("unknown preset '" + preset + "'; known presets: " + String.join(", ", PRESETS));
            }
            merge(tree, resource(preset), "", "preset " + preset);
        }
        if (file != null) {
            JsonNode user;
            try {
                user = YAML.readTree(file.toFile());
            } catch (JsonProcessingException e) {
                throw new ConfigException("cannot parse config " + file + ": " + e.getOriginalMessage()
                        + (e.getLocation() != null ? " (line " + e.getLocation().getLineNr() + ")" : ""));
            } catch (IOException e) {
                if (!Files.exists(file)) throw new ConfigException("config file not found: " + file);
                throw new ConfigException("cannot read config " + file + ": " + e.getMessage());
            }
            if (user != null && !user.isMissingNode() && !user.isNull()) {
                if (!user.isObject()) throw new ConfigException("config " + file + " must be a mapping of settings");
                merge(tree, (ObjectNode) user, "", "config " + file);
            }
        }
        if (overrides != null) for (String o : overrides) set(tree, o);
        TrainConfig c = fromTree(tree, file == null ? "settings" : "config " + file);
        c.validate();
        return c;
    }

    /** Parses a configuration written by {@link #toJson()} (e.g. from a checkpoint header). */
    public static TrainConfig fromJson(String json) {
        try {
            ObjectNode tree = resource("defaults");
            merge(tree, (ObjectNode) JSON.readTree(json), "", "stored config");
            TrainConfig c = fromTree(tree, "stored config");
            c.validate();
            return c;
        } catch (JsonProcessingException e) {
            throw new ConfigException("stored config is not valid JSON: " + e.getOriginalMessage());
        }
    }

    public String toJson() {
        try {
            return JSON.writeValueAsString(this);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /** This configuration with one more override applied ("train.steps=10"). */
    public TrainConfig with(String override) {
        ObjectNode tree = JSON.valueToTree(this);
        set(tree, override);
        TrainConfig c = fromTree(tree, "settings");
        c.validate();
        return c;
    }

    private static ObjectNode resource(String name) {
        try (InputStream in = TrainConfig.class.getResourceAsStream("presets/" + name + ".yaml")) {
            if (in == null) throw new IllegalStateException("missing resource presets/" + name + ".yaml");
            return (ObjectNode) YAML.readTree(in);
        } catch (IOException e) {
            throw new IllegalStateException("cannot read preset " + name, e);
        }
    }

    /** Copies {@code src} over {@code dst}; every key of src must exist in dst (the defaults list every field). */
    private static void merge(ObjectNode dst, ObjectNode src, String prefix, String where) {
        for (Iterator<String> it = src.fieldNames(); it.hasNext(); ) {
            String k = it.next();
            JsonNode v = src.get(k);
            JsonNode old = dst.get(k);
            if (old == null) throw unknown(prefix + k, dst, prefix, where);
            if (old.isObject() && v.isObject()) merge((ObjectNode) old, (ObjectNode) v, prefix + k + ".", where);
            else if (old.isObject()) throw new ConfigException(where + ": " + prefix + k + " must be a mapping of settings");
            else dst.set(k, v);
        }
    }

    private static void set(ObjectNode tree, String override) {
        int eq = override.indexOf('=');
        if (eq <= 0) throw new ConfigException("override '" + override + "' must look like section.field=value");
        String path = override.substring(0, eq).trim(), raw = override.substring(eq + 1).trim();
        String[] keys = path.split("\\.");
        ObjectNode node = tree;
        String prefix = "";
        for (int i = 0; i < keys.length - 1; i++) {
            JsonNode next = node.get(keys[i]);
            if (next == null || !next.isObject()) throw unknown(prefix + keys[i], node, prefix, "--set " + override);
            prefix += keys[i] + ".";
            node = (ObjectNode) next;
        }
        String last = keys[keys.length - 1];
        JsonNode old = node.get(last);
        if (old == null) throw unknown(path, node, prefix, "--set " + override);
        if (old.isObject()) throw new ConfigException("--set " + override + ": " + path + " is a section; set one of its fields");
        JsonNode value;
        try {
            value = raw.isEmpty() ? YAML.getNodeFactory().textNode("") : YAML.readTree(raw);
        } catch (JsonProcessingException e) {
            throw new ConfigException("--set " + override + ": cannot parse the value '" + raw + "'");
        }
        if (old.isArray() && !value.isArray()) value = YAML.createArrayNode().add(value); // data.paths=a.txt
        if (old.isTextual() && !value.isTextual()) value = YAML.getNodeFactory().textNode(raw);
        node.set(last, value);
    }

    private static ConfigException unknown(String path, JsonNode parent, String prefix, String where) {
        List<String> known = new ArrayList<>();
        parent.fieldNames().forEachRemaining(k -> known.add(prefix + k));
        return new ConfigException(where + ": unknown setting '" + path + "'; known: " + String.join(", ", known));
    }

    private static TrainConfig fromTree(ObjectNode tree, String where) {
        try {
            return JSON.treeToValue(tree, TrainConfig.class);
        } catch (UnrecognizedPropertyException e) {
            throw new ConfigException(where + ": unknown setting '" + path(e) + "'");
        } catch (InvalidFormatException e) {
            Class<?> t = e.getTargetType();
            String allowed = t != null && t.isEnum()
                    ? "; one of " + java.util.Arrays.toString(t.getEnumConstants()) : " (expected " + (t == null ? "?" : t.getSimpleName()) + ")";
            throw new ConfigException(where + ": " + path(e) + " = '" + e.getValue() + "' is invalid" + allowed);
        } catch (MismatchedInputException e) {
            throw new ConfigException(where + ": " + path(e) + " has the wrong type (expected "
                    + (e.getTargetType() == null ? "?" : e.getTargetType().getSimpleName()) + ")");
        } catch (JsonProcessingException e) {
            throw new ConfigException(where + ": " + e.getOriginalMessage());
        }
    }

    private static String path(MismatchedInputException e) {
        StringBuilder sb = new StringBuilder();
        for (var r : e.getPath()) {
            if (r.getFieldName() != null) sb.append(sb.isEmpty() ? "" : ".").append(r.getFieldName());
            else sb.append('[').append(r.getIndex()).append(']');
        }
        return sb.toString();
    }

    // ---------------------------------------------------------------- validation and derived objects

    /** Checks every field; the first problem is thrown as a {@link ConfigException} naming it. */
    public void validate() {
        Model m = model;
        Train t = train;
        req(m.vocabSize() >= 0, "model.vocabSize must be >= 0 (0 = the tokenizer's), got " + m.vocabSize());
        req(m.dModel() > 0, "model.dModel must be > 0, got " + m.dModel());
        req(m.layers() > 0, "model.layers must be > 0, got " + m.layers());
        req(m.heads() > 0, "model.heads must be > 0, got " + m.heads());
        req(m.kvHeads() > 0 && m.heads() % m.kvHeads() == 0,
                "model.kvHeads must divide model.heads = " + m.heads() + ", got " + m.kvHeads());
        req(m.headDim() > 0 || m.dModel() % m.heads() == 0, "model.heads = " + m.heads()
                + " does not divide model.dModel = " + m.dModel() + "; set model.headDim");
        req(m.headDim() >= 0 && headDim() % 2 == 0, "model.headDim must be even (RoPE pairs), got " + headDim());
        req(m.maxSeqLen() >= 0, "model.maxSeqLen must be >= 0, got " + m.maxSeqLen());
        req(m.maxSeqLen() == 0 || m.maxSeqLen() >= t.seqLen(),
                "model.maxSeqLen = " + m.maxSeqLen() + " is shorter than train.seqLen = " + t.seqLen());
        req(m.ropeTheta() > 0, "model.ropeTheta must be > 0, got " + m.ropeTheta());
        req(m.normEps() > 0, "model.normEps must be > 0, got " + m.normEps());
        req(m.denseLayers() >= 0 && m.denseLayers() <= m.layers(),
                "model.denseLayers must be in [0, model.layers = " + m.layers() + "], got " + m.denseLayers());
        req(m.denseHidden() >= 0, "model.denseHidden must be >= 0 (0 = matched), got " + m.denseHidden());
        req(m.initStd() > 0, "model.initStd must be > 0, got " + m.initStd());
        req(t.steps() > 0, "train.steps must be > 0, got " + t.steps());
        req(t.batch() > 0, "train.batch must be > 0, got " + t.batch());
        req(t.seqLen() > 0, "train.seqLen must be > 0, got " + t.seqLen());
        req(t.accum() > 0, "train.accum must be > 0, got " + t.accum());
        req(t.clip() >= 0, "train.clip must be >= 0 (0 = off), got " + t.clip());
        req(t.expertLrMult() >= 0, "train.expertLrMult must be >= 0, got " + t.expertLrMult());
        req(t.routerLrMult() >= 0, "train.routerLrMult must be >= 0, got " + t.routerLrMult());
        req(t.ffnLrMult() >= 0, "train.ffnLrMult must be >= 0, got " + t.ffnLrMult());
        req(t.evalEvery() >= 0, "train.evalEvery must be >= 0 (0 = only at the end), got " + t.evalEvery());
        req(t.evalBatches() > 0, "train.evalBatches must be > 0, got " + t.evalBatches());
        req(t.checkpointEvery() >= 0, "train.checkpointEvery must be >= 0 (0 = only at the end), got " + t.checkpointEvery());
        req(t.keepCheckpoints() > 0, "train.keepCheckpoints must be > 0, got " + t.keepCheckpoints());
        req(List.of("skip-batch", "lower-lr").contains(t.onNonFinite()),
                "train.onNonFinite must be skip-batch or lower-lr, got '" + t.onNonFinite() + "'");
        req(t.lrBackoff() > 0 && t.lrBackoff() < 1, "train.lrBackoff must be in (0, 1), got " + t.lrBackoff());
        req(t.maxFailures() > 0, "train.maxFailures must be > 0, got " + t.maxFailures());
        req(t.logEvery() > 0, "train.logEvery must be > 0, got " + t.logEvery());
        req(data.valFraction() > 0 && data.valFraction() < 1, "data.valFraction must be in (0, 1), got " + data.valFraction());
        req(data.bpeVocab() >= 256, "data.bpeVocab must be >= 256 (the byte alphabet), got " + data.bpeVocab());
        try {
            schedule();
            adamW();
            moeConfig(Math.max(1, m.vocabSize()));
        } catch (InvalidConfigException e) {
            throw new ConfigException("model." + e.getMessage());
        } catch (IllegalArgumentException e) {
            throw new ConfigException(e.getMessage());
        }
    }

    private static void req(boolean ok, String msg) {
        if (!ok) throw new ConfigException(msg);
    }

    public int headDim() { return model.headDim() > 0 ? model.headDim() : model.dModel() / model.heads(); }

    public int maxSeqLen() { return model.maxSeqLen() > 0 ? model.maxSeqLen() : train.seqLen(); }

    /** Hidden width of the dense baseline's FFN: the MoE layer's active width k·f + shared width. */
    public int matchedDenseHidden() {
        Moe e = model.moe();
        return e.topK() * e.expertHidden() + e.sharedExperts() * e.sharedHidden();
    }

    public LrSchedule schedule() { return new LrSchedule(train.lr(), train.minLr(), train.warmupSteps(), train.steps()); }

    /**
     * AdamW settings; {@code expertLrMult} becomes the group of routed-expert weights (not shared experts),
     * {@code routerLrMult} the group of router (gate) weights — 0 freezes the router at its initialisation, the
     * control that shows whether learning to route helps at all — and {@code ffnLrMult} the group of dense FFN
     * weights (the dense baseline's FFNs, an MoE model's dense layers), so the baseline can get the same treatment.
     */
    public AdamWConfig adamW() {
        List<AdamWConfig.LrRule> rules = new java.util.ArrayList<>();
        if (train.expertLrMult() != 1.0) rules.add(new AdamWConfig.LrRule("layers.*.moe.experts.*", train.expertLrMult()));
        if (train.routerLrMult() != 1.0) rules.add(new AdamWConfig.LrRule("layers.*.moe.router.*", train.routerLrMult()));
        if (train.ffnLrMult() != 1.0) rules.add(new AdamWConfig.LrRule("layers.*.ffn.*", train.ffnLrMult()));
        return new AdamWConfig(train.beta1(), train.beta2(), train.eps(), train.weightDecay(), rules);
    }

    /** The MoE layer template for a vocabulary of {@code vocabSize} tokens. */
    public MoeConfig moeConfig(int vocabSize) {
        Moe e = model.moe();
        return MoeConfig.builder().dModel(model.dModel()).numExperts(e.numExperts()).topK(e.topK())
                .expertHidden(e.expertHidden()).expertType(e.expertType()).router(e.router())
                .normalizeTopK(e.normalizeTopK()).routedScale((float) e.routedScale())
                .sharedExperts(e.sharedExperts()).sharedHidden(e.sharedHidden()).sharedGate(e.sharedGate())
                .dispatch(e.dispatch()).capacityRule(e.capacityRule()).capacityFactor(e.capacityFactor())
                .priority(e.priority()).groupSize(e.groupSize())
                .balanceLoss(e.balanceLoss()).balanceCoef(e.balanceCoef()).zLossCoef(e.zLossCoef())
                .nGroup(e.nGroup()).topkGroup(e.topkGroup()).biasUpdateSpeed(e.biasUpdateSpeed()).jitter(e.jitter())
                .noiseEps(e.noiseEps()).secondExpert(e.secondExpert()).topPThreshold(e.topPThreshold())
                .entropyCoef(e.entropyCoef()).l1Init(e.l1Init()).l1Multiplier(e.l1Multiplier())
                .vocabSize(vocabSize).seed(train.seed())
                .maxTokens(train.batch() * maxSeqLen())
                .build();
    }

    /**
     * The model shape for a vocabulary of {@code vocabSize} tokens ({@code model.vocabSize} wins when set). With
     * {@code model.dense} every block is dense with the matched hidden width (same attention).
     */
    public ModelConfig modelConfig(int vocabSize) {
        Model m = model;
        int v = m.vocabSize() > 0 ? m.vocabSize() : vocabSize;
        if (v <= 0) throw new ConfigException("model.vocabSize is unknown: set it or provide a tokenizer");
        int denseHidden = m.denseHidden() > 0 ? m.denseHidden() : matchedDenseHidden();
        return new ModelConfig(v, m.dModel(), m.layers(), m.heads(), m.kvHeads(), headDim(), maxSeqLen(),
                m.ropeTheta(), m.normEps(), m.qkNorm(), m.tiedEmbeddings(),
                m.dense() ? m.layers() : m.denseLayers(), denseHidden, moeConfig(v), m.initStd(), train.seed());
    }

    /**
     * Settings that are valid but almost certainly not meant, one sentence each naming the fields (empty when none).
     * {@link TrainRun} passes them to its warning sink before training.
     */
    public List<String> warnings() {
        List<String> w = new java.util.ArrayList<>();
        Moe e = model.moe();
        if (!model.dense() && e.topK() == 1 && e.normalizeTopK() && e.router().equals("softmax-topk")) {
            w.add("model.moe.topK = 1 with normalizeTopK = true: every gate weight is 1, so the router gets no gradient "
                    + "from the LM loss (only from the balance loss); use router=switch or normalizeTopK=false");
        }
        return w;
    }

    /** The matched dense baseline of this configuration (same everything, {@code model.dense = true}). */
    public TrainConfig dense() { return with("model.dense=true").with("name=" + name + "-dense"); }

    /** A one-line description ("tiny: MoE 2L d64 4e top-2 f128 softmax-topk"). */
    public String describe() {
        Model m = model;
        return String.format(Locale.ROOT, "%s: %s %dL d%d %dh", name, m.dense() ? "dense" : "MoE", m.layers(), m.dModel(), m.heads())
                + (m.dense() ? " ffn " + (m.denseHidden() > 0 ? m.denseHidden() : matchedDenseHidden())
                : String.format(Locale.ROOT, " %de top-%d f%d %s", m.moe().numExperts(), m.moe().topK(),
                m.moe().expertHidden(), m.moe().router()));
    }
}
