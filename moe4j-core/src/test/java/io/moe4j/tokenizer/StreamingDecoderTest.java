package io.moe4j.tokenizer;

import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/** Token-by-token decoding equals whole decoding, and never prints half a character. */
class StreamingDecoderTest {
    @Provide
    Arbitrary<String> text() {
        return Arbitraries.oneOf(
                Arbitraries.integers().between(0, 0x10FFFF).filter(cp -> cp < 0xD800 || cp > 0xDFFF).list().ofMaxSize(30)
                        .map(l -> new String(l.stream().mapToInt(Integer::intValue).toArray(), 0, l.size())),
                Arbitraries.of(" héllo wörld", "🙂👍🏽 emoji", "日本語", " a  b\n"));
    }

    @Property(tries = 200)
    void streamEqualsDecode(@ForAll("text") String s) {
        for (Tokenizer t : List.<Tokenizer>of(ByteLevelBpeTest.trained(PreTokenizer.LLAMA3), SentencePieceBpeTest.trained(), new ByteTokenizer())) {
            int[] ids = t.encode(s);
            StreamingDecoder d = new StreamingDecoder(t);
            StringBuilder sb = new StringBuilder();
            for (int id : ids) {
                String piece = d.push(id);
                if (s.indexOf('\uFFFD') < 0) assertThat(piece).as("no half characters").doesNotContain("\uFFFD");
                sb.append(piece);
            }
            sb.append(d.finish());
            assertThat(sb.toString()).isEqualTo(t.decode(ids)).isEqualTo(s);
        }
    }

    @Test
    void holdsBackIncompleteSequences() {
        ByteTokenizer t = new ByteTokenizer();
        StreamingDecoder d = new StreamingDecoder(t);
        byte[] euro = "€".getBytes(java.nio.charset.StandardCharsets.UTF_8);   // E2 82 AC
        assertThat(d.push('a')).isEqualTo("a");
        assertThat(d.push(euro[0] & 0xFF)).isEmpty();
        assertThat(d.push(euro[1] & 0xFF)).isEmpty();
        assertThat(d.push(euro[2] & 0xFF)).isEqualTo("€");
        assertThat(d.push(0xE2)).isEmpty();
        assertThat(d.finish()).isEqualTo("\uFFFD");
        assertThat(d.push(0xFF)).isEqualTo("\uFFFD");   // never valid: not held
    }
}
