package io.moe4j.cli;

import io.moe4j.infer.Generator;
import io.moe4j.infer.TextStream;
import io.moe4j.infer.RandomModels;
import io.moe4j.infer.tokenizer.ChatTemplate;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * {@code moe4j chat MODEL.gguf}: an interactive conversation. Each line of stdin is a user message; the whole
 * conversation is rendered with the model's chat template ({@link ChatTemplate}; ChatML if the file has none),
 * tokenized, and only the tokens after what the KV cache already holds are evaluated — the cache is kept across
 * turns (and cut back to the common prefix if the re-rendered conversation differs from what was generated).
 * {@code /exit} or end of input ends the chat. Works with stdin not a terminal (the "> " prompt is shown only on a
 * terminal).
 */
@Command(name = "chat", mixinStandardHelpOptions = true,
        description = "Chat with a GGUF model (one line = one message; /exit or end of input quits).")
final class ChatCommand implements Runnable {

    @Parameters(index = "0", paramLabel = "MODEL.gguf", description = "GGUF model file.")
    Path model;

    @Option(names = "--system", paramLabel = "TEXT", description = "A system message to start the conversation with.")
    String system;

    @Option(names = "--show-tokens", description = "After each reply, print how many tokens were evaluated and reused (stderr).")
    boolean showTokens;

    @Mixin
    InferenceOptions opts;

    @Override
    public void run() {
        PrintStream out = RunCommand.utf8(System.out);
        PrintStream err = System.err;
        boolean tty = System.console() != null && System.console().isTerminal();
        try (InferenceOptions.Session s = opts.open(model)) {
            ChatTemplate template;
            try {
                template = s.model.gguf().get("tokenizer.chat_template") != null ? ChatTemplate.fromGguf(s.model.gguf(), s.tokenizer)
                        : new ChatTemplate(RandomModels.CHATML, "", "");
            } catch (IllegalArgumentException e) {
                throw new UserException(e.getMessage());
            }
            if (s.model.gguf().get("tokenizer.chat_template") == null) err.println("moe4j: the model has no chat template; using ChatML");
            List<ChatTemplate.Message> messages = new ArrayList<>();
            if (system != null) messages.add(ChatTemplate.Message.system(system));
            int[] cached = new int[0];   // the tokens the cache holds for slot 0
            long promptTokens = 0, promptNanos = 0, genTokens = 0, genNanos = 0;
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
            Generator generator = new Generator(s.engine, s.sampler);
            int capacity = s.engine.cache().capacity();
            while (true) {
                if (tty) {
                    out.print("> ");
                    out.flush();
                }
                String line = in.readLine();
                if (line == null || line.strip().equals("/exit")) break;
                if (line.isBlank()) continue;
                messages.add(ChatTemplate.Message.user(line));
                String rendered;
                try {
                    rendered = template.render(messages, true);
                } catch (IllegalArgumentException e) {
                    throw new UserException(e.getMessage());
                }
                int[] ids = s.tokenizer.encode(rendered, true);
                if (s.tokenizer.addBos() && s.tokenizer.bos() >= 0 && (ids.length == 0 || ids[0] != s.tokenizer.bos())) {
                    int[] b = new int[ids.length + 1];
                    b[0] = s.tokenizer.bos();
                    System.arraycopy(ids, 0, b, 1, ids.length);
                    ids = b;
                }
                if (ids.length == 0) throw new UserException("the chat template rendered an empty prompt");
                int common = commonPrefix(cached, ids);
                if (common == ids.length) common--;   // at least one token to evaluate, for fresh logits
                if (ids.length >= capacity) {
                    throw new UserException("the conversation has " + ids.length + " tokens; the context holds " + capacity + " (raise --ctx-size)");
                }
                s.engine.cache().truncate(0, common);
                int[] fresh = Arrays.copyOfRange(ids, common, ids.length);
                TextStream text = new TextStream(s.tokenizer, opts.stops, s.stopIds);
                Generator.Result r = generator.generate(0, fresh, opts.maxTokens, s.stopIds, id -> {
                    out.print(text.push(id));
                    out.flush();
                    return !text.stopped();
                });
                out.print(text.finish());
                out.println();
                out.flush();
                // every generated token but the last was fed back: the cache holds ids + those
                int[] gen = r.tokens();
                int fed = Math.max(0, gen.length - 1);
                cached = Arrays.copyOf(ids, ids.length + fed);
                System.arraycopy(gen, 0, cached, ids.length, fed);
                if (s.engine.cache().length(0) != cached.length) {
                    throw new IllegalStateException("cache holds " + s.engine.cache().length(0) + " tokens, expected " + cached.length);
                }
                messages.add(ChatTemplate.Message.assistant(text.text()));
                promptTokens += fresh.length;
                promptNanos += r.promptNanos();
                genTokens += gen.length;
                genNanos += r.decodeNanos();
                if (showTokens) err.println("[evaluated " + fresh.length + " prompt tokens, reused " + common + " from the cache]");
            }
            s.finishTrace();
            err.println("prompt: " + InferenceOptions.rate((int) promptTokens, promptNanos));
            err.println("generation: " + InferenceOptions.rate((int) genTokens, genNanos));
            InferenceOptions.printStats(err, s);
        } catch (IOException e) {
            throw new UserException("chat: " + e.getMessage());
        }
    }

    static int commonPrefix(int[] a, int[] b) {
        int n = Math.min(a.length, b.length), i = 0;
        while (i < n && a[i] == b[i]) i++;
        return i;
    }
}
