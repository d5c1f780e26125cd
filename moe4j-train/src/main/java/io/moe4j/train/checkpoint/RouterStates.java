package io.moe4j.train.checkpoint;

import io.moe4j.moe.MoeLayer;
import io.moe4j.moe.router.EvoMoeRouter;
import io.moe4j.moe.router.Router;
import io.moe4j.nn.CounterRng;

import java.util.ArrayList;
import java.util.List;

/**
 * Non-trainable router state for checkpoints: the position of each router's random stream and its
 * {@link Router#state()} (DeepSeek-V3 selection bias, ReMoE λ), and EvoMoE's step counter.
 *
 * <p>Restoring goes through {@link Router#restoreState}, which every router with state implements (and which
 * refuses a state of the wrong length), so a resumed run continues bit-identically whatever the router.
 */
public final class RouterStates {
    private RouterStates() {}

    public static List<CheckpointHeader.RouterState> capture(List<MoeLayer> layers) {
        List<CheckpointHeader.RouterState> out = new ArrayList<>();
        for (MoeLayer l : layers) {
            Router r = l.router();
            CounterRng rng = r.rng();
            out.add(new CheckpointHeader.RouterState(l.config().layerIndex(), r.name(), rng == null ? -1 : rng.draws(),
                    r.state(), r instanceof EvoMoeRouter evo ? evo.step() : -1));
        }
        return out;
    }

    /**
     * Restores the states; throws IllegalArgumentException naming the layer when they do not fit the model. All
     * layers are checked before the first is written.
     */
    public static void apply(List<CheckpointHeader.RouterState> states, List<MoeLayer> layers) {
        if (states.size() != layers.size()) {
            throw new IllegalArgumentException("has " + states.size() + " MoE layers, the model has " + layers.size());
        }
        for (int pass = 0; pass < 2; pass++) {
            for (int i = 0; i < states.size(); i++) {
                CheckpointHeader.RouterState s = states.get(i);
                MoeLayer l = layers.get(i);
                Router r = l.router();
                String where = "MoE layer " + l.config().layerIndex();
                CounterRng rng = r.rng();
                float[] st = s.state() == null ? new float[0] : s.state();
                if (pass == 0) {
                    if (!r.name().equals(s.router())) {
                        throw new IllegalArgumentException(where + " was trained with router " + s.router()
                                + ", the model uses " + r.name());
                    }
                    if ((rng == null) != (s.rngDraws() < 0)) {
                        throw new IllegalArgumentException(where + ": router random stream mismatch");
                    }
                    if (st.length != r.state().length) {
                        throw new IllegalArgumentException(where + ": router state has " + st.length
                                + " values, the model's " + r.state().length);
                    }
                    continue;
                }
                if (rng != null) rng.setDraws(s.rngDraws());
                if (r instanceof EvoMoeRouter evo && s.routerStep() >= 0) evo.setStep(s.routerStep());
                r.restoreState(st);
            }
        }
    }
}
