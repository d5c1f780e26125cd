package io.moe4j.gguf;

import io.moe4j.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Seeded mutation fuzzing of the reader: bit flips, truncations, random length and count fields, inserted and
 * deleted bytes over valid files written by {@link GgufWriter}. Every mutant must either parse — and then be fully
 * readable: every metadata element, every tensor's bytes — or fail with {@link GgufFormatException}. Any other
 * exception, an {@link OutOfMemoryError} or a {@link StackOverflowError} fails the test with the seed and
 * iteration to replay.
 *
 * <p>By default it runs for about 3 seconds. {@code -Dmoe4j.fuzz.iterations=N} runs exactly N mutants (e.g.
 * a million for a long soak), {@code -Dmoe4j.fuzz.seed=S} changes the seed.
 */
class GgufFuzzTest {

    private static final long[] INTERESTING = {0, 1, 2, 3, 4, 5, 8, 12, 13, 24, 31, 32, 33, 63, 64, 255, 256,
            0x7FFF_FFFFL, 0x8000_0000L, 0xFFFF_FFFFL, 1L << 32, 1L << 40, Long.MAX_VALUE, Long.MIN_VALUE, -1, -8, -32};

    @TempDir Path dir;

    @Test
    void everyMutantParsesOrThrowsGgufFormatException() throws IOException {
        long iterations = Long.getLong("moe4j.fuzz.iterations", -1);
        long seed = Long.getLong("moe4j.fuzz.seed", 20250711L);
        long deadline = iterations < 0 ? System.nanoTime() + 3_000_000_000L : Long.MAX_VALUE;
        long limit = iterations < 0 ? Long.MAX_VALUE : iterations;

        List<byte[]> bases = new ArrayList<>();
        try (Arena arena = Arena.ofConfined()) {
            int[] alignments = {32, 64, 1};
            for (int i = 0; i < alignments.length; i++) {
                Path f = dir.resolve("base" + i + ".gguf");
                GgufRoundTripTest.sample(arena, i, alignments[i]).write(f);
                bases.add(Files.readAllBytes(f));
            }
            Path small = dir.resolve("small.gguf");
            new GgufWriter().putString("general.architecture", "llama")
                    .putArray("t", GgufArray.ofStrings("a", "b"))
                    .addTensor("w", Tensor.ofFloats(arena, new float[]{1, 2, 3, 4}, 2, 2)).write(small);
            bases.add(Files.readAllBytes(small));
        }

        Random r = new Random(seed);
        long parsed = 0, rejected = 0, n = 0;
        Path onDisk = dir.resolve("mutant.gguf");
        for (; n < limit && System.nanoTime() < deadline; n++) {
            byte[] base = bases.get(r.nextInt(bases.size()));
            StringBuilder how = new StringBuilder();
            byte[] mutant = mutate(base, r, how);
            try {
                GgufFile g;
                if (n % 64 == 0) {                    // now and then through open(): mapping, file names, close
                    Files.write(onDisk, mutant);
                    g = GgufFile.open(onDisk);
                } else {
                    g = GgufFile.parse(MemorySegment.ofArray(mutant), "mutant", null);
                }
                try (g) {
                    exercise(g);
                }
                parsed++;
            } catch (GgufFormatException expected) {
                assertThat(expected.getMessage()).isNotBlank();
                rejected++;
            } catch (Throwable t) {
                Path keep = Path.of("target", "gguf-fuzz-failure.gguf");
                Files.createDirectories(keep.getParent());
                Files.write(keep, mutant);
                throw new AssertionError("seed " + seed + ", iteration " + n + " (" + how + "): " + t
                        + "; mutant saved to " + keep.toAbsolutePath(), t);
            }
        }
        System.out.printf("GGUF fuzz: %d mutants, %d parsed, %d rejected (seed %d)%n", n, parsed, rejected, seed);
        assertThat(n).isGreaterThan(100);
        assertThat(rejected).isPositive();
        assertThat(parsed).isPositive();
    }

    /** Reads everything a caller could: all metadata elements (nested too) and every tensor's bytes. */
    private static void exercise(GgufFile g) {
        for (Map.Entry<String, GgufValue> e : g.metadata().entrySet()) {
            GgufValue v = e.getValue();
            if (v.type() == GgufValueType.ARRAY) readAll(v.asArray(), 0);
            else v.toString();
        }
        g.architecture();
        for (GgufTensorInfo t : g.tensors()) {
            MemorySegment s = g.tensorData(t.name());
            if (s.byteSize() > 0) {
                s.get(ValueLayout.JAVA_BYTE, 0);
                s.get(ValueLayout.JAVA_BYTE, s.byteSize() - 1);
            }
            if (t.type().dtype() != null) {
                Tensor x = g.tensor(t.name());
                assertThat(x.numel()).isEqualTo(t.numel());
            }
        }
    }

    private static void readAll(GgufArray a, int depth) {
        long n = Math.min(a.size(), 4096);
        for (long i = 0; i < n; i++) {
            GgufValue v = a.get(i);
            if (v.type() == GgufValueType.ARRAY) readAll(v.asArray(), depth + 1);
        }
        if (a.size() > 0) a.get(a.size() - 1);
    }

    static byte[] mutate(byte[] base, Random r, StringBuilder how) {
        byte[] b = base.clone();
        int rounds = 1 + r.nextInt(3);
        for (int k = 0; k < rounds && b.length > 0; k++) {
            // most mutations land in the header, where the structure is; the data section is opaque bytes
            int headerish = Math.min(b.length, 64 + r.nextInt(Math.max(1, Math.min(b.length, 4096))));
            int at = r.nextInt(r.nextInt(4) == 0 ? b.length : headerish);
            switch (r.nextInt(7)) {
                case 0 -> {
                    int bits = 1 + r.nextInt(8);
                    for (int i = 0; i < bits; i++) {
                        int p = r.nextInt(headerish);
                        b[p] ^= (byte) (1 << r.nextInt(8));
                    }
                    how.append("flip ").append(bits).append(" bits; ");
                }
                case 1 -> {
                    int len = r.nextInt(b.length);
                    b = java.util.Arrays.copyOf(b, len);
                    how.append("truncate to ").append(len).append("; ");
                }
                case 2, 3 -> {
                    long v = r.nextBoolean() ? INTERESTING[r.nextInt(INTERESTING.length)]
                            : r.nextBoolean() ? r.nextInt(b.length + 64) : r.nextLong();
                    int width = r.nextBoolean() ? 8 : 4;
                    for (int i = 0; i < width && at + i < b.length; i++) b[at + i] = (byte) (v >>> (8 * i));
                    how.append("set ").append(width).append(" bytes at ").append(at).append(" to ").append(v).append("; ");
                }
                case 4 -> {
                    int which = r.nextInt(2);            // n_tensors or n_kv
                    long v = INTERESTING[r.nextInt(INTERESTING.length)];
                    for (int i = 0; i < 8 && 8 + 8 * which + i < b.length; i++) b[8 + 8 * which + i] = (byte) (v >>> (8 * i));
                    how.append(which == 0 ? "n_tensors" : "n_kv").append(" = ").append(v).append("; ");
                }
                case 5 -> {
                    int len = 1 + r.nextInt(16);
                    byte[] ins = new byte[len];
                    r.nextBytes(ins);
                    byte[] c = new byte[b.length + len];
                    System.arraycopy(b, 0, c, 0, at);
                    System.arraycopy(ins, 0, c, at, len);
                    System.arraycopy(b, at, c, at + len, b.length - at);
                    b = c;
                    how.append("insert ").append(len).append(" at ").append(at).append("; ");
                }
                default -> {
                    int len = Math.min(1 + r.nextInt(16), b.length - at);
                    byte[] c = new byte[b.length - len];
                    System.arraycopy(b, 0, c, 0, at);
                    System.arraycopy(b, at + len, c, at, b.length - at - len);
                    b = c;
                    how.append("delete ").append(len).append(" at ").append(at).append("; ");
                }
            }
        }
        return b;
    }
}
