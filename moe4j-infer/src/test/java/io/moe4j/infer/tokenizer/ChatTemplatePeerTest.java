package io.moe4j.infer.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.moe4j.infer.tokenizer.ChatTemplate.Message;
import io.moe4j.testutil.LlamaPeer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Our jinjava rendering against @huggingface/jinja (transformers.js's Jinja, installed with node-llama-cpp by
 * dev/setup-peers) on the same templates and conversations: the same text, or an error on both sides.
 */
class ChatTemplatePeerTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    record Conv(List<Message> messages, boolean addGenerationPrompt) {}

    static final List<Conv> CONVERSATIONS = List.of(
            new Conv(List.of(Message.user("Hello")), true),
            new Conv(List.of(Message.system("Be brief."), Message.user("2+2?"), Message.assistant("4"), Message.user(" and 3+3? \n")), true),
            new Conv(List.of(Message.system("sys"), Message.user("hi"), Message.assistant("hello")), false),
            new Conv(List.of(Message.assistant("I start")), false),
            new Conv(List.of(Message.user("ünïcödé 🙂 \"quotes\" 'single' {{ not a tag }}")), true));

    static final String FEATURES = "{% set ns = namespace(n=0) %}{% for m in messages[1:] %}{% set ns.n = ns.n + 1 %}{{ m.role }}"
            + "{% if not loop.last %},{% endif %}{% endfor %}|{{ ns.n }}|{{ messages[0].content | trim }}|{{ messages | length }}"
            + "|{% if tools is defined and tools %}tools{% else %}no tools{% endif %}\n"
            + "{% for m in messages %}\n  {% if m.role == 'user' %}\n[{{ m.content | upper }}]\n  {% endif %}\n{% endfor %}";

    static final String ALTERNATING = "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
            + "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
            + "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% else %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}";

    /** Whitespace control, filters, loop variables, dict methods and tests. */
    static final String WHITESPACE = "{%- for m in messages -%}\n  {{- '<|' + m.role + '|>\\n' -}}\n"
            + "  {{- m.content | replace('a', 'A') | lower -}}\n  {%- if not loop.last %}\n{{ loop.index }}/{{ loop.length }}\n{% endif -%}\n"
            + "{%- endfor -%}\n{%- if add_generation_prompt %}<|assistant|>{% endif %}"
            + "{% if messages[0].get('role') is not none and 'sys' in messages[0]['role'] %} has-system{% endif %}"
            + "{{ ' ' ~ (messages | map(attribute='role') | join(',')) }}";

    /** A system-message split as Llama 3.1 / Mistral templates do it, and JSON output. */
    static final String SYSTEM_SPLIT = "{%- if messages[0]['role'] == 'system' %}\n    {%- set system_message = messages[0]['content']|trim %}\n"
            + "    {%- set loop_messages = messages[1:] %}\n{%- else %}\n    {%- set system_message = '' %}\n    {%- set loop_messages = messages %}\n{%- endif %}\n"
            + "{{- bos_token }}{% if system_message %}[SYS]{{ system_message }}[/SYS]{% endif %}\n"
            + "{%- for message in loop_messages %}\n    {{- message | tojson }}\n    {%- if loop.last and add_generation_prompt %}{{ '\\n>' }}{% endif %}\n{%- endfor %}";

    static Path nodeModules() {
        for (Path d = Path.of("").toAbsolutePath(); d != null; d = d.getParent()) {
            Path p = d.resolve("peers/node/node_modules");
            if (Files.isDirectory(p.resolve("@huggingface/jinja"))) return p;
        }
        return null;
    }

    @Test
    void matchesHuggingFaceJinja(@TempDir Path dir) throws Exception {
        LlamaPeer.assumeAvailable();   // node itself
        Path modules = nodeModules();
        assumeTrue(modules != null, "no @huggingface/jinja in peers/node/node_modules; run dev/setup-peers");
        int compared = 0;
        for (String template : List.of(ChatTemplateTest.resource("qwen2.jinja"), ChatTemplateTest.resource("llama3.jinja"), FEATURES, ALTERNATING, WHITESPACE, SYSTEM_SPLIT,
                "{{ messages | tojson(indent=2) }}|{{ [] | tojson }}|{{ {'a': [1, true, none, 'x\\ty\"']} | tojson }}|{% if strftime_now is defined %}D{% endif %}")) {
            List<JsonNode> theirs = render(modules, template, dir);
            ChatTemplate ours = new ChatTemplate(template, "<s>", "</s>");
            for (int i = 0; i < CONVERSATIONS.size(); i++) {
                Conv c = CONVERSATIONS.get(i);
                JsonNode t = theirs.get(i);
                if (t.has("error")) {
                    String err = t.get("error").asText();
                    org.assertj.core.api.Assertions.assertThatThrownBy(() -> ours.render(c.messages(), c.addGenerationPrompt()))
                            .as("HF jinja failed with '%s'", err).isInstanceOf(IllegalArgumentException.class);
                } else {
                    assertThat(ours.render(c.messages(), c.addGenerationPrompt())).as("template %s, conversation %d", template, i)
                            .isEqualTo(t.get("text").asText());
                    compared++;
                }
            }
        }
        assertThat(compared).isGreaterThan(24);
    }

    static List<JsonNode> render(Path modules, String template, Path dir) throws IOException, InterruptedException {
        Path script = dir.resolve("render.mjs");
        if (!Files.exists(script)) {
            try (InputStream in = ChatTemplatePeerTest.class.getResourceAsStream("/tokenizer/render.mjs")) {
                Files.copy(in, script);
            }
        }
        ObjectNode root = JSON.createObjectNode().put("template", template);
        ArrayNode cases = root.putArray("cases");
        for (Conv c : CONVERSATIONS) {
            ObjectNode o = cases.addObject().put("add_generation_prompt", c.addGenerationPrompt()).put("bos_token", "<s>").put("eos_token", "</s>");
            ArrayNode ms = o.putArray("messages");
            for (Message m : c.messages()) ms.addObject().put("role", m.role()).put("content", m.content());
        }
        Path in = Files.createTempFile(dir, "tpl-", ".json"), out = Files.createTempFile(dir, "out-", ".json");
        JSON.writeValue(in.toFile(), root);
        Process p = new ProcessBuilder(System.getProperty("moe4j.node", "node"), script.toString(), modules.toString(), in.toString(), out.toString())
                .redirectErrorStream(true).start();
        String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) throw new IOException("render.mjs failed:\n" + log);
        List<JsonNode> results = new ArrayList<>();
        JSON.readTree(out.toFile()).get("results").forEach(results::add);
        return results;
    }
}
