package io.moe4j.cli;

import io.moe4j.infer.Generator;
import io.moe4j.infer.TextStream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * {@code moe4j run MODEL.gguf -p TEXT}: tokenizes the prompt with the model's tokenizer (BOS as the GGUF says,
 * special-token text recognised as llama.cpp does), streams the continuation to stdout as it is generated, then
 * prints prompt and generation speed (and the MoE options' summaries) to stderr.
 */
@Command(name = "run", mixinStandardHelpOptions = true,
        description = "Generate text from a prompt with a GGUF model, streaming the output.")
final class RunCommand implements Runnable {

    @Parameters(index = "0", paramLabel = "MODEL.gguf", description = "GGUF model file.")
    Path model;

    @Option(names = {"-p", "--prompt"}, required = true, paramLabel = "TEXT", description = "The prompt.")
    String prompt;

    @Option(names = "--no-bos", description = "Do not add BOS even if the model asks for it.")
    boolean noBos;

    @Mixin
    InferenceOptions opts;

    @Override
    public void run() {
        PrintStream out = utf8(System.out);
        try (InferenceOptions.Session s = opts.open(model)) {
            int[] ids = noBos ? s.tokenizer.encode(prompt, true) : s.tokenizer.encodePrompt(prompt, true);
            if (ids.length == 0) throw new UserException("the prompt is empty after tokenization (give some text, or drop --no-bos)");
            if (ids.length >= s.engine.cache().capacity()) {
                throw new UserException("the prompt has " + ids.length + " tokens; the context holds " + s.engine.cache().capacity() + " (raise --ctx-size)");
            }
            TextStream text = new TextStream(s.tokenizer, opts.stops, s.stopIds);
            PrintStream o = out;
            Generator.Result r = new Generator(s.engine, s.sampler).generate(0, ids, opts.maxTokens, s.stopIds, id -> {
                o.print(text.push(id));
                o.flush();
                return !text.stopped();
            });
            out.print(text.finish());
            out.println();
            out.flush();
            s.finishTrace();
            PrintStream err = System.err;
            err.println("prompt: " + InferenceOptions.rate(ids.length, r.promptNanos()));
            err.println("generation: " + InferenceOptions.rate(r.tokens().length, r.decodeNanos()) + ", stopped by "
                    + (text.stopped() ? "stop string" : r.reason().name().toLowerCase().replace('_', ' ')));
            InferenceOptions.printStats(err, s);
        } catch (IOException e) {
            throw new UserException("--trace-experts: cannot write " + opts.traceFile + ": " + e.getMessage());
        }
    }

    /** System.out as UTF-8 whatever the platform default (tests replace System.out; keep theirs). */
    static PrintStream utf8(PrintStream s) {
        return new PrintStream(s, true, StandardCharsets.UTF_8);
    }
}
