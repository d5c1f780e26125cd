package io.moe4j.train.data;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.Reader;
import java.io.StringReader;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;

class DocumentSplitterTest {

    /** Reader handing out at most 7 chars per read, so boundaries fall across buffer refills. */
    private static Reader trickle(String s) {
        return new Reader() {
            int pos;

            @Override
            public int read(char[] cbuf, int off, int len) {
                if (pos == s.length()) return -1;
                int n = Math.min(Math.min(len, 7), s.length() - pos);
                s.getChars(pos, pos + n, cbuf, off);
                pos += n;
                return n;
            }

            @Override
            public void close() {
            }
        };
    }

    private static List<String> split(Reader r, int target) throws IOException {
        DocumentSplitter s = new DocumentSplitter(r, target);
        List<String> out = new ArrayList<>();
        for (String d; (d = s.next()) != null; ) out.add(d);
        return out;
    }

    @Test
    void formFeedLinesSeparateDocumentsAndAreDropped() throws IOException {
        String in = "\uFEFFclass A {}\n\f\nclass B {}\r\n\f\r\n\f\n\n  \n\fnot a break\nend";
        assertThat(split(new StringReader(in), 1000))
                .containsExactly("class A {}\n", "class B {}\r\n", "\n  \n\fnot a break\nend");
    }

    @Test
    void cutsAtTheFirstBlankLineAfterTheTarget() throws IOException {
        String p = "0123456789\n".repeat(3) + "\n"; // 34-char paragraph
        List<String> docs = split(new StringReader(p.repeat(5)), 40);
        assertThat(docs).containsExactly(p + p, p + p, p);
    }

    @Test
    void hardCutsTextWithoutBlankLinesAtTwiceTheTarget() throws IOException {
        String line = "x".repeat(9) + "\n";
        List<String> docs = split(new StringReader(line.repeat(10)), 20); // hard limit 40: 4 lines per document
        assertThat(docs).containsExactly(line.repeat(4), line.repeat(4), line.repeat(2));
        // one line longer than the hard limit is cut inside, never inside a surrogate pair
        String emoji = "\uD83D\uDE42"; // 🙂
        String longLine = "a" + emoji.repeat(30);
        List<String> cut = split(new StringReader(longLine), 10);
        assertThat(String.join("", cut)).isEqualTo(longLine);
        for (String d : cut) {
            assertThat(d.length()).isLessThanOrEqualTo(20);
            assertThat(Character.isHighSurrogate(d.charAt(d.length() - 1))).isFalse();
            assertThat(Character.isLowSurrogate(d.charAt(0))).isFalse();
        }
    }

    @Test
    void documentsConcatenateToTheInputMinusFormFeedLinesOnRandomText() throws IOException {
        Random rnd = new Random(7);
        String[] pieces = {"word ", "é", "日本", "\uD83D\uDE80", "\n", "\n\n", "\f\n", "\r\n", "  \n", "\t"};
        for (int trial = 0; trial < 200; trial++) {
            StringBuilder sb = new StringBuilder();
            int n = rnd.nextInt(400);
            for (int i = 0; i < n; i++) sb.append(pieces[rnd.nextInt(pieces.length)]);
            String in = sb.toString();
            int target = 1 + rnd.nextInt(60);
            List<String> docs = split(trickle(in), target);
            String expected = removeFormFeedLines(in);
            // whitespace-only documents are dropped: compare with all-whitespace stretches ignored
            assertThat(String.join("", docs).replaceAll("\\s", ""))
                    .as("trial %d", trial).isEqualTo(expected.replaceAll("\\s", ""));
            for (String d : docs) {
                assertThat(d.isBlank()).isFalse();
                assertThat(d.length()).isLessThanOrEqualTo(2 * target);
                assertThat(expected).contains(d); // every document is a verbatim piece of the text
            }
        }
    }

    private static String removeFormFeedLines(String s) {
        StringBuilder out = new StringBuilder();
        int i = 0;
        while (i < s.length()) {
            int nl = s.indexOf('\n', i);
            int end = nl < 0 ? s.length() : nl + 1;
            String line = s.substring(i, end);
            if (!line.equals("\f\n") && !line.equals("\f\r\n")) out.append(line);
            i = end;
        }
        return out.toString();
    }
}
