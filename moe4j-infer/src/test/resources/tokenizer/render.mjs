// Chat templates rendered by @huggingface/jinja (the Jinja implementation of transformers.js, which
// node-llama-cpp depends on) for moe4j's ChatTemplate differential test.
//
//   node render.mjs <node_modules dir> <in.json> <out.json>
//
// in.json: {"template": "...", "cases": [{"messages": [...], "add_generation_prompt": true, "bos_token": "<s>",
// "eos_token": "</s>"}, ...]}; out.json: {"results": [{"text": "..."} or {"error": "..."}, ...]}.
import {pathToFileURL} from "node:url";
import {readFileSync, writeFileSync} from "node:fs";
import {join} from "node:path";

const [nodeModules, inPath, outPath] = process.argv.slice(2);
if (!outPath) {
    console.error("usage: render.mjs <node_modules> <in.json> <out.json>");
    process.exit(2);
}
const {Template} = await import(pathToFileURL(join(nodeModules, "@huggingface", "jinja", "dist", "index.js")).href);
const input = JSON.parse(readFileSync(inPath, "utf8"));
const results = [];
let template = null, parseError = null;
try {
    template = new Template(input.template);   // lstrip_blocks and trim_blocks on, as transformers
} catch (e) {
    parseError = String(e.message ?? e);
}
for (const c of input.cases) {
    if (parseError) { results.push({error: parseError}); continue; }
    try {
        results.push({text: template.render(c)});
    } catch (e) {
        results.push({error: String(e.message ?? e)});
    }
}
writeFileSync(outPath, JSON.stringify({results}));
