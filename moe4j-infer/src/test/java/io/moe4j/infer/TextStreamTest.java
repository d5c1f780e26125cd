package io.moe4j.infer;

import io.moe4j.tokenizer.ByteTokenizer;
import io.moe4j.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Streaming text: one byte per token (the worst split), so multi-byte characters arrive in pieces; the
 * concatenated pieces equal the whole decoded text, no piece ever holds a broken character, and stop strings cut
 * the text exactly (even when they straddle tokens).
 */
class TextStreamTest {
    private static final Tokenizer BYTES = new ByteTokenizer();

    private static int[] ids(String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        int[] ids = new int[b.length];
        for (int i = 0; i < b.length; i++) ids[i] = b[i] & 0xFF;   // ByteTokenizer: id = byte
        return ids;
    }

    @Test
    void multiByteCharactersSplitAcrossTokensArePrintedWhole() {
        String text = "héllo 😀 wörld — ✓";
        TextStream ts = new TextStream(BYTES, List.of(), null);
        StringBuilder out = new StringBuilder();
        for (int id : ids(text)) {
            String piece = ts.push(id);
            assertThat(piece).doesNotContain("\uFFFD");
            if (!piece.isEmpty()) assertThat(Character.isHighSurrogate(piece.charAt(piece.length() - 1))).isFalse();
            out.append(piece);
        }
        out.append(ts.finish());
        assertThat(out.toString()).isEqualTo(text).isEqualTo(ts.text());
    }

    @Test
    void stopStringEndsTheTextBeforeIt() {
        TextStream ts = new TextStream(BYTES, List.of("STOP", "\n\n"), null);
        StringBuilder out = new StringBuilder();
        for (int id : ids("one ST two STO three STOP four")) {
            out.append(ts.push(id));
            if (ts.stopped()) break;
        }
        out.append(ts.finish());
        assertThat(ts.stopped()).isTrue();
        assertThat(out.toString()).isEqualTo("one ST two STO three ");
    }

    @Test
    void heldBackPrefixIsReleasedAtTheEnd() {
        TextStream ts = new TextStream(BYTES, List.of("STOP"), null);
        StringBuilder out = new StringBuilder();
        for (int id : ids("ends with ST")) out.append(ts.push(id));
        assertThat(out.toString()).isEqualTo("ends with ");
        out.append(ts.finish());
        assertThat(out.toString()).isEqualTo("ends with ST");
        assertThat(ts.stopped()).isFalse();
    }

    @Test
    void stopIdsAreNotPrintedAndATruncatedCharacterBecomesReplacement() {
        byte[] smile = "😀".getBytes(StandardCharsets.UTF_8);
        TextStream ts = new TextStream(BYTES, List.of(), new int[]{'!'});
        StringBuilder out = new StringBuilder();
        out.append(ts.push('a')).append(ts.push('!')).append(ts.push(smile[0] & 0xFF)).append(ts.push(smile[1] & 0xFF));
        assertThat(out.toString()).isEqualTo("a");
        assertThat(ts.finish()).isEqualTo("\uFFFD");
    }
}
