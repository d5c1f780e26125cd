package io.moe4j.infer.tokenizer;

import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.lib.filter.AdvancedFilter;

import java.lang.reflect.Array;
import java.util.Map;

/**
 * The {@code tojson} filter as transformers defines it for chat templates: Python's
 * {@code json.dumps(x, ensure_ascii=False, indent=indent)}, so {@code {"role": "user"}} with a space after each
 * separator, non-ASCII text as is, and with {@code indent} one item per line. jinjava's own {@code tojson} writes
 * compact JSON, which changes the prompt (found by ChatTemplatePeerTest). Keys keep their insertion order
 * ({@code sort_keys} is not supported).
 */
final class PythonToJsonFilter implements AdvancedFilter {
    @Override
    public String getName() { return "tojson"; }

    @Override
    public Object filter(Object var, JinjavaInterpreter interpreter, Object[] args, Map<String, Object> kwargs) {
        Object indent = kwargs.containsKey("indent") ? kwargs.get("indent") : args.length > 0 ? args[0] : null;
        int n = indent == null ? -1 : ((Number) indent).intValue();
        StringBuilder sb = new StringBuilder();
        dump(var, n, 0, sb);
        return sb.toString();
    }

    static void dump(Object v, int indent, int depth, StringBuilder sb) {
        if (v == null) {
            sb.append("null");
        } else if (v instanceof Boolean b) {
            sb.append(b ? "true" : "false");
        } else if (v instanceof Integer || v instanceof Long || v instanceof Short || v instanceof Byte) {
            sb.append(v);
        } else if (v instanceof Number num) {
            sb.append(num.doubleValue());   // as Python for ordinary values (1.0, 0.5); exponents are spelled differently
        } else if (v instanceof CharSequence s) {
            string(s.toString(), sb);
        } else if (v instanceof Map<?, ?> m) {
            if (m.isEmpty()) { sb.append("{}"); return; }
            sb.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : m.entrySet()) {
                if (!first) sb.append(indent < 0 ? ", " : ",");
                first = false;
                newline(indent, depth + 1, sb);
                string(String.valueOf(e.getKey()), sb);
                sb.append(": ");
                dump(e.getValue(), indent, depth + 1, sb);
            }
            newline(indent, depth, sb);
            sb.append('}');
        } else if (v instanceof Iterable<?> || v.getClass().isArray()) {
            Iterable<?> it = v instanceof Iterable<?> i ? i : () -> new java.util.Iterator<>() {
                int k;
                public boolean hasNext() { return k < Array.getLength(v); }
                public Object next() { return Array.get(v, k++); }
            };
            StringBuilder inner = new StringBuilder();
            boolean first = true;
            for (Object o : it) {
                if (!first) inner.append(indent < 0 ? ", " : ",");
                first = false;
                newline(indent, depth + 1, inner);
                dump(o, indent, depth + 1, inner);
            }
            if (first) { sb.append("[]"); return; }
            sb.append('[').append(inner);
            newline(indent, depth, sb);
            sb.append(']');
        } else {
            string(v.toString(), sb);
        }
    }

    private static void newline(int indent, int depth, StringBuilder sb) {
        if (indent < 0) return;
        sb.append('\n');
        sb.append(" ".repeat(indent * depth));
    }

    /** A JSON string as json.dumps(ensure_ascii=False) writes it. */
    private static void string(String s, StringBuilder sb) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                case '\b' -> sb.append("\\b");
                case '\f' -> sb.append("\\f");
                default -> {
                    if (c < 0x20) sb.append(String.format("\\u%04x", (int) c));
                    else sb.append(c);
                }
            }
        }
        sb.append('"');
    }
}
