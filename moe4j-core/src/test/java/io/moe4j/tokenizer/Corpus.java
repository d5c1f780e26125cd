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

    /**
     * About {@code bytes} of pseudo-English: 50,000 words made of random syllables, drawn with Zipf frequencies,
     * in sentences with punctuation and numbers — enough distinct material to fill a 4096-token vocabulary.
     */
    static List<String> pseudoWords(int bytes, long seed) {
        String[] onsets = {"", "b", "c", "d", "f", "g", "h", "l", "m", "n", "p", "r", "s", "t", "v", "w", "th", "st", "pr", "ch", "sh", "br", "gr"};
        String[] vowels = {"a", "e", "i", "o", "u", "ea", "ou", "ai", "ee", "y"};
        String[] codas = {"", "", "n", "r", "s", "t", "l", "nd", "ng", "st", "ck", "m"};
        Random r = new Random(seed);
        String[] words = new String[50_000];
        for (int i = 0; i < words.length; i++) {
            StringBuilder w = new StringBuilder();
            int syl = 1 + r.nextInt(3);
            for (int k = 0; k < syl; k++) w.append(onsets[r.nextInt(onsets.length)]).append(vowels[r.nextInt(vowels.length)]).append(codas[r.nextInt(codas.length)]);
            words[i] = w.toString();
        }
        double[] cdf = new double[words.length];
        double sum = 0;
        for (int i = 0; i < cdf.length; i++) cdf[i] = sum += 1.0 / (i + 1);
        List<String> docs = new ArrayList<>();
        int total = 0;
        while (total < bytes) {
            StringBuilder sb = new StringBuilder();
            while (sb.length() < 1000) {
                int n = 4 + r.nextInt(14);
                for (int k = 0; k < n; k++) {
                    int i = Arrays.binarySearch(cdf, r.nextDouble() * sum);
                    String w = words[i < 0 ? Math.min(-i - 1, words.length - 1) : i];
                    if (k == 0) w = Character.toUpperCase(w.charAt(0)) + w.substring(1);
                    sb.append(w);
                    if (r.nextInt(25) == 0) sb.append(' ').append(r.nextInt(2000));
                    sb.append(k + 1 < n ? (r.nextInt(12) == 0 ? ", " : " ") : r.nextInt(8) == 0 ? "? " : ". ");
                }
                if (r.nextInt(5) == 0) sb.append("\n\n");
            }
            docs.add(sb.toString());
            total += sb.length();
        }
        return docs;
    }
}
