// Many llama.cpp evaluations in one node process, for moe4j's differential tests (starting node and loading
// llama.cpp costs ~1 s; a test class with a dozen models pays it once).
//
//   node logits-many.mjs <node_modules dir> <jobs.json> <out.json>
//
// jobs.json: [{"model": "/abs/file.gguf", "ids": [1, 5, 9], "threads": 1, "greedy": 0}, ...]
// out.json:  [{"vocabSize": V, "logits": [...], "greedy": [...]}, ...] in job order.
// Each job runs as logits.mjs does: a fresh context in "exact mode" (F32 K and V cache, flash attention off), the
// ids in one sequence, the full raw logit vector after the last id, then `greedy` argmax continuation ids.
// Run it as a file, never with `node -e` (node-llama-cpp forks process.execArgv to probe its binary).
import {pathToFileURL} from "node:url";
import {readFileSync, writeFileSync} from "node:fs";
import {join} from "node:path";

const [nodeModules, jobsPath, outPath] = process.argv.slice(2);
if (!outPath) {
    console.error("usage: logits-many.mjs <node_modules> <jobs.json> <out.json>");
    process.exit(2);
}
const jobs = JSON.parse(readFileSync(jobsPath, "utf8"));
const {getLlama, LlamaLogLevel} = await import(pathToFileURL(join(nodeModules, "node-llama-cpp", "dist", "index.js")).href);
const llama = await getLlama({
    gpu: false, build: "never", skipDownload: true, usePrebuiltBinaries: true, maxThreads: 0,
    logLevel: process.env.MOE4J_LLAMA_LOG ?? LlamaLogLevel.error,
});

const results = [];
for (const job of jobs) {
    const greedySteps = job.greedy ?? 0;
    const model = await llama.loadModel({modelPath: job.model, gpuLayers: 0});
    const contextSize = Math.max(16, job.ids.length + greedySteps + 1);
    const context = await model.createContext({
        contextSize, batchSize: contextSize, threads: job.threads ?? 1, flashAttention: false,
        experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32",
    });
    const sequence = context.getSequence();
    const vocabSize = model.fileInfo.metadata.tokenizer.ggml.tokens.length;
    const next = {generateNext: {logits: true, token: true, options: {temperature: 0}}};
    const evaluate = async (tokens) => {
        const items = tokens.map((t, i) => i === tokens.length - 1 ? [t, next] : t);
        const out = await sequence.controlledEvaluate(items);
        return out[out.length - 1].next;
    };
    const first = await evaluate(job.ids);
    const logits = new Array(vocabSize).fill(null);
    for (const [token, value] of first.logits) logits[token] = value;
    const greedy = [];
    let token = first.token;
    for (let step = 0; step < greedySteps; step++) {
        greedy.push(token);
        if (step + 1 < greedySteps) token = (await evaluate([token])).token;
    }
    results.push({vocabSize, logits, greedy});
    await context.dispose();
    await model.dispose();
}
writeFileSync(outPath, JSON.stringify(results));
await llama.dispose();
