package io.moe4j.cli;

import io.moe4j.bench.GenerateBench;
import io.moe4j.infer.KvCache;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/** {@code moe4j bench generate MODEL.gguf}: prompt, generation and batched-decode speed next to llama.cpp ({@link GenerateBench}). */
@Command(name = "generate", mixinStandardHelpOptions = true,
        description = {"Prompt processing, generation and batched decode tokens/s of a GGUF model, moe4j next to",
                "llama.cpp (node-llama-cpp in peers/node) in the same run. Make a model with 'bench make-model'."})
final class GenerateBenchCommand implements Runnable {

    @Parameters(index = "0", paramLabel = "MODEL.gguf", description = "GGUF model file.")
    Path model;

    @Option(names = "--prompt-tokens", paramLabel = "N", defaultValue = "128", description = "Prompt length (default ${DEFAULT-VALUE}).")
    int promptTokens;

    @Option(names = "--gen-tokens", paramLabel = "N", defaultValue = "32", description = "Decode steps (default ${DEFAULT-VALUE}).")
    int genTokens;

    @Option(names = "--threads", paramLabel = "N", defaultValue = "2", description = "moe4j's threads (default ${DEFAULT-VALUE}).")
    int threads;

    @Option(names = "--llama-threads", paramLabel = "LIST", defaultValue = "1,2", description = "llama.cpp's thread counts; compared at its best (default ${DEFAULT-VALUE}).")
    String llamaThreads;

    @Option(names = "--no-llama", description = "Measure moe4j only.")
    boolean noLlama;

    @Option(names = "--repeat", paramLabel = "N", defaultValue = "5", description = "Timed passes after one warm-up (default ${DEFAULT-VALUE}).")
    int repeat;

    @Option(names = "--batch-seqs", paramLabel = "N", defaultValue = "8", description = "Sequences decoded together (default ${DEFAULT-VALUE}).")
    int seqs;

    @Option(names = "--kv", paramLabel = "TYPE", defaultValue = "f16", description = "moe4j's KV cache: f16 (llama.cpp's default) or f32.")
    String kv;

    @Option(names = "--json", paramLabel = "FILE", description = "Also write the results as JSON to FILE.")
    Path json;

    @Override
    public void run() {
        if (!Files.isRegularFile(model)) throw new UserException("no such file: " + model);
        KvCache.Type kvType = switch (kv.toLowerCase(Locale.ROOT)) {
            case "f32" -> KvCache.Type.F32;
            case "f16" -> KvCache.Type.F16;
            default -> throw new UserException("--kv must be f32 or f16, got '" + kv + "'");
        };
        List<Integer> lt = noLlama ? List.of() : BenchCommand.Kernels.parseThreads(llamaThreads);
        GenerateBench.Config cfg;
        try {
            cfg = new GenerateBench.Config(model, promptTokens, genTokens, threads, lt, repeat, seqs, kvType);
        } catch (IllegalArgumentException e) {
            throw new UserException(e.getMessage(), 2);
        }
        if (json != null && json.toAbsolutePath().getParent() != null && !Files.isDirectory(json.toAbsolutePath().getParent())) {
            throw new UserException("--json: directory does not exist: " + json.toAbsolutePath().getParent(), 2);
        }
        try {
            GenerateBench.Report r = GenerateBench.run(cfg, System.out, System.err);
            if (json != null) {
                Path tmp = json.resolveSibling(json.getFileName() + ".tmp");
                Files.writeString(tmp, r.toJson(), StandardCharsets.UTF_8);
                Files.move(tmp, json, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
                System.out.println("JSON written to " + json);
            }
        } catch (IOException e) {
            throw new UserException("bench generate: " + e.getMessage());
        }
    }
}
