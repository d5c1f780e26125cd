package io.moe4j.train;

import io.moe4j.tokenizer.Tokenizer;
import io.moe4j.train.data.BatchSource;
import io.moe4j.train.model.CausalLm;
import io.moe4j.train.model.ModelConfig;

import java.util.function.Function;
import java.util.function.Supplier;

/**
 * What a run needs from the packages that build models, data and tokenizers: the orchestration
 * ({@link TrainRun}, {@link Demo}, {@link RouterExperiment}) is written against these only.
 *
 * @param models    builds a freshly initialised model for a shape
 * @param data      a fresh batch source at the start of its stream (several runs share the same data)
 * @param tokenizer text ⇄ ids for samples; may be null (no generated sample)
 * @param vocabSize the tokenizer's vocabulary size (used when {@code model.vocabSize} is 0)
 */
public record RunInputs(Function<ModelConfig, CausalLm> models, Supplier<BatchSource> data, Tokenizer tokenizer,
                        int vocabSize) {
}
