// llama.cpp (through node-llama-cpp) speed for moe4j's `bench generate`, measured as moe4j measures itself.
//
//   node generate_bench.mjs <node_modules> <model.gguf> <out.json> <threads: 1,2> <prompt ids: 1,5,9> <gen tokens> <repeat> <batch seqs>
//
// Per thread count: one warm-up pass, then <repeat> timed passes of (a) the prompt evaluated in one batch up to its
// next-token logits, (b) <gen> greedy single-sequence decode steps, (c) <batch seqs> sequences each given the
// first 16 prompt ids, then decoded together for <gen> steps (node-llama-cpp batches concurrent evaluations of the
// context's sequences into one llama_decode). Default llama.cpp settings (F16 KV cache, flash attention as the
// binding decides) — its fast path. Writes {threads: {t: {prompt: [ns...], gen: [ns...], batch: [ns...]}}, maxRssKb}.
// Run it as a file, never with `node -e` (node-llama-cpp forks process.execArgv to probe its binary).
import {pathToFileURL} from "node:url";
import {readFileSync, writeFileSync} from "node:fs";
import {join} from "node:path";

const [nodeModules, modelPath, outPath, threadsArg, idsArg, genArg, repeatArg, seqsArg] = process.argv.slice(2);
if (!seqsArg) {
    console.error("usage: generate_bench.mjs <node_modules> <model.gguf> <out.json> <threads> <ids> <gen> <repeat> <seqs>");
    process.exit(2);
}
const threadList = threadsArg.split(",").map(Number);
const prompt = idsArg.split(",").map(Number);
const gen = Number(genArg), repeat = Number(repeatArg), seqs = Number(seqsArg);
const short = prompt.slice(0, Math.min(16, prompt.length));

const {getLlama, LlamaLogLevel} = await import(pathToFileURL(join(nodeModules, "node-llama-cpp", "dist", "index.js")).href);
const llama = await getLlama({
    gpu: false, build: "never", skipDownload: true, usePrebuiltBinaries: true, maxThreads: 0,
    logLevel: process.env.MOE4J_LLAMA_LOG ?? LlamaLogLevel.error,
});
const model = await llama.loadModel({modelPath, gpuLayers: 0});
const greedy = {generateNext: {token: true, options: {temperature: 0}}};
const now = () => process.hrtime.bigint();

async function step(sequence, tokens) {
    const items = tokens.map((t, i) => i === tokens.length - 1 ? [t, greedy] : t);
    const out = await sequence.controlledEvaluate(items);
    return out[out.length - 1].next.token;
}

const results = {};
for (const threads of threadList) {
    const ctxSize = Math.max(prompt.length, short.length) + gen + 8;
    const single = await model.createContext({contextSize: ctxSize, batchSize: prompt.length, threads});
    const many = await model.createContext({contextSize: (short.length + gen + 8) * seqs, batchSize: Math.max(short.length * seqs, 64), threads, sequences: seqs});
    const r = {prompt: [], gen: [], batch: []};
    for (let pass = 0; pass <= repeat; pass++) {   // pass 0 warms up (pages the mapped model in)
        const seq = single.getSequence();
        let t0 = now();
        let token = await step(seq, prompt);
        const tPrompt = now() - t0;
        t0 = now();
        for (let i = 0; i < gen; i++) token = await step(seq, [token]);
        const tGen = now() - t0;
        seq.dispose();

        const ss = [];
        for (let s = 0; s < seqs; s++) ss.push(many.getSequence());
        const toks = await Promise.all(ss.map(s => step(s, short)));
        t0 = now();
        for (let i = 0; i < gen; i++) {
            const next = await Promise.all(ss.map((s, j) => step(s, [toks[j]])));
            for (let j = 0; j < seqs; j++) toks[j] = next[j];
        }
        const tBatch = now() - t0;
        for (const s of ss) s.dispose();
        if (pass > 0) {
            r.prompt.push(Number(tPrompt));
            r.gen.push(Number(tGen));
            r.batch.push(Number(tBatch));
        }
    }
    results[threads] = r;
    await single.dispose();
    await many.dispose();
}
// VmHWM, not resourceUsage().maxRSS: Linux carries the spawning JVM's peak into the child's ru_maxrss across exec.
const hwm = /VmHWM:\s*(\d+)/.exec(readFileSync("/proc/self/status", "utf8"));
writeFileSync(outPath, JSON.stringify({threads: results, maxRssKb: hwm ? Number(hwm[1]) : -1}));
await model.dispose();
await llama.dispose();
