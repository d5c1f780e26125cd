package io.moe4j.train.data;

import java.io.BufferedReader;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.nio.file.PathMatcher;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Turns source specs into the list of input files of a corpus. A spec is one of
 * <ul>
 *   <li>{@code bundled} — the corpus shipped in the jar (resources {@code /corpus/}, domains from its manifest);</li>
 *   <li>a file — one source, named by its file name;</li>
 *   <li>a directory — every regular, non-hidden file below it in sorted order; a file inside a subdirectory gets
 *       that top-level subdirectory's name as its domain ({@code corpus/code/A.java} → "code"), so a directory
 *       with one subdirectory per domain is a labelled corpus;</li>
 *   <li>a glob ({@code data/**.txt}, {@code logs/*.md}) — the matching files below the glob's fixed prefix;</li>
 *   <li>any of these prefixed with {@code domain=} ({@code code=src/main/java}) to label all its files.</li>
 * </ul>
 * Files ending in {@code .gz} are decompressed. Non-goal: URLs (no network at run time).
 */
public final class Sources {

    public static final String BUNDLED = "bundled";
    static final String BUNDLED_DIR = "/corpus/";

    private static final Pattern DOMAIN_PREFIX = Pattern.compile("([A-Za-z][A-Za-z0-9_.-]*)=(.+)");

    private Sources() {
    }

    /** The files of all specs, in spec order; names are made unique. */
    public static List<TextSource> resolve(List<String> specs) {
        if (specs == null || specs.isEmpty()) {
            throw new CorpusException("corpus: no sources given (use \"bundled\", a file, a directory or a glob)");
        }
        List<TextSource> out = new ArrayList<>();
        for (String raw : specs) {
            if (raw == null || raw.isBlank()) throw new CorpusException("corpus: empty source spec in " + specs);
            String spec = raw.strip();
            String domain = null;
            Matcher m = DOMAIN_PREFIX.matcher(spec);
            if (m.matches() && !exists(spec)) {
                domain = m.group(1);
                spec = m.group(2);
            }
            List<TextSource> found = resolveOne(spec, domain);
            if (found.isEmpty()) throw new CorpusException("corpus source '" + raw + "' matches no file");
            out.addAll(found);
        }
        return uniqueNames(out);
    }

    private static List<TextSource> resolveOne(String spec, String domain) {
        if (spec.equals(BUNDLED)) return bundled(domain);
        if (isGlob(spec)) return glob(spec, domain);
        Path p = path(spec);
        if (!Files.exists(p)) throw new CorpusException("corpus source '" + spec + "': no such file or directory");
        if (Files.isDirectory(p)) return directory(p, domain);
        return List.of(file(p, p.getFileName().toString(), domain));
    }

    // ---- bundled corpus

    /** The bundled corpus: {@code /corpus/manifest.tsv} lists {@code file<TAB>domain<TAB>title}. */
    public static List<TextSource> bundled(String domainOverride) {
        List<TextSource> out = new ArrayList<>();
        try (InputStream manifest = Sources.class.getResourceAsStream(BUNDLED_DIR + "manifest.tsv")) {
            if (manifest == null) throw new CorpusException("bundled corpus missing from the classpath (/corpus/manifest.tsv)");
            BufferedReader r = new BufferedReader(new InputStreamReader(manifest, StandardCharsets.UTF_8));
            for (String line; (line = r.readLine()) != null; ) {
                if (line.isBlank() || line.startsWith("#")) continue;
                String[] f = line.split("\t");
                String resource = BUNDLED_DIR + f[0];
                byte[] bytes;
                try (InputStream in = Sources.class.getResourceAsStream(resource)) {
                    if (in == null) throw new CorpusException("bundled corpus: " + resource + " listed but missing");
                    bytes = in.readAllBytes(); // ≤ 1 MB each; read once for the content hash of the cache key
                }
                String name = "bundled/" + (f[0].endsWith(".gz") ? f[0].substring(0, f[0].length() - 3) : f[0]);
                String domain = domainOverride != null ? domainOverride : f.length > 1 ? f[1] : null;
                out.add(new TextSource(name, domain, "classpath:" + resource, bytes.length, sha256(bytes),
                        f[0].endsWith(".gz"), () -> new ByteArrayInputStream(bytes)));
            }
        } catch (IOException e) {
            throw new UncheckedIOException("reading the bundled corpus", e);
        }
        return out;
    }

    // ---- files, directories, globs

    private static TextSource file(Path p, String name, String domain) {
        Path abs = p.toAbsolutePath().normalize();
        if (!Files.isReadable(abs)) throw new CorpusException("corpus file '" + abs + "' is not readable");
        try {
            BasicFileAttributes a = Files.readAttributes(abs, BasicFileAttributes.class);
            return new TextSource(name, domain, abs.toString(), a.size(), a.lastModifiedTime().toString(),
                    name.endsWith(".gz"), () -> Files.newInputStream(abs));
        } catch (IOException e) {
            throw new CorpusException("corpus file '" + abs + "' is not readable: " + e.getMessage(), e);
        }
    }

    private static List<TextSource> directory(Path dir, String domain) {
        Path root = dir.toAbsolutePath().normalize();
        String rootName = root.getFileName() == null ? "" : root.getFileName() + "/";
        List<TextSource> out = new ArrayList<>();
        for (Path p : walk(root)) {
            Path rel = root.relativize(p);
            String d = domain != null ? domain : rel.getNameCount() > 1 ? rel.getName(0).toString() : null;
            out.add(file(p, rootName + slashes(rel), d));
        }
        return out;
    }

    private static List<TextSource> glob(String spec, String domain) {
        // the fixed prefix (components without glob characters) is walked; the rest is matched against paths
        // relative to it
        String[] parts = spec.replace('\\', '/').split("/", -1);
        int fixed = 0;
        while (fixed < parts.length - 1 && !isGlob(parts[fixed])) fixed++;
        String base = String.join("/", java.util.Arrays.copyOfRange(parts, 0, fixed));
        if (base.isEmpty() && spec.startsWith("/")) base = "/";
        Path root = path(base.isEmpty() ? "." : base).toAbsolutePath().normalize();
        String pattern = String.join("/", java.util.Arrays.copyOfRange(parts, fixed, parts.length));
        if (!Files.isDirectory(root)) throw new CorpusException("corpus source '" + spec + "': no directory " + root);
        PathMatcher matcher = FileSystems.getDefault().getPathMatcher("glob:" + pattern);
        // "**/x" should also match x at the top level, as in most shells
        PathMatcher top = pattern.startsWith("**/")
                ? FileSystems.getDefault().getPathMatcher("glob:" + pattern.substring(3)) : matcher;
        List<TextSource> out = new ArrayList<>();
        for (Path p : walk(root)) {
            Path rel = root.relativize(p);
            if (matcher.matches(rel) || top.matches(rel)) out.add(file(p, slashes(rel), domain));
        }
        return out;
    }

    /** Regular, non-hidden files below root, sorted (the order decides nothing but the token layout). */
    private static List<Path> walk(Path root) {
        try (Stream<Path> s = Files.walk(root)) {
            return s.filter(Files::isRegularFile)
                    .filter(p -> !hidden(root.relativize(p)))
                    .sorted()
                    .toList();
        } catch (IOException | UncheckedIOException e) {
            throw new CorpusException("corpus directory '" + root + "' cannot be listed: " + e.getMessage(), e);
        }
    }

    private static boolean hidden(Path rel) {
        for (Path part : rel) if (part.toString().startsWith(".")) return true;
        return false;
    }

    private static List<TextSource> uniqueNames(List<TextSource> in) {
        Set<String> seen = new HashSet<>();
        Map<String, Integer> next = new HashMap<>();
        List<TextSource> out = new ArrayList<>(in.size());
        for (TextSource s : in) {
            String name = s.name();
            while (!seen.add(name)) name = s.name() + "~" + next.merge(s.name(), 2, (a, b) -> a + 1);
            out.add(name.equals(s.name()) ? s
                    : new TextSource(name, s.domain(), s.location(), s.size(), s.version(), s.gzip(), s.opener()));
        }
        return out;
    }

    // ---- helpers

    static boolean isGlob(String s) {
        return s.indexOf('*') >= 0 || s.indexOf('?') >= 0 || s.indexOf('[') >= 0 || s.indexOf('{') >= 0;
    }

    private static boolean exists(String spec) {
        try {
            return Files.exists(Path.of(spec));
        } catch (InvalidPathException e) {
            return false;
        }
    }

    private static Path path(String spec) {
        try {
            return Path.of(spec);
        } catch (InvalidPathException e) {
            throw new CorpusException("corpus source '" + spec + "' is not a valid path: " + e.getMessage(), e);
        }
    }

    private static String slashes(Path rel) {
        return rel.toString().replace('\\', '/');
    }

    static String sha256(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }
}
