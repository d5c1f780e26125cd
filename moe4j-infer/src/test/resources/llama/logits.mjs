// Next-token logits from llama.cpp (through node-llama-cpp) for moe4j's differential tests.
//
//   node logits.mjs <node_modules dir> <model.gguf> <out.json> <threads> <ids: 1,5,9> [greedy steps]
//
// Evaluates the ids in one sequence in "exact mode" (F32 K and V cache, flash attention off: llama.cpp's
// defaults, F16 KV and flash attention, move logits by ~3e-3, too much for comparing with an F32 engine) and
// writes {vocabSize, logits, greedy}: the full raw logit vector after the last id (llama_get_logits_ith,
// untouched at temperature 0) and, with greedy steps > 0, the ids of an argmax continuation.
// MOE4J_LLAMA_LOG=info|debug shows llama.cpp's log on stderr. The JSON goes to a file because llama.cpp and node-llama-cpp may log to stdout.
// Run it as a file, never with `node -e`: node-llama-cpp forks process.execArgv to probe its binary.
import {pathToFileURL} from "node:url";
import {writeFileSync} from "node:fs";
import {join} from "node:path";

const [nodeModules, modelPath, outPath, threadsArg, idsArg, greedyArg] = process.argv.slice(2);
if (!idsArg) {
    console.error("usage: logits.mjs <node_modules> <model.gguf> <out.json> <threads> <ids> [greedy steps]");
    process.exit(2);
}
const threads = Number(threadsArg);
const ids = idsArg.split(",").map(Number);
const greedySteps = Number(greedyArg ?? 0);

// The script lives in the test resources, not next to node_modules, so import the package by path.
const {getLlama, LlamaLogLevel} = await import(pathToFileURL(join(nodeModules, "node-llama-cpp", "dist", "index.js")).href);
const llama = await getLlama({
    gpu: false, build: "never", skipDownload: true, usePrebuiltBinaries: true, maxThreads: 0,
    logLevel: process.env.MOE4J_LLAMA_LOG ?? LlamaLogLevel.error,   // e.g. MOE4J_LLAMA_LOG=debug to see the loader logger: (level, message) => process.stderr.write(message + "\n"),
});
const model = await llama.loadModel({modelPath, gpuLayers: 0});
const contextSize = Math.max(16, ids.length + greedySteps + 1);
const context = await model.createContext({
    contextSize, batchSize: contextSize, threads, flashAttention: false,
    experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32",
});
const sequence = context.getSequence();

// The API does not expose the vocabulary size; the token list in the GGUF metadata is the authority.
const vocabSize = model.fileInfo.metadata.tokenizer.ggml.tokens.length;
const next = {generateNext: {logits: true, token: true, options: {temperature: 0}}};

async function evaluate(tokens) {
    const items = tokens.map((t, i) => i === tokens.length - 1 ? [t, next] : t);
    const out = await sequence.controlledEvaluate(items);
    return out[out.length - 1].next;
}

const first = await evaluate(ids);
const logits = new Array(vocabSize).fill(null);
for (const [token, value] of first.logits) logits[token] = value;
const greedy = [];
let token = first.token;
for (let step = 0; step < greedySteps; step++) {
    greedy.push(token);
    if (step + 1 < greedySteps) token = (await evaluate([token])).token;
}

writeFileSync(outPath, JSON.stringify({vocabSize, nLogits: first.logits.size, logits, greedy}));
await context.dispose();
await model.dispose();
await llama.dispose();
