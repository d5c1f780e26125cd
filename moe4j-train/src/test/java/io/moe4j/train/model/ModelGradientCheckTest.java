package io.moe4j.train.model;

import io.moe4j.kernel.Kernels;
import io.moe4j.nn.Param;
import io.moe4j.parallel.WorkerPool;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.List;
import java.util.stream.Stream;

import static io.moe4j.train.model.TinyConfigs.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/**
 * Analytic gradients of the WHOLE model (embedding, attention with RoPE/GQA/q-k norm, dense and MoE FFNs with
 * their aux losses, final norm, LM head, cross-entropy) against central finite differences of the training loss
 * (CE + aux), in float32 at a tiny size (vocab 11, d 8, 2 layers, 2 heads / 1 kv head, B 2, T 5).
 *
 * <p>Method as in moe4j-core's MoeGradientCheckTest: two step sizes; a coordinate whose two estimates disagree
 * is non-smooth at the probe scale (a top-k, group or capacity decision flips) and is skipped, and nearly all
 * probed coordinates must be checked. Every parameter tensor is probed at up to 12 spread coordinates, and
 * besides the per-coordinate tolerance the probed gradient of each tensor must match as a vector (relative
 * error of the norm), which catches a wrong scale even where gradients are small.
 */
class ModelGradientCheckTest {

    static Stream<Arguments> configs() {
        return Stream.of(
                Arguments.of("dense, untied", dense(false)),
                Arguments.of("dense, tied, qkNorm", model(null, LAYERS, true, true)),
                Arguments.of("softmax-topk k=2 + shared expert, untied", model(softmaxTopK().build(), 0, false, false)),
                Arguments.of("softmax-topk k=2, qkNorm, tied", model(softmaxTopK().build(), 0, true, true)),
                Arguments.of("deepseek-v3 after 1 dense layer", model(deepseekV3(), 1, false, false)),
                Arguments.of("switch with capacity, tied", model(switchCapacity(), 0, false, true)));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("configs")
    void gradientsMatchFiniteDifferences(String name, ModelConfig c) {
        try (MoeTransformer m = MoeTransformer.create(c, Kernels.get(), WorkerPool.common(), B)) {
            int[] tokens = tokens(11, B, T, VOCAB);
            for (Param p : m.params()) p.zeroGrad();
            LossBreakdown l0 = m.forwardBackward(tokens, B, T, 1f);
            assertThat(l0.ce()).as("initial CE near ln V").isBetween(1.5, 4.0);
            if (c.denseLayers() < c.layers() && c.moe().balanceCoef() > 0) assertThat(l0.aux()).isPositive();
            List<Param> params = m.params();
            float[][] analytic = new float[params.size()][];
            for (int i = 0; i < params.size(); i++) analytic[i] = params.get(i).gradToArray();

            int probed = 0, checked = 0;
            for (int pi = 0; pi < params.size(); pi++) {
                Param p = params.get(pi);
                float[] v = p.toArray();
                float[] g = analytic[pi];
                int step = Math.max(1, v.length / 12);
                double num = 0, den = 0;
                for (int i = 0; i < v.length; i += step) {
                    probed++;
                    int idx = i;
                    double fd = finiteDifference(h -> {
                        float[] vp = v.clone();
                        vp[idx] += h;
                        p.set(vp);
                        double l = m.forwardBackward(tokens, B, T, 1f).total();
                        p.set(v);
                        return l;
                    });
                    if (Double.isNaN(fd)) continue; // non-smooth at this scale
                    checked++;
                    double scale = Math.max(1.0, Math.abs(fd));
                    assertThat((double) g[i]).as("%s %s[%d] (fd %s)", name, p.name(), i, fd).isCloseTo(fd, within(5e-4 * scale));
                    num += (g[i] - fd) * (g[i] - fd);
                    den += fd * fd;
                }
                if (den > 1e-8) {
                    assertThat(Math.sqrt(num / den)).as("%s %s: relative error of the probed gradient", name, p.name())
                            .isLessThan(3e-2);
                }
            }
            assertThat(checked).as("coordinates checked of %d probed", probed).isGreaterThanOrEqualTo((int) (probed * 0.9));
        }
    }

    interface Fn { double at(float h); }

    /** Central difference at step 2e-3, or NaN when it disagrees with step 4e-3 (a discrete decision flipped). */
    static double finiteDifference(Fn f) {
        float h1 = 4e-3f, h2 = 2e-3f;
        double fd1 = (f.at(h1) - f.at(-h1)) / (2 * h1);
        double fd2 = (f.at(h2) - f.at(-h2)) / (2 * h2);
        double scale = Math.max(1.0, Math.abs(fd2));
        if (Math.abs(fd1 - fd2) > 5e-4 * scale) return Double.NaN;
        return fd2;
    }
}
