package io.moe4j.infer.tokenizer;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import com.hubspot.jinjava.lib.tag.Tag;
import com.hubspot.jinjava.tree.Node;
import com.hubspot.jinjava.tree.TagNode;
import io.moe4j.gguf.GgufFile;
import io.moe4j.gguf.GgufValue;
import io.moe4j.gguf.GgufValueType;
import io.moe4j.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A model's chat template ({@code tokenizer.chat_template}, a Hugging Face Jinja2 template) rendered with jinjava,
 * set up as transformers' {@code apply_chat_template} sets up Jinja2: {@code trim_blocks} and
 * {@code lstrip_blocks} on, variables {@code messages} (a list of {@code {role, content}} maps),
 * {@code add_generation_prompt}, {@code bos_token}, {@code eos_token}, a {@code raise_exception(message)}
 * function that aborts rendering with that message, {@code strftime_now(format)}, Python-style {@code tojson}.
 * Where jinjava's defaults differ from Jinja2 in ways that change the prompt, this class overrides them (no
 * evaluation of template syntax inside message text, <code>{{-</code>/<code>-}}</code> whitespace control, {@code tojson}
 * spacing); {@code ChatTemplatePeerTest} compares the output with @huggingface/jinja.
 *
 * <p>Any error jinjava reports — a syntax it cannot parse, an unknown filter, {@code raise_exception} — becomes one
 * {@link IllegalArgumentException} with jinjava's message and line; a template that renders with errors is never
 * returned half-done. Thread-safe (a Jinjava instance per template, rendering keeps no state).
 *
 * <p>Non-goals: tool calling ({@code tools}, {@code tool_calls}: undefined, so templates take their no-tools
 * branch), multimodal content parts. jinjava covers what the common templates use (slices, {@code namespace},
 * {@code loop.last}, {@code is defined}, {@code tojson}, {@code selectattr}, {@code .strip()}); transformers'
 * {@code {% generation %}} tag renders its body.
 */
public final class ChatTemplate {
    /** One chat message. */
    public record Message(String role, String content) {
        public Message {
            Objects.requireNonNull(role, "role");
            Objects.requireNonNull(content, "content");
        }
        public static Message system(String c) { return new Message("system", c); }
        public static Message user(String c) { return new Message("user", c); }
        public static Message assistant(String c) { return new Message("assistant", c); }
    }

    private final String template;
    private final String source;   // the template with {{- / -}} whitespace control applied (jinjava ignores it)
    private final String bosToken, eosToken;
    private final Jinjava jinjava;

    /** {@code bosToken}/{@code eosToken} are the strings the template sees (empty if the model has none). */
    public ChatTemplate(String template, String bosToken, String eosToken) {
        this.template = Objects.requireNonNull(template, "template");
        this.source = applyExpressionWhitespaceControl(template);
        this.bosToken = bosToken == null ? "" : bosToken;
        this.eosToken = eosToken == null ? "" : eosToken;
        // Nested interpretation off: jinjava would otherwise evaluate "{{ ... }}" found inside a message's text —
        // template injection from user input, and a different prompt than transformers renders.
        JinjavaConfig config = JinjavaConfig.newBuilder().withTrimBlocks(true).withLstripBlocks(true)
                .withNestedInterpretationEnabled(false).build();
        this.jinjava = new Jinjava(config);
        jinjava.getGlobalContext().registerFunction(
                new ELFunctionDefinition("", "raise_exception", ChatTemplate.class, "raiseException", String.class));
        jinjava.getGlobalContext().registerFunction(
                new ELFunctionDefinition("", "strftime_now", ChatTemplate.class, "strftimeNow", String.class));
        jinjava.getGlobalContext().registerTag(new GenerationTag());
        jinjava.getGlobalContext().registerFilter(new PythonToJsonFilter());   // replaces jinjava's compact tojson
        checkFilters();
    }

    private static final Pattern TAG = Pattern.compile("\\{\\{(.*?)}}|\\{%(.*?)%}", Pattern.DOTALL);
    private static final Pattern STRING = Pattern.compile("'(?:[^'\\\\]|\\\\.)*'|\"(?:[^\"\\\\]|\\\\.)*\"");
    private static final Pattern FILTER = Pattern.compile("\\|\\s*([A-Za-z_]\\w*)");

    /**
     * jinjava renders an unknown filter as an empty string without reporting anything, which would silently drop
     * message text from a prompt; Jinja2 refuses such a template. So every {@code | name} inside a tag (string
     * literals skipped) must be a filter jinjava has.
     */
    private void checkFilters() {
        Matcher tag = TAG.matcher(source);
        while (tag.find()) {
            String expr = STRING.matcher(tag.group(1) != null ? tag.group(1) : tag.group(2)).replaceAll("''");
            Matcher f = FILTER.matcher(expr);
            while (f.find()) {
                if (jinjava.getGlobalContext().getFilter(f.group(1)) == null) {
                    throw new IllegalArgumentException("chat template cannot be rendered: unknown filter '" + f.group(1) + "'");
                }
            }
        }
    }

    /** The template in {@code gguf}'s {@code tokenizer.chat_template}, with BOS/EOS strings from {@code tokenizer}. */
    public static ChatTemplate fromGguf(GgufFile gguf, Tokenizer tokenizer) {
        GgufValue v = gguf.get(GgufTokenizers.CHAT_TEMPLATE);
        if (v == null) throw new IllegalArgumentException(gguf.name() + ": missing metadata key " + GgufTokenizers.CHAT_TEMPLATE);
        if (v.type() != GgufValueType.STRING) {
            throw new IllegalArgumentException(gguf.name() + ": " + GgufTokenizers.CHAT_TEMPLATE + " must be a STRING, it is a " + v.type());
        }
        String bos = tokenizer.bos() >= 0 ? tokenizer.tokenText(tokenizer.bos()) : "";
        String eos = tokenizer.eos() >= 0 ? tokenizer.tokenText(tokenizer.eos()) : "";
        return new ChatTemplate(v.asString(), bos, eos);
    }

    public String template() { return template; }

    /**
     * transformers' {@code {% generation %}…{% endgeneration %}}: marks the assistant's text for training masks and
     * renders its body unchanged.
     */
    static final class GenerationTag implements Tag {
        @Override public String getName() { return "generation"; }
        @Override public String getEndTagName() { return "endgeneration"; }

        @Override
        public String interpret(TagNode tagNode, JinjavaInterpreter interpreter) {
            StringBuilder sb = new StringBuilder();
            for (Node child : tagNode.getChildren()) sb.append(child.render(interpreter).getValue());
            return sb.toString();
        }
    }

    /** Python strftime directives → DateTimeFormatter patterns (the ones chat templates use). */
    private static final Map<Character, String> STRFTIME = Map.ofEntries(Map.entry('d', "dd"), Map.entry('b', "MMM"),
            Map.entry('B', "MMMM"), Map.entry('m', "MM"), Map.entry('Y', "yyyy"), Map.entry('y', "yy"), Map.entry('H', "HH"),
            Map.entry('I', "hh"), Map.entry('M', "mm"), Map.entry('S', "ss"), Map.entry('p', "a"), Map.entry('A', "EEEE"),
            Map.entry('a', "EEE"), Map.entry('j', "DDD"));

    /** The Jinja {@code strftime_now(format)} function of transformers: the local time in a Python strftime format. */
    public static String strftimeNow(String format) {
        return strftime(format, java.time.LocalDateTime.now());
    }

    static String strftime(String format, java.time.temporal.TemporalAccessor t) {
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < format.length(); i++) {
            char c = format.charAt(i);
            if (c != '%' || i + 1 == format.length()) { out.append(c); continue; }
            char d = format.charAt(++i);
            if (d == '%') { out.append('%'); continue; }
            String pattern = STRFTIME.get(d);
            if (pattern == null) throw new TemplateException("strftime_now: unsupported directive %" + d);
            out.append(java.time.format.DateTimeFormatter.ofPattern(pattern, java.util.Locale.ENGLISH).format(t));
        }
        return out.toString();
    }

    /** Thrown by the template's {@code raise_exception}; jinjava reports it as a template error. */
    public static final class TemplateException extends RuntimeException {
        TemplateException(String message) { super(message); }
    }

    /** The Jinja {@code raise_exception(message)} function. */
    public static Object raiseException(String message) {
        throw new TemplateException(message);
    }

    /** The prompt text for {@code messages}; with {@code addGenerationPrompt}, ending where the assistant's reply starts. */
    public String render(List<Message> messages, boolean addGenerationPrompt) {
        List<Map<String, Object>> msgs = new ArrayList<>();
        for (Message m : messages) {
            Map<String, Object> map = new LinkedHashMap<>();
            map.put("role", m.role());
            map.put("content", m.content());
            msgs.add(map);
        }
        Map<String, Object> vars = new HashMap<>();
        vars.put("messages", msgs);
        vars.put("add_generation_prompt", addGenerationPrompt);
        vars.put("bos_token", bosToken);
        vars.put("eos_token", eosToken);
        // a variable of the function's name, so "strftime_now is defined" holds as in transformers (Llama 3.1+
        // templates test it before putting today's date into the system prompt); calls still reach the function
        vars.put("strftime_now", true);
        RenderResult r;
        try {
            r = jinjava.renderForResult(source, vars);
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("chat template cannot be rendered: " + rootMessage(e), e);
        }
        List<String> problems = new ArrayList<>();
        for (TemplateError e : r.getErrors()) {
            // fatal errors, and syntax errors jinjava only warns about (a stray {% endif %}) that Jinja2 refuses
            if (e.getSeverity() != TemplateError.ErrorType.FATAL && e.getReason() != TemplateError.ErrorReason.SYNTAX_ERROR) continue;
            String msg = e.getException() != null ? rootMessage(e.getException()) : e.getMessage();
            problems.add((e.getLineno() > 0 ? "line " + e.getLineno() + ": " : "") + msg);
        }
        if (!problems.isEmpty()) throw new IllegalArgumentException("chat template cannot be rendered: " + String.join("; ", problems));
        return r.getOutput();
    }

    /**
     * Jinja's <code>{{-</code> and <code>-}}</code> strip the whitespace before / after an expression; jinjava
     * honours the dash only on block tags and would print the newlines and indentation that templates lay their
     * expressions out with. So the stripping is done here, on the template text. String literals inside tags are
     * skipped when looking for a tag's end.
     */
    static String applyExpressionWhitespaceControl(String t) {
        StringBuilder out = new StringBuilder(t.length());
        int i = 0;
        boolean stripNext = false;
        while (i < t.length()) {
            int open = t.indexOf('{', i);
            while (open >= 0 && open + 1 < t.length() && "{%#".indexOf(t.charAt(open + 1)) < 0) open = t.indexOf('{', open + 1);
            if (open < 0 || open + 1 >= t.length()) {
                appendText(out, t.substring(i), stripNext);
                break;
            }
            appendText(out, t.substring(i, open), stripNext);
            char kind = t.charAt(open + 1);
            String close = kind == '{' ? "}}" : kind == '%' ? "%}" : "#}";
            int end = tagEnd(t, open + 2, close, kind != '#');
            if (end < 0) {   // unterminated: leave the rest to jinjava's error reporting
                out.append(t, open, t.length());
                break;
            }
            String tag = t.substring(open, end + 2);
            stripNext = false;
            if (kind == '{') {
                if (tag.startsWith("{{-")) {
                    int k = out.length();
                    while (k > 0 && Character.isWhitespace(out.charAt(k - 1))) k--;
                    out.setLength(k);
                    tag = "{{" + tag.substring(3);
                }
                if (tag.endsWith("-}}") && tag.length() >= 5) {
                    tag = tag.substring(0, tag.length() - 3) + "}}";
                    stripNext = true;
                }
            }
            out.append(tag);
            i = end + 2;
        }
        return out.toString();
    }

    private static void appendText(StringBuilder out, String text, boolean stripLeading) {
        int k = 0;
        if (stripLeading) while (k < text.length() && Character.isWhitespace(text.charAt(k))) k++;
        out.append(text, k, text.length());
    }

    /** Index of {@code close} ending a tag whose body starts at {@code from}, skipping quoted strings; −1 if none. */
    private static int tagEnd(String t, int from, String close, boolean quotes) {
        char quote = 0;
        for (int i = from; i < t.length(); i++) {
            char c = t.charAt(i);
            if (quote != 0) {
                if (c == '\\') i++;
                else if (c == quote) quote = 0;
            } else if (quotes && (c == '\'' || c == '"')) {
                quote = c;
            } else if (t.startsWith(close, i)) {
                return i;
            }
        }
        return -1;
    }

    /** The innermost message, so raise_exception's text is not buried under jinjava's wrappers. */
    private static String rootMessage(Throwable e) {
        Throwable t = e;
        while (t.getCause() != null && t.getCause() != t) t = t.getCause();
        if (t instanceof TemplateException) return t.getMessage();
        return t.getMessage() != null ? t.getMessage() : t.toString();
    }
}
