package io.moe4j.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.moe4j.gguf.GgufFormatException;
import io.moe4j.infer.Engine;
import io.moe4j.infer.KvCache;
import io.moe4j.infer.Model;
import io.moe4j.infer.ModelFormatException;
import io.moe4j.parallel.WorkerPool;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * {@code moe4j logits MODEL.gguf --tokens 1,2,3}: evaluates exactly those token ids (no tokenizer, no BOS added)
 * as one prompt and prints the full next-token logit vector after the last one — the raw material of
 * differential checks against llama.cpp or PyTorch. Text output: the top 10 with probabilities and a summary;
 * {@code --json}: {@code {"tokens":[...],"logits":[...]}}.
 *
 * <p>Bad input (missing file, malformed GGUF, unsupported architecture or tensor type, an id outside the
 * vocabulary) is one line on stderr, exit 1.
 */
@Command(name = "logits", mixinStandardHelpOptions = true,
        description = "Evaluate token ids on a GGUF model and print the next-token logits after the last one.")
final class LogitsCommand implements Runnable {

    @Parameters(index = "0", paramLabel = "MODEL.gguf", description = "GGUF model file.")
    Path model;

    @Option(names = "--tokens", required = true, paramLabel = "IDS", description = "Comma-separated token ids, e.g. 1,15043,3186.")
    String tokens;

    @Option(names = "--json", description = "Print {\"tokens\":[...],\"logits\":[...]} instead of a summary.")
    boolean json;

    @Option(names = "--threads", paramLabel = "N", description = "Worker threads (default: available processors).")
    Integer threads;

    @Option(names = "--no-repack", description = "Compute with the file's Q8_0/Q4_0 layout (memory-mapped) instead of 16-row groups.")
    boolean noRepack;

    @Option(names = "--kv", paramLabel = "TYPE", description = "KV cache type: f32 (default) or f16.")
    String kv = "f32";

    @Option(names = "--batch", paramLabel = "N", description = "Prompt tokens evaluated together (default 512).")
    int batch = 512;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        int[] ids = parseIds(tokens);
        KvCache.Type kvType = switch (kv.toLowerCase(Locale.ROOT)) {
            case "f32" -> KvCache.Type.F32;
            case "f16" -> KvCache.Type.F16;
            default -> throw new UserException("--kv must be f32 or f16, got '" + kv + "'");
        };
        if (threads != null && threads < 1) throw new UserException("--threads must be >= 1, got " + threads);
        if (batch < 1) throw new UserException("--batch must be >= 1, got " + batch);
        if (!Files.exists(model)) throw new UserException("no such file: " + model);
        if (Files.isDirectory(model)) throw new UserException(model + " is a directory, not a GGUF file");

        float[] logits;
        long nanos;
        String arch;
        try (Model m = Model.open(model, !noRepack && Model.repackByDefault());
             WorkerPool pool = new WorkerPool(threads != null ? threads : WorkerPool.defaultThreads())) {
            int vocab = m.hyperParams().vocab();
            for (int i = 0; i < ids.length; i++) {
                if (ids[i] >= vocab) {
                    throw new UserException("token id " + ids[i] + " (position " + i + ") is outside the vocabulary [0, " + vocab + ") of " + model);
                }
            }
            arch = m.hyperParams().arch().ggufName();
            Engine.Options o = Engine.Options.defaults().withMaxBatch(Math.min(batch, ids.length))
                    .withContextLength(ids.length).withKvType(kvType).withMaxOutputs(1);
            try (Engine e = new Engine(m, pool, o)) {
                long t0 = System.nanoTime();
                logits = e.evaluate(0, ids);
                nanos = System.nanoTime() - t0;
            }
        } catch (GgufFormatException e) {
            throw new UserException("not a valid GGUF file: " + e.getMessage());
        } catch (ModelFormatException e) {
            throw new UserException(e.getMessage());
        } catch (IOException e) {
            throw new UserException("cannot read " + model + ": " + e.getMessage());
        }

        PrintWriter out = spec.commandLine().getOut();
        if (json) {
            Map<String, Object> o = new LinkedHashMap<>();
            List<Integer> t = new ArrayList<>();
            for (int id : ids) t.add(id);
            List<Object> l = new ArrayList<>(logits.length);
            for (float v : logits) l.add(Float.isFinite(v) ? (Object) v : null);   // JSON has no NaN / infinity
            o.put("tokens", t);
            o.put("logits", l);
            try {
                out.println(new ObjectMapper().writeValueAsString(o));
            } catch (JsonProcessingException e) {
                throw new IllegalStateException(e);
            }
        } else {
            printText(out, arch, ids, logits, nanos);
        }
        out.flush();
    }

    static int[] parseIds(String s) {
        String[] parts = s.split(",", -1);
        int[] ids = new int[parts.length];
        for (int i = 0; i < parts.length; i++) {
            String p = parts[i].trim();
            try {
                ids[i] = Integer.parseInt(p);
            } catch (NumberFormatException e) {
                throw new UserException("--tokens: '" + p + "' is not a token id (expected comma-separated integers like 1,2,3)");
            }
            if (ids[i] < 0) throw new UserException("--tokens: token id " + ids[i] + " is negative");
        }
        return ids;
    }

    private static void printText(PrintWriter out, String arch, int[] ids, float[] logits, long nanos) {
        int n = logits.length;
        double max = Double.NEGATIVE_INFINITY, min = Double.POSITIVE_INFINITY, sum = 0;
        for (float v : logits) {
            max = Math.max(max, v);
            min = Math.min(min, v);
            sum += v;
        }
        double z = 0;
        for (float v : logits) z += Math.exp(v - max);
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) order[i] = i;
        java.util.Arrays.sort(order, (a, b) -> Float.compare(logits[b], logits[a]));
        out.printf(Locale.ROOT, "%s: %d tokens evaluated in %.1f ms, vocabulary %d%n", arch, ids.length, nanos / 1e6, n);
        out.printf(Locale.ROOT, "logits: min %.4f  max %.4f  mean %.4f%n", min, max, sum / n);
        out.println("top 10:");
        out.println("  rank      id       logit    prob");
        for (int r = 0; r < Math.min(10, n); r++) {
            int id = order[r];
            out.printf(Locale.ROOT, "  %4d  %6d  %10.4f  %6.4f%n", r + 1, id, logits[id], Math.exp(logits[id] - max) / z);
        }
    }
}
