#!/usr/bin/python3
"""Independent PyTorch (float64, autograd) reference of moe4j's training transformer, for differential tests.

Reads a JSON case: "config" (ModelConfig with its nested MoeConfig, as Jackson writes the records), "batch",
"seqLen", "tokens" (batch rows of seqLen + 1 ids) and every parameter by its moe4j name. Runs the forward the
usual PyTorch way (nn.Linear layout [out, in], RoPE on adjacent pairs (2i, 2i+1) as in llama.cpp / GPT-J,
repeat_interleave for grouped-query heads, masked softmax attention, a loop over experts with index_select /
index_add_ for the MoE), loss = mean cross-entropy + aux losses, back-propagates with autograd and writes
"ce", "aux" and "grad.<name>" for every parameter.

Supported MoE routers: softmax-topk (with shared experts, gated or not, HF / MEGABLOCKS / SWITCH balance loss
per group of groupSize tokens, z-loss). Usage: model_reference.py IN.json OUT.json (Debian's /usr/bin/python3).
"""
import json
import math
import sys

import torch

torch.set_default_dtype(torch.float64)


def rms(x, w, eps):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w


def rope(x, theta):
    """x [B, T, heads, hd]: pairs (2i, 2i+1) rotated by pos * theta^(-2i/hd)."""
    B, T, H, hd = x.shape
    inv = theta ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)          # [hd/2]
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]        # [T, hd/2]
    cos, sin = torch.cos(ang)[None, :, None, :], torch.sin(ang)[None, :, None, :]
    x0, x1 = x[..., 0::2], x[..., 1::2]
    out = torch.stack([x0 * cos - x1 * sin, x0 * sin + x1 * cos], dim=-1)
    return out.reshape(B, T, H, hd)


def balance(kind, pi, idx, k, coef, group):
    T, E = pi.shape
    if kind == "NONE" or coef == 0:
        return pi.sum() * 0
    g = T if group <= 0 or group > T else group
    starts = list(range(0, T, g))
    total = 0
    for s in starts:
        p, sel = pi[s:s + g], idx[s:s + g]
        n = p.shape[0]
        counts = torch.zeros(E)
        if kind == "SWITCH":
            for i in range(n):
                counts[sel[i, 0]] += 1
            f = counts / n
        else:
            for i in range(n):
                for j in range(sel.shape[1]):
                    counts[sel[i, j]] += 1
            f = counts / n if kind == "HF" else counts / (n * k)
        total = total + coef / len(starts) * E * (f * p.mean(0)).sum()
    return total


def swiglu(x, gate, up, down):
    return (torch.nn.functional.silu(x @ gate.T) * (x @ up.T)) @ down.T


def moe(c, x, P, pre):
    if c["router"] != "softmax-topk" or c["expertType"] != "SWIGLU":
        raise ValueError("reference supports softmax-topk SwiGLU, got %s %s" % (c["router"], c["expertType"]))
    N, d = x.shape
    E, k = c["numExperts"], c["topK"]
    z = x @ P[pre + "router.weight"].T
    p = torch.softmax(z, -1)
    vals, idx = torch.topk(p, k, dim=-1)
    w = vals / vals.sum(-1, keepdim=True) if c["normalizeTopK"] else vals
    w = w * c["routedScale"]
    gate, up, down = P[pre + "experts.gate"], P[pre + "experts.up"], P[pre + "experts.down"]
    y = torch.zeros(N, d)
    for e in range(E):
        tok, rank = torch.nonzero(idx == e, as_tuple=True)
        if tok.numel() == 0:
            continue
        ye = swiglu(x.index_select(0, tok), gate[e], up[e], down[e])
        y = y.index_add(0, tok, ye * w[tok, rank].unsqueeze(-1))
    if c["sharedExperts"] > 0:
        sh = swiglu(x, P[pre + "shared.gate"][0], P[pre + "shared.up"][0], P[pre + "shared.down"][0])
        if c["sharedGate"]:
            sh = sh * torch.sigmoid(x @ P[pre + "shared_gate"].T)
        y = y + sh
    aux = balance(c["balanceLoss"], p, idx, k, c["balanceCoef"], c["groupSize"])
    aux = aux + c["zLossCoef"] * (torch.logsumexp(z, -1) ** 2).mean()
    return y, aux


def main():
    case = json.load(open(sys.argv[1]))
    c = case["config"]
    B, T = case["batch"], case["seqLen"]
    P = {}
    for name, v in case["params"].items():
        P[name] = torch.tensor(v["data"], dtype=torch.float64).reshape(v["shape"]).requires_grad_()
    tok = torch.tensor(case["tokens"], dtype=torch.long).reshape(B, T + 1)
    if "adamw" not in case:
        ce, aux = loss(c, P, tok, B, T)
        (ce + aux).backward()
        out = {"ce": float(ce), "aux": float(aux)}
        for name, leaf in P.items():
            out["grad." + name] = leaf.grad.flatten().tolist() if leaf.grad is not None else [0.0] * leaf.numel()
        json.dump(out, open(sys.argv[2], "w"))
        return
    # full training steps: loss, backward, clip_grad_norm_, torch.optim.AdamW (decoupled decay on the named params)
    a = case["adamw"]
    decay = set(a["decay"])
    groups = [{"params": [P[n]], "weight_decay": a["weightDecay"] if n in decay else 0.0} for n in P]
    opt = torch.optim.AdamW(groups, lr=a["lr"], betas=(a["beta1"], a["beta2"]), eps=a["eps"], foreach=False)
    out = {"ce": [], "aux": [], "gradNorm": []}
    for step in range(a["steps"]):
        opt.zero_grad(set_to_none=False)
        ce, aux = loss(c, P, tok, B, T)
        (ce + aux).backward()
        for name, leaf in P.items():
            if leaf.grad is None:
                leaf.grad = torch.zeros_like(leaf)
            out.setdefault("grad%d.%s" % (step, name), leaf.grad.flatten().tolist())
        out["ce"].append(float(ce))
        out["aux"].append(float(aux))
        out["gradNorm"].append(float(torch.nn.utils.clip_grad_norm_(list(P.values()), a["clip"])))
        opt.step()
    for name, leaf in P.items():
        out["param." + name] = leaf.detach().flatten().tolist()
    json.dump(out, open(sys.argv[2], "w"))


def loss(c, P, tok, B, T):
    V, d, H, KV, hd = c["vocabSize"], c["dModel"], c["heads"], c["kvHeads"], c["headDim"]
    eps = c["normEps"]
    inp, tgt = tok[:, :T], tok[:, 1:]

    x = P["tok_embd"][inp]                                                    # [B, T, d]
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    aux = torch.zeros(())
    for l in range(c["layers"]):
        pre = "layers.%d." % l
        h = rms(x, P[pre + "attn_norm"], eps)
        q = (h @ P[pre + "attn.wq"].T).view(B, T, H, hd)
        k = (h @ P[pre + "attn.wk"].T).view(B, T, KV, hd)
        v = (h @ P[pre + "attn.wv"].T).view(B, T, KV, hd)
        if c["qkNorm"]:
            q = rms(q, P[pre + "attn.q_norm"], eps)
            k = rms(k, P[pre + "attn.k_norm"], eps)
        q, k = rope(q, c["ropeTheta"]), rope(k, c["ropeTheta"])
        k = k.repeat_interleave(H // KV, dim=2)
        v = v.repeat_interleave(H // KV, dim=2)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)    # [B, H, T, hd]
        s = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        s = s.masked_fill(~mask, float("-inf"))
        ctx = (torch.softmax(s, -1) @ v).transpose(1, 2).reshape(B, T, H * hd)
        x = x + ctx @ P[pre + "attn.wo"].T
        h = rms(x, P[pre + "ffn_norm"], eps)
        if l < c["denseLayers"]:
            x = x + swiglu(h, P[pre + "ffn.gate"], P[pre + "ffn.up"], P[pre + "ffn.down"])
        else:
            y, a = moe(c["moe"], h.reshape(B * T, d), P, pre + "moe.")
            x = x + y.view(B, T, d)
            aux = aux + a
    h = rms(x, P["output_norm"], eps)
    w_out = P["tok_embd"] if c["tiedEmbeddings"] else P["output"]
    logits = h @ w_out.T
    ce = torch.nn.functional.cross_entropy(logits.reshape(B * T, V), tgt.reshape(B * T))
    return ce, aux


if __name__ == "__main__":
    main()
