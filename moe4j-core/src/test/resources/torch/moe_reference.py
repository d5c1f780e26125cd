#!/usr/bin/python3
"""Independent PyTorch reference of moe4j's MoE layer, for differential tests.

Reads a JSON case (config, weights, x, dy), runs the MoE forward in float64 the way the usual PyTorch
implementations do (loop over experts with index_select / index_add_), back-propagates with autograd
L = sum(dy * y) + aux, and writes y, the aux-loss values and every gradient as JSON.

Usage: moe_reference.py IN.json OUT.json     (Debian's /usr/bin/python3 with python3-torch)
"""
import json
import sys

import torch

torch.set_default_dtype(torch.float64)


def t(v, shape):
    return torch.tensor(v, dtype=torch.float64).reshape(shape)


def act(kind, h):
    if kind in ("SWIGLU",):
        return torch.nn.functional.silu(h)
    if kind in ("GEGLU", "MLP_GELU"):
        return torch.nn.functional.gelu(h, approximate="tanh")
    if kind == "MLP_GELU_ERF":
        return torch.nn.functional.gelu(h)
    if kind == "MLP_RELU":
        return torch.relu(h)
    raise ValueError(kind)


def ffn(kind, x, gate, up, down):
    if kind in ("SWIGLU", "GEGLU"):
        a = act(kind, x @ gate.T) * (x @ up.T)
    else:
        a = act(kind, x @ up.T)
    return a @ down.T


def capacity(cfg, n):
    rule, cf, E, k = cfg["capacityRule"], cfg["capacityFactor"], cfg["numExperts"], cfg["topK"]
    if rule == "FIXED":
        return cfg["fixedCapacity"]
    if rule == "FLAXFORMER":
        return max(int(round(cf * n / E)), 4)
    if rule == "GSHARD":
        c = int(cf * n // E)
        return 4 if c == 0 else c
    raise ValueError(rule)


def expert_choice(cfg, p):
    """Expert Choice: per group, each expert takes the tokens with the C largest p[:, e] (C capped at the group
    size); combine weight p[s, e]. Returns per-token slots in ascending expert id, padded with -1, and weights."""
    T, E = p.shape
    g = T if cfg["groupSize"] <= 0 or cfg["groupSize"] > T else cfg["groupSize"]
    chosen = torch.zeros(T, E, dtype=torch.bool)
    for s0 in range(0, T, g):
        n = min(g, T - s0)
        cap = min(capacity(cfg, n), n)
        top = p[s0:s0 + n].detach().topk(cap, dim=0).indices        # [cap, E] token offsets per expert
        chosen[s0:s0 + n].scatter_(0, top, True)
    idx = torch.full((T, E), -1, dtype=torch.long)
    for i in range(T):
        es = chosen[i].nonzero().flatten()
        idx[i, :es.numel()] = es
    w = p.gather(1, idx.clamp(min=0)) * (idx >= 0)
    return idx, w


def balance(kind, pi, idx, k, coef, group):
    """Balance loss averaged over groups of `group` tokens; idx [T, k] selected experts (before dropping)."""
    T, E = pi.shape
    if kind == "NONE" or coef == 0:
        return pi.sum() * 0
    g = T if group <= 0 or group > T else group
    starts = list(range(0, T, g))
    total = 0
    for s in starts:
        p = pi[s:s + g]
        sel = idx[s:s + g]
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


def main():
    case = json.load(open(sys.argv[1]))
    c = case["config"]
    T, d, E, k, f = case["tokens"], c["dModel"], c["numExperts"], c["topK"], c["expertHidden"]
    kind = c["expertType"]
    router = c["router"]
    x = t(case["x"], (T, d)).requires_grad_()
    dy = t(case["dy"], (T, d))
    W = t(case["router.weight"], (E, d)).requires_grad_()
    up = t(case["experts.up"], (E, f, d)).requires_grad_()
    down = t(case["experts.down"], (E, d, f)).requires_grad_()
    gated = kind in ("SWIGLU", "GEGLU")
    gate = t(case["experts.gate"], (E, f, d)).requires_grad_() if gated else None
    leaves = {"x": x, "router.weight": W, "experts.up": up, "experts.down": down}
    if gated:
        leaves["experts.gate"] = gate

    z = x @ W.T                                             # [T, E]
    scale = c["routedScale"]
    if router in ("softmax-topk", "switch"):
        p = torch.softmax(z, dim=-1)
        vals, idx = torch.topk(p, k, dim=-1)
        w = vals / vals.sum(-1, keepdim=True) if (c["normalizeTopK"] and router != "switch") else vals
        w = w * scale
        pi = p
    elif router == "deepseek-v3":
        s = torch.sigmoid(z)
        b = t(case["bias"], (E,))
        sb = (s + b).detach()
        ng, tg = c["nGroup"], c["topkGroup"]
        if ng > 1:
            grp = sb.view(T, ng, E // ng).topk(min(2, E // ng), dim=-1).values.sum(-1)
            keep = torch.zeros(T, ng, dtype=torch.bool)
            keep.scatter_(1, grp.topk(tg, dim=-1).indices, True)
            mask = keep.unsqueeze(-1).expand(T, ng, E // ng).reshape(T, E)
            sb = sb.masked_fill(~mask, float("-inf"))
        idx = sb.topk(k, dim=-1).indices
        vals = s.gather(1, idx)
        w = vals / (vals.sum(-1, keepdim=True) + 1e-20) if c["normalizeTopK"] else vals
        w = w * scale
        pi = s / s.sum(-1, keepdim=True)
    elif router == "expert-choice":
        p = torch.softmax(z, dim=-1)
        idx, w = expert_choice(c, p)
    elif router == "gshard":
        # lingvo Top2GatingOnLogits, policy "all": one-hot masks and exclusive cumulative sums per group
        p = torch.softmax(z, dim=-1)
        mask1 = torch.nn.functional.one_hot(p.argmax(-1), E).double()
        mask2 = torch.nn.functional.one_hot((p * (1 - mask1)).argmax(-1), E).double()
        g1, g2 = (p * mask1).sum(-1), (p * mask2).sum(-1)
        legacy = c["legacyNormalize"]
        if legacy:
            den = g1 + g2 + 1e-9
            g1, g2 = g1 / den, g2 / den
        keep1, keep2 = torch.ones(T, dtype=torch.bool), torch.ones(T, dtype=torch.bool)
        if c["dispatch"] == "CAPACITY":
            grp = T if c["groupSize"] <= 0 or c["groupSize"] > T else c["groupSize"]
            for s0 in range(0, T, grp):
                m1, m2 = mask1[s0:s0 + grp], mask2[s0:s0 + grp]
                cap = capacity(c, m1.shape[0])
                pos1 = torch.cumsum(m1, 0) - m1
                m1_kept = m1 * (pos1 < cap)
                keep1[s0:s0 + grp] = m1_kept.sum(-1) > 0
                pos2 = torch.cumsum(m2, 0) - m2 + m1_kept.sum(0, keepdim=True)
                keep2[s0:s0 + grp] = (m2 * (pos2 < cap)).sum(-1) > 0
        g1, g2 = g1 * keep1, g2 * keep2
        if not legacy:
            den = g1 + g2
            den = torch.where(den > 0, den, torch.ones_like(den))
            g1, g2 = g1 / den, g2 / den
        idx = torch.stack([mask1.argmax(-1), mask2.argmax(-1)], -1)
        w = torch.stack([g1, g2], -1)
        gshard_keep = torch.stack([keep1, keep2], -1)
        pi = p
    else:
        raise ValueError(router)

    # capacity: rank-major, position order; empty slots (expert -1, variable-count routers) are never kept;
    # GShard's own capacity is computed above
    keepm = idx >= 0
    if router == "gshard":
        keepm = gshard_keep
    elif c["dispatch"] == "CAPACITY":
        g = T if c["groupSize"] <= 0 or c["groupSize"] > T else c["groupSize"]
        for s0 in range(0, T, g):
            n = min(g, T - s0)
            cap = capacity(c, n)
            used = [0] * E
            for r in range(k):
                for i in range(s0, s0 + n):
                    e = int(idx[i, r])
                    if used[e] < cap:
                        used[e] += 1
                    else:
                        keepm[i, r] = False
    w = w * keepm

    y = torch.zeros(T, d)
    for e in range(E):
        tok, rank = torch.nonzero((idx == e) & keepm, as_tuple=True)
        if tok.numel() == 0:
            continue
        xe = x.index_select(0, tok)
        ye = ffn(kind, xe, gate[e] if gated else None, up[e], down[e])
        y = y.index_add(0, tok, ye * w[tok, rank].unsqueeze(-1))

    if c["sharedExperts"] > 0:
        fs = c["sharedExperts"] * c["sharedHidden"]
        sup = t(case["shared.up"], (1, fs, d))[0].requires_grad_()
        sdown = t(case["shared.down"], (1, d, fs))[0].requires_grad_()
        leaves["shared.up"], leaves["shared.down"] = sup, sdown
        sgate = None
        if gated:
            sgate = t(case["shared.gate"], (1, fs, d))[0].requires_grad_()
            leaves["shared.gate"] = sgate
        sh = ffn(kind, x, sgate, sup, sdown)
        if c["sharedGate"]:
            wsg = t(case["shared_gate"], (1, d)).requires_grad_()
            leaves["shared_gate"] = wsg
            sh = sh * torch.sigmoid(x @ wsg.T)
        y = y + sh

    if router == "expert-choice":
        bal = z.sum() * 0                                   # balanced by construction: no balance loss
    else:
        bal = balance(c["balanceLoss"], pi, idx, k, c["balanceCoef"], c["groupSize"])
    lse = torch.logsumexp(z, dim=-1)
    zl = c["zLossCoef"] * (lse ** 2).mean()
    loss = (dy * y).sum() + bal + zl
    loss.backward()
    out = {"y": y.detach().flatten().tolist(), "balanceLoss": float(bal), "zLoss": float(zl),
           "experts": idx.flatten().tolist(), "kept": keepm.flatten().tolist()}
    for name, leaf in leaves.items():
        out["grad." + name] = leaf.grad.flatten().tolist()
    json.dump(out, open(sys.argv[2], "w"))


if __name__ == "__main__":
    main()
