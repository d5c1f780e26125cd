package io.moe4j.tokenizer;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/** Test texts: the English paragraphs resource, a train/held-out split, and a seeded word-bigram generator for bulk text. */
final class Corpus {
    private Corpus() {}

    static String english() {
        try (InputStream in = Corpus.class.getResourceAsStream("/tokenizer/english.txt")) {
            if (in == null) throw new IllegalStateException("missing test resource tokenizer/english.txt");
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static List<String> paragraphs() {
        return Arrays.stream(english().split("\n\n")).map(String::strip).filter(s -> !s.isEmpty()).toList();
    }

    /** Every paragraph but the last three. */
    static List<String> train() {
        List<String> p = paragraphs();
        return p.subList(0, p.size() - 3);
    }

    /** The last three paragraphs: never seen in training. */
    static String heldOut() {
        List<String> p = paragraphs();
        return String.join("\n\n", p.subList(p.size() - 3, p.size()));
    }

    /** About {@code bytes} of text from a word-bigram chain over the training paragraphs, as ~1 KB documents. */
    static List<String> generated(int bytes, long seed) {
        Map<String, List<String>> next = new HashMap<>();
        List<String> starts = new ArrayList<>();
        for (String p : train()) {
            String[] w = p.split(" ");
            starts.add(w[0]);
            for (int i = 0; i + 1 < w.length; i++) next.computeIfAbsent(w[i], k -> new ArrayList<>()).add(w[i + 1]);
        }
        Random r = new Random(seed);
        List<String> docs = new ArrayList<>();
        int total = 0;
        while (total < bytes) {
            StringBuilder sb = new StringBuilder();
            String w = starts.get(r.nextInt(starts.size()));
            while (sb.length() < 1000) {
                sb.append(w);
                List<String> n = next.get(w);
                if (n == null) {
                    sb.append("\n");
                    w = starts.get(r.nextInt(starts.size()));
                } else {
                    sb.append(' ');
                    w = n.get(r.nextInt(n.size()));
                }
            }
            docs.add(sb.toString());
            total += sb.length();
        }
        return docs;
    }
}
