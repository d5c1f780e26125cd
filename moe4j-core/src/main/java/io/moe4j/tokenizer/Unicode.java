package io.moe4j.tokenizer;

import java.nio.charset.StandardCharsets;

/**
 * The code point classes llama.cpp's pre-tokenizers test ({@code unicode_cpt_flags}: letter = \p{L}, number = \p{N},
 * whitespace = its explicit 25-code-point set, which is Python's {@code str.isspace} minus the information separators
 * 0x1C–0x1F), plus the UTF-8 helpers the tokenizers share.
 *
 * <p>The categories come from the JDK's Unicode tables, llama.cpp's from a generated copy of UnicodeData.txt; the two
 * can differ only on code points assigned in a newer Unicode version than the older of the two.
 */
final class Unicode {
    private Unicode() {}

    static boolean isLetter(int cp) {
        return switch (Character.getType(cp)) {
            case Character.UPPERCASE_LETTER, Character.LOWERCASE_LETTER, Character.TITLECASE_LETTER,
                 Character.MODIFIER_LETTER, Character.OTHER_LETTER -> true;
            default -> false;
        };
    }

    static boolean isNumber(int cp) {
        return switch (Character.getType(cp)) {
            case Character.DECIMAL_DIGIT_NUMBER, Character.LETTER_NUMBER, Character.OTHER_NUMBER -> true;
            default -> false;
        };
    }

    /** llama.cpp's {@code unicode_set_whitespace} (not Java's {@link Character#isWhitespace}, which differs on NBSP, 0x1C–0x1F). */
    static boolean isWhitespace(int cp) {
        return switch (cp) {
            case 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000 -> true;
            default -> cp >= 0x2000 && cp <= 0x200A;
        };
    }

    /**
     * Code points of {@code s} with lone surrogates replaced by U+FFFD: what a valid UTF-8 encoding of the string
     * holds (node and llama.cpp see the same), so every tokenizer works on well-formed text.
     */
    static int[] codePoints(String s) {
        // a plain loop: String.codePoints() goes through a spliterator and was the top of the encode profile
        int len = s.length();
        int[] cps = new int[len];
        int n = 0;
        for (int i = 0; i < len; ) {
            char c = s.charAt(i++);
            if (Character.isHighSurrogate(c) && i < len && Character.isLowSurrogate(s.charAt(i))) {
                cps[n++] = Character.toCodePoint(c, s.charAt(i++));
            } else {
                cps[n++] = Character.isSurrogate(c) ? 0xFFFD : c;
            }
        }
        return n == len ? cps : java.util.Arrays.copyOf(cps, n);
    }

    /** UTF-8 bytes of {@code s} with lone surrogates as U+FFFD (Java's encoder would write '?'). */
    static byte[] utf8(String s) {
        int[] cps = codePoints(s);
        return new String(cps, 0, cps.length).getBytes(StandardCharsets.UTF_8);
    }

    /** UTF-8 bytes of code points {@code [from, to)}. */
    static byte[] utf8(int[] cps, int from, int to) {
        return new String(cps, from, to - from).getBytes(StandardCharsets.UTF_8);
    }

    /** Decodes UTF-8, every malformed sequence becoming U+FFFD (the JDK decoder's REPLACE action). */
    static String decodeUtf8(byte[] b, int len) {
        return new String(b, 0, len, StandardCharsets.UTF_8);
    }
}
