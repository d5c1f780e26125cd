package io.moe4j.bench;

import java.util.List;

/**
 * Not a test: {@code moe4j bench moe-layer} for one of its default shapes only (index 0 = E=8 k=2 f=1024, 1 = E=64),
 * so that a run fits in the short quiet windows of a shared machine.
 * {@code java ... io.moe4j.bench.MoeLayerBenchOne [shape=0] [threads=2] [repeat=5] [torch=true]}
 */
public final class MoeLayerBenchOne {
    private MoeLayerBenchOne() {}

    public static void main(String[] args) {
        int shape = args.length > 0 ? Integer.parseInt(args[0]) : 0;
        int threads = args.length > 1 ? Integer.parseInt(args[1]) : 2;
        int repeat = args.length > 2 ? Integer.parseInt(args[2]) : 5;
        boolean torch = args.length <= 3 || Boolean.parseBoolean(args[3]);
        MoeLayerBench.run(List.of(MoeLayerBench.defaultShapes(false).get(shape)), threads, repeat, torch, System.out, System.err);
    }
}
