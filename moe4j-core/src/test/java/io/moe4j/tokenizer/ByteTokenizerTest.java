package io.moe4j.tokenizer;

import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class ByteTokenizerTest {
    final ByteTokenizer t = new ByteTokenizer(List.of("<|endoftext|>", "<s>"), "<s>", "<|endoftext|>");

    @Test
    void bytesAndSpecials() {
        assertThat(t.encode("hé")).containsExactly('h', 0xC3, 0xA9);
        assertThat(t.encode("<s>a<|endoftext|>", true)).containsExactly(257, 'a', 256);
        assertThat(t.encode("<s>", false)).containsExactly('<', 's', '>');
        assertThat(t.vocabSize()).isEqualTo(258);
        assertThat(List.of(t.bos(), t.eos())).containsExactly(257, 256);
        assertThat(t.decode(new int[]{0xC3})).isEqualTo("\uFFFD");
        assertThat(t.tokenText(0x41)).isEqualTo("<0x41>");
        assertThatThrownBy(() -> t.tokenBytes(258)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new ByteTokenizer(List.of("a"), "b", null)).hasMessageContaining("bos");
    }

    @Property(tries = 200)
    void decodeInvertsEncode(@ForAll String s) {
        // jqwik strings may hold lone surrogates: those come back as U+FFFD, like any UTF-8 round trip
        String expected = new String(Unicode.codePoints(s), 0, Unicode.codePoints(s).length);
        assertThat(t.decode(t.encode(s, true))).isEqualTo(expected);
        assertThat(t.decode(t.encode(s, false))).isEqualTo(expected);
    }
}
