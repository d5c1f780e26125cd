package io.moe4j.infer.tokenizer;

import io.moe4j.infer.tokenizer.ChatTemplate.Message;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The Qwen2 (ChatML) and Llama-3 templates as published with the models, rendered to the exact expected prompts. */
class ChatTemplateTest {
    static String resource(String name) throws IOException {
        try (InputStream in = ChatTemplateTest.class.getResourceAsStream("/tokenizer/" + name)) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    @Test
    void qwen2ChatMl() throws IOException {
        ChatTemplate t = new ChatTemplate(resource("qwen2.jinja"), null, "<|endoftext|>");
        assertThat(t.render(List.of(Message.user("Hello")), true)).isEqualTo(
                "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n");
        assertThat(t.render(List.of(Message.system("Be brief."), Message.user("2+2?"), Message.assistant("4")), false)).isEqualTo(
                "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n");
    }

    @Test
    void llama3() throws IOException {
        ChatTemplate t = new ChatTemplate(resource("llama3.jinja"), "<|begin_of_text|>", "<|eot_id|>");
        // content is trimmed ("| trim" binds to the content, not to the concatenation)
        assertThat(t.render(List.of(Message.system("You are terse."), Message.user("  Hi there \n")), true)).isEqualTo(
                "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>"
                        + "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
                        + "<|start_header_id|>assistant<|end_header_id|>\n\n");
    }

    @Test
    void trimAndLstripBlocksAsInTransformers() {
        ChatTemplate t = new ChatTemplate("{% for m in messages %}\n  {% if m.role == 'user' %}\n[{{ m.content }}]\n  {% endif %}\n{% endfor %}", "", "");
        assertThat(t.render(List.of(Message.user("a"), Message.assistant("b"), Message.user("c")), false)).isEqualTo("[a]\n[c]\n");
    }

    @Test
    void jinjaFeaturesCommonTemplatesUse() {
        List<Message> msgs = List.of(Message.system(" sys "), Message.user("hi"), Message.assistant("yo"));
        String t = "{% set ns = namespace(n=0) %}{% for m in messages[1:] %}{% set ns.n = ns.n + 1 %}{{ m.role }}"
                + "{% if not loop.last %},{% endif %}{% endfor %}|{{ ns.n }}|{{ messages[0].content.strip() }}|{{ messages[-1] | tojson }}"
                + "|{% if tools is defined and tools %}tools{% else %}no tools{% endif %}"
                + "|{% for m in messages %}{% if m.role == 'assistant' %}{% generation %}{{ m.content }}{% endgeneration %}{% endif %}{% endfor %}";
        assertThat(new ChatTemplate(t, "", "").render(msgs, false))
                .isEqualTo("user,assistant|2|sys|{\"role\": \"assistant\", \"content\": \"yo\"}|no tools|yo");   // tojson as Python's json.dumps
    }

    @Test
    void expressionWhitespaceControl() {
        assertThat(ChatTemplate.applyExpressionWhitespaceControl("a \n {{- x -}} \n b {{ y }} c")).isEqualTo("a{{ x }}b {{ y }} c");
        assertThat(ChatTemplate.applyExpressionWhitespaceControl("{%- if a -%} {{- '}} -}}' -}}\n x{# {{- #}")).isEqualTo("{%- if a -%}{{ '}} -}}' }}x{# {{- #}");
        assertThat(new ChatTemplate("{% for m in messages %}\n  {{- m.content -}}\n{% endfor %}", "", "")
                .render(List.of(Message.user("a"), Message.user("b")), false)).isEqualTo("ab");
    }

    @Test
    void strftimeNowAsInTransformers() {
        assertThat(ChatTemplate.strftime("%d %b %Y, %A %H:%M 100%%", java.time.LocalDateTime.of(2024, 7, 6, 9, 5)))
                .isEqualTo("06 Jul 2024, Saturday 09:05 100%");
        String t = "{%- if strftime_now is defined %}{%- set date_string = strftime_now('%d %b %Y') %}{%- else %}"
                + "{%- set date_string = '26 Jul 2024' %}{%- endif %}Today Date: {{ date_string }}";
        assertThat(new ChatTemplate(t, "", "").render(List.of(Message.user("x")), false))
                .isEqualTo("Today Date: " + ChatTemplate.strftime("%d %b %Y", java.time.LocalDate.now()));
    }

    @Test
    void messageTextIsNeverInterpreted() {
        // jinjava's default "nested interpretation" would print 49 here: template injection through a user message
        ChatTemplate t = new ChatTemplate("{{ messages[0].content }}", "", "");
        assertThat(t.render(List.of(Message.user("{{ 7 * 7 }} {% if true %}x{% endif %}")), false)).isEqualTo("{{ 7 * 7 }} {% if true %}x{% endif %}");
    }

    @Test
    void raiseExceptionAbortsWithTheTemplatesMessage() {
        ChatTemplate t = new ChatTemplate("{% if messages[0]['role'] != 'user' %}{{ raise_exception('Conversation must start with a user message') }}"
                + "{% endif %}{{ messages[0]['content'] }}", "<s>", "</s>");
        assertThat(t.render(List.of(Message.user("ok")), false)).isEqualTo("ok");
        assertThatThrownBy(() -> t.render(List.of(Message.assistant("no")), false))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("Conversation must start with a user message");
    }

    @Test
    void unrenderableTemplateIsOneClearError() {
        for (String bad : List.of("{% if messages %}unclosed", "{% bogus %}x{% endbogus %}", "{{ messages[0]['content' }}")) {
            ChatTemplate t = new ChatTemplate(bad, "", "");
            assertThatThrownBy(() -> t.render(List.of(Message.user("x")), false)).as(bad)
                    .isInstanceOf(IllegalArgumentException.class).hasMessageStartingWith("chat template cannot be rendered");
        }
        // jinjava alone would render an unknown filter as "" and a stray end tag with only a warning
        assertThatThrownBy(() -> new ChatTemplate("{{ messages[0].content | no_such_filter }}", "", ""))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("unknown filter 'no_such_filter'");
        ChatTemplate v = new ChatTemplate("{{ messages[0].content }}{% endif %}", "", "");
        assertThatThrownBy(() -> v.render(List.of(Message.user("x")), false))
                .isInstanceOf(IllegalArgumentException.class).hasMessageStartingWith("chat template cannot be rendered");
        // a '|' inside a string literal is not a filter
        assertThat(new ChatTemplate("{{ 'a | b' + messages[0].content | trim }}", "", "").render(List.of(Message.user(" x ")), false))
                .isEqualTo("a | bx");
    }
}
