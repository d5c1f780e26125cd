// llama.cpp's tokenizer (through node-llama-cpp) for moe4j's tokenizer differential tests.
//
//   node tokenize.mjs <node_modules dir> <model.gguf> <in.json> <out.json>
//
// in.json: [{"text": "...", "special": true|false}, ...]. For each case writes the ids of
// llama_tokenize(text, add_special = false, parse_special = special) and the text of
// llama_detokenize(ids, remove_special = false, unparse_special = true), as {"cases": [{"ids": [...], "text": "..."}]}.
// Run it as a file, never with `node -e` (node-llama-cpp forks process.execArgv to probe its binary).
import {pathToFileURL} from "node:url";
import {readFileSync, writeFileSync} from "node:fs";
import {join} from "node:path";

const [nodeModules, modelPath, inPath, outPath] = process.argv.slice(2);
if (!outPath) {
    console.error("usage: tokenize.mjs <node_modules> <model.gguf> <in.json> <out.json>");
    process.exit(2);
}
const {getLlama, LlamaLogLevel} = await import(pathToFileURL(join(nodeModules, "node-llama-cpp", "dist", "index.js")).href);
const llama = await getLlama({
    gpu: false, build: "never", skipDownload: true, usePrebuiltBinaries: true, maxThreads: 0,
    logLevel: process.env.MOE4J_LLAMA_LOG ?? LlamaLogLevel.error,
});
const model = await llama.loadModel({modelPath, gpuLayers: 0});
const cases = JSON.parse(readFileSync(inPath, "utf8"));
const out = [];
for (const c of cases) {
    const ids = model.tokenize(c.text, c.special);
    out.push({ids: Array.from(ids), text: model.detokenize(ids, true)});
}
writeFileSync(outPath, JSON.stringify({cases: out}));
await model.dispose();
await llama.dispose();
