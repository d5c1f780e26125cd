package io.moe4j.tokenizer;

/**
 * GPT-2's byte ⇄ unicode mapping: every byte gets a printable code point so byte-level BPE vocabularies are plain
 * strings (the space 0x20 is {@code Ġ} U+0120, the newline {@code Ċ} U+010A). Printable Latin-1 bytes ('!'–'~',
 * '¡'–'¬', '®'–'ÿ') map to themselves; the other 68 take U+0100 upwards in byte order.
 */
public final class ByteLevel {
    private static final char[] BYTE_TO_CHAR = new char[256];
    private static final int[] CHAR_TO_BYTE = new int[324];   // 256 + 68 is the highest mapped char + 1

    static {
        java.util.Arrays.fill(CHAR_TO_BYTE, -1);
        int n = 0;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            char c = printable ? (char) b : (char) (256 + n++);
            BYTE_TO_CHAR[b] = c;
            CHAR_TO_BYTE[c] = b;
        }
    }

    private ByteLevel() {}

    /** The code point standing for byte {@code b} (0–255). */
    public static char charOf(int b) { return BYTE_TO_CHAR[b & 0xFF]; }

    /** The byte a mapped char stands for, or −1 if {@code c} is not one of the 256. */
    public static int byteOf(int c) { return c >= 0 && c < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[c] : -1; }

    /** Bytes → the byte-level string. */
    public static String encode(byte[] bytes, int from, int to) {
        char[] cs = new char[to - from];
        for (int i = from; i < to; i++) cs[i - from] = BYTE_TO_CHAR[bytes[i] & 0xFF];
        return new String(cs);
    }

    public static String encode(byte[] bytes) { return encode(bytes, 0, bytes.length); }

    /** The byte-level string of the UTF-8 encoding of code points {@code [from, to)} (valid scalar values), in one allocation. */
    public static String encodeUtf8(int[] cps, int from, int to) {
        char[] out = new char[4 * (to - from)];
        int n = 0;
        for (int i = from; i < to; i++) {
            int cp = cps[i];
            if (cp < 0x80) {
                out[n++] = BYTE_TO_CHAR[cp];
            } else if (cp < 0x800) {
                out[n++] = BYTE_TO_CHAR[0xC0 | cp >> 6];
                out[n++] = BYTE_TO_CHAR[0x80 | cp & 0x3F];
            } else if (cp < 0x10000) {
                out[n++] = BYTE_TO_CHAR[0xE0 | cp >> 12];
                out[n++] = BYTE_TO_CHAR[0x80 | cp >> 6 & 0x3F];
                out[n++] = BYTE_TO_CHAR[0x80 | cp & 0x3F];
            } else {
                out[n++] = BYTE_TO_CHAR[0xF0 | cp >> 18];
                out[n++] = BYTE_TO_CHAR[0x80 | cp >> 12 & 0x3F];
                out[n++] = BYTE_TO_CHAR[0x80 | cp >> 6 & 0x3F];
                out[n++] = BYTE_TO_CHAR[0x80 | cp & 0x3F];
            }
        }
        return new String(out, 0, n);
    }

    /** The byte-level string → bytes, or {@code null} if it holds a char outside the mapping. */
    public static byte[] decode(String s) {
        byte[] out = new byte[s.length()];
        for (int i = 0; i < s.length(); i++) {
            int b = byteOf(s.charAt(i));
            if (b < 0) return null;
            out[i] = (byte) b;
        }
        return out;
    }
}
