package io.moe4j.tokenizer;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The ported llama.cpp scanners against (a) hand-checked splits and (b) the regexes they stand for, run by
 * java.util.regex on random strings over an alphabet of the characters every rule reacts to.
 */
class PreTokenizerTest {
    // llama.cpp's whitespace set is Unicode White_Space; spelled out so the oracle does not depend on regex flags.
    private static final String WS = "[\\t\\n\\x0B\\f\\r \\x85\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]";
    private static final String NWS = WS.replace("[", "[^");
    private static final String NOT_WS_L_N = "[^\\t\\n\\x0B\\f\\r \\x85\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000\\p{L}\\p{N}]";

    static final Pattern GPT2 = Pattern.compile(
            "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?" + NOT_WS_L_N + "+|" + WS + "+(?!" + NWS + ")|" + WS + "+");
    static Pattern llama3(String digits) {
        return Pattern.compile("(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}" + digits
                + "| ?" + NOT_WS_L_N + "+[\\r\\n]*|" + WS + "*[\\r\\n]+|" + WS + "+(?!" + NWS + ")|" + WS + "+");
    }

    /** llama.cpp's "default": four passes, each splitting the previous pieces into matches and what lies between. */
    static final List<Pattern> DEFAULT_PASSES = List.of(Pattern.compile("[\\p{P}$+<=>^~|]+"), GPT2,
            Pattern.compile("\\p{N}+"), Pattern.compile("[0-9][0-9][0-9]"));

    static List<String> split(PreTokenizer p, String s) {
        int[] cps = s.codePoints().toArray();
        List<String> out = new ArrayList<>();
        int start = 0;
        for (int end : p.split(cps)) {
            out.add(new String(cps, start, end - start));
            start = end;
        }
        return out;
    }

    static List<String> regexSplit(Pattern p, String s) {
        List<String> out = new ArrayList<>();
        Matcher m = p.matcher(s);
        int at = 0;
        while (at < s.length() && m.find(at)) {
            if (m.start() > at) out.add(s.substring(at, m.start()));   // unmatched stretch (not expected to happen)
            out.add(m.group());
            at = m.end();
        }
        if (at < s.length()) out.add(s.substring(at));
        return out;
    }

    @Test
    void handCheckedSplits() {
        assertThat(split(PreTokenizer.GPT2, "Hello world, I'LL don't 123456 ok")).containsExactly(
                "Hello", " world", ",", " I", "'", "LL", " don", "'t", " 123456", " ok");
        assertThat(split(PreTokenizer.LLAMA3, "Hello world, I'LL don't 123456789 ok")).containsExactly(
                "Hello", " world", ",", " I", "'LL", " don", "'t", " ", "123", "456", "789", " ok");
        assertThat(split(PreTokenizer.QWEN2, "x 1234")).containsExactly("x", " ", "1", "2", "3", "4");
        assertThat(split(PreTokenizer.GPT2, "a   b\n\n c")).containsExactly("a", "  ", " b", "\n\n", " c");
        assertThat(split(PreTokenizer.LLAMA3, "a   b\n\n c  ")).containsExactly("a", "  ", " b", "\n\n", " c", "  ");
        assertThat(split(PreTokenizer.LLAMA3, "\tif (x) {\n\t\treturn;\n}")).containsExactly(
                "\tif", " (", "x", ")", " {\n", "\t", "\treturn", ";\n", "}");   // a tab may prefix a word
        assertThat(split(PreTokenizer.LLAMA3, "")).isEmpty();
        assertThat(split(PreTokenizer.DEFAULT, "x=12345, (a+b)!")).containsExactly("x", "=", "123", "45", ",", " ", "(", "a", "+", "b", ")!");
    }

    @Test
    void scannersMatchTheirRegexesOnRandomText() {
        String[] alphabet = {" ", " ", " ", "\n", "\r", "\t", "a", "b", "Z", "é", "中", "1", "2", "3", "٣", "'", "s", "L", "l", "e",
                ",", "!", "-", "\u00A0", "\u3000", "😀", "\u0301", "\u2028", "½", "$", "+", "^", "`", "(", "«", "¿"};
        Random r = new Random(42);
        Pattern llama3 = llama3("{1,3}"), qwen2 = llama3("");
        for (int iter = 0; iter < 3000; iter++) {
            StringBuilder sb = new StringBuilder();
            int n = r.nextInt(20);
            for (int i = 0; i < n; i++) sb.append(alphabet[r.nextInt(alphabet.length)]);
            String s = sb.toString();
            assertThat(split(PreTokenizer.GPT2, s)).as("gpt2 on '%s'", s).isEqualTo(regexSplit(GPT2, s));
            assertThat(split(PreTokenizer.LLAMA3, s)).as("llama3 on '%s'", s).isEqualTo(regexSplit(llama3, s));
            assertThat(split(PreTokenizer.QWEN2, s)).as("qwen2 on '%s'", s).isEqualTo(regexSplit(qwen2, s));
            List<String> pieces = List.of(s);
            for (Pattern pass : DEFAULT_PASSES) {
                List<String> next = new ArrayList<>();
                for (String piece : pieces) next.addAll(regexSplit(pass, piece));
                pieces = next;
            }
            assertThat(split(PreTokenizer.DEFAULT, s)).as("default on '%s'", s).isEqualTo(pieces);
        }
    }

    @Test
    void ggufNames() {
        for (PreTokenizer p : PreTokenizer.values()) assertThat(PreTokenizer.ofGgufName(p.ggufName())).isSameAs(p);
        assertThat(PreTokenizer.ofGgufName("llama3")).isSameAs(PreTokenizer.LLAMA3);
        assertThat(PreTokenizer.ofGgufName("falcon")).isNull();
        assertThat(PreTokenizer.ofGgufName("gpt2")).isSameAs(PreTokenizer.GPT2);   // accepted, though llama.cpp wants gpt-2
    }
}
