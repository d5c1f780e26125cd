"""Independent float64 forward of a Hugging Face checkpoint directory (model.safetensors + config.json) in the
semantics of transformers' Llama / Mixtral / Qwen3 / Qwen3-MoE / Qwen2-MoE modelling code: NEOX (rotate_half) RoPE,
grouped-query attention, per-head q/k RMSNorm (qwen3*), q/k/v biases (attention_bias), softmax top-k routing with
optional renormalisation (norm_topk_prob; Mixtral always), Qwen2-MoE's sigmoid-gated shared expert.
Reads safetensors by hand (header JSON + raw little-endian data): no transformers or safetensors package needed.
Input: {"dir": path, "tokens": [...]}. Output: {"logits": [...]} after the last token."""
import json, struct, sys, math
import torch

def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        assert e["dtype"] == "F32", e
        b, t = e["data_offsets"]
        out[name] = torch.frombuffer(bytearray(data[b:t]), dtype=torch.float32).reshape(e["shape"]).double()
    return out

def rms(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w

def rope(x, pos, theta):          # x: (T, heads, hd), NEOX halves
    hd = x.shape[-1]
    inv = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    ang = pos[:, None].double() * inv[None, :]                 # (T, hd/2)
    cos = torch.cat([ang.cos(), ang.cos()], -1)[:, None, :]
    sin = torch.cat([ang.sin(), ang.sin()], -1)[:, None, :]
    x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
    rot = torch.cat([-x2, x1], -1)
    return x * cos + rot * sin

def swiglu(x, g, u, d):
    return (torch.nn.functional.silu(x @ g.T) * (x @ u.T)) @ d.T

def main():
    inp = json.load(open(sys.argv[1]))
    cfg = json.load(open(inp["dir"] + "/config.json"))
    W = load(inp["dir"] + "/model.safetensors")
    mt = cfg["model_type"]
    toks = torch.tensor(inp["tokens"])
    T = len(toks)
    H, KV, hd = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    eps, theta = cfg["rms_norm_eps"], cfg["rope_theta"]
    x = W["model.embed_tokens.weight"][toks]
    pos = torch.arange(T)
    mask = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)
    for i in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % i
        h = rms(x, W[p + "input_layernorm.weight"], eps)
        def proj(n):
            y = h @ W[p + "self_attn.%s_proj.weight" % n].T
            if (p + "self_attn.%s_proj.bias" % n) in W:
                y = y + W[p + "self_attn.%s_proj.bias" % n]
            return y
        q = proj("q").reshape(T, H, hd)
        k = proj("k").reshape(T, KV, hd)
        v = proj("v").reshape(T, KV, hd)
        if (p + "self_attn.q_norm.weight") in W:
            q = rms(q, W[p + "self_attn.q_norm.weight"], eps)
            k = rms(k, W[p + "self_attn.k_norm.weight"], eps)
        q, k = rope(q, pos, theta), rope(k, pos, theta)
        rep = H // KV
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        att = torch.einsum("thd,shd->hts", q, k) / math.sqrt(hd) + mask
        o = torch.einsum("hts,shd->thd", att.softmax(-1), v).reshape(T, H * hd)
        x = x + o @ W[p + "self_attn.o_proj.weight"].T
        h = rms(x, W[p + "post_attention_layernorm.weight"], eps)
        if mt in ("llama", "qwen3"):
            y = swiglu(h, W[p + "mlp.gate_proj.weight"], W[p + "mlp.up_proj.weight"], W[p + "mlp.down_proj.weight"])
        else:
            m = p + ("block_sparse_moe." if mt == "mixtral" else "mlp.")
            E, k_ = (cfg["num_local_experts"] if mt == "mixtral" else cfg["num_experts"]), cfg["num_experts_per_tok"]
            probs = (h @ W[m + "gate.weight"].T).softmax(-1)
            top, idx = probs.topk(k_, dim=-1)
            if mt == "mixtral" or cfg.get("norm_topk_prob", False):
                top = top / top.sum(-1, keepdim=True)
            y = torch.zeros_like(h)
            names = ("w1", "w3", "w2") if mt == "mixtral" else ("gate_proj", "up_proj", "down_proj")
            for t in range(T):
                for j in range(k_):
                    e = int(idx[t, j]); ex = m + "experts.%d." % e
                    y[t] += top[t, j] * swiglu(h[t:t + 1], W[ex + names[0] + ".weight"], W[ex + names[1] + ".weight"],
                                               W[ex + names[2] + ".weight"])[0]
            if (m + "shared_expert.gate_proj.weight") in W:
                s = swiglu(h, W[m + "shared_expert.gate_proj.weight"], W[m + "shared_expert.up_proj.weight"],
                           W[m + "shared_expert.down_proj.weight"])
                y = y + torch.sigmoid(h @ W[m + "shared_expert_gate.weight"].T) * s
        x = x + y
    x = rms(x, W["model.norm.weight"], eps)
    head = W["lm_head.weight"] if "lm_head.weight" in W else W["model.embed_tokens.weight"]
    json.dump({"logits": (x[-1] @ head.T).tolist()}, open(sys.argv[2], "w"))

main()
