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


# ---- MoE++ (spec 4.14) and Autonomy-of-Experts (spec 4.15): written after the released code
# (SkyworkAI/MoE-plus-plus moe_plus_plus_layer.py, trestad/Autonomy-of-Experts AoE.py / MLPAoE.py), not after moe4j.

class ConstantExpert(torch.nn.Module):
    """MoE++ constant expert: softmax(wg(u)) mixes the input and a learned vector."""

    def __init__(self, wg, value):
        super().__init__()
        self.wg, self.constant = wg, value                        # [2, d], [d]

    def forward(self, inputs):
        weight = torch.softmax(inputs @ self.wg.T, dim=-1)
        return weight[:, 0:1] * inputs + weight[:, 1:2] * self.constant


def moepp_reference(case):
    c = case["config"]
    T, d, E, k, f = case["tokens"], c["dModel"], c["numExperts"], c["topK"], c["expertHidden"]
    kind = c["expertType"]
    n_const, n_copy, n_zero = c["constantExperts"], c["copyExperts"], c["zeroExperts"]
    n_ffn = E - n_const - n_copy - n_zero
    x = t(case["x"], (T, d)).requires_grad_()
    leaves = {"x": x}

    def leaf(name, shape):
        leaves[name] = t(case[name], shape).requires_grad_()
        return leaves[name]

    if c["routerHidden"] > 0:                                     # moe_2layer_gate
        w1, w2 = leaf("router.w1", (c["routerHidden"], d)), leaf("router.w2", (E, c["routerHidden"]))
        logits = torch.tanh(x @ w1.T) @ w2.T
    else:
        logits = x @ leaf("router.weight", (E, d)).T
    prev = None
    if c["gatingResidual"]:
        gate_map = leaf("router.gate_map", (E, E))
        if case.get("prevLogits") is not None:
            prev = t(case["prevLogits"], (T, E)).requires_grad_()
            leaves["prevLogits"] = prev
            logits = logits + prev @ gate_map.T
    # gating(): the released code's non-mixtral branch, with zero-expert removal switchable (paper: keep)
    if c["logitsNormStd"] > 0:
        gates = torch.softmax(logits / (logits.std(dim=1, keepdim=True) / c["logitsNormStd"]), dim=1)
    else:
        gates = torch.softmax(logits, dim=1)
    probs = gates
    gates, indices = torch.topk(gates, k=k, dim=1)
    if c["dropZeroExpertWeight"]:
        gates = torch.where(indices >= E - n_zero, torch.zeros_like(gates), gates)
    if c["normalizeTopK"]:
        gates = gates / torch.sum(gates, dim=1, keepdim=True)
    gates = gates * c["routedScale"]

    gate = leaf("experts.gate", (n_ffn, f, d)) if kind in ("SWIGLU", "GEGLU") else None
    up, down = leaf("experts.up", (n_ffn, f, d)), leaf("experts.down", (n_ffn, d, f))
    experts = [(lambda u, e=e: ffn(kind, u, gate[e] if gate is not None else None, up[e], down[e]))
               for e in range(n_ffn)]
    if n_const > 0:
        cwg, cval = leaf("constant_experts.wg", (n_const, 2, d)), leaf("constant_experts.value", (n_const, d))
        experts += [ConstantExpert(cwg[i], cval[i]) for i in range(n_const)]
    experts += [lambda u: u] * n_copy + [lambda u: torch.zeros_like(u)] * n_zero

    inputs = x if c["expertInputNoMulTopK"] else x * k            # MOELayer: reshaped_input *= MOE_TOP_K
    y = torch.zeros(T, d)
    for e in range(E):
        tok, rank = torch.nonzero(indices == e, as_tuple=True)
        if tok.numel() == 0:
            continue
        out = experts[e](inputs.index_select(0, tok)) * gates[tok, rank].unsqueeze(-1)
        y = y.index_add(0, tok, out)

    bal = balance(c["balanceLoss"], probs, indices, k, c["balanceCoef"], c["groupSize"])
    zl = c["zLossCoef"] * (torch.logsumexp(logits, dim=-1) ** 2).mean()
    loss = (t(case["dy"], (T, d)) * y).sum() + bal + zl
    if case.get("dLogits") is not None:
        loss = loss + (t(case["dLogits"], (T, E)) * logits).sum()
    loss.backward()
    return y, bal, zl, indices, leaves, {"logits": logits.detach().flatten().tolist()}


def aoe_reference(case):
    c = case["config"]
    T, d, E, k, f, r = case["tokens"], c["dModel"], c["numExperts"], c["topK"], c["expertHidden"], c["expertGateRank"]
    kind = c["expertType"]
    x = t(case["x"], (T, d)).requires_grad_()
    wg = t(case["router.wg"], (d, E * r)).requires_grad_()
    wup = t(case["experts.gate"], (E, f, r)).requires_grad_()     # AoE wup, per expert [f, d_low]
    v1 = t(case["experts.up"], (E, f, d)).requires_grad_()
    down = t(case["experts.down"], (E, d, f)).requires_grad_()
    w2 = down.transpose(1, 2)                                     # AoE w2, per expert [f, d]
    leaves = {"x": x, "router.wg": wg, "experts.gate": wup, "experts.up": v1, "experts.down": down}

    acts = (x @ wg).view(T, E, r)
    logits = torch.norm(acts, dim=-1)
    scores = logits.softmax(dim=-1)
    expert_weights, expert_indices = torch.topk(scores, k, dim=-1)
    if c["normalizeTopK"]:
        expert_weights = expert_weights / expert_weights.sum(-1, keepdim=True)
    expert_weights = expert_weights * c["routedScale"]
    topk_acts = acts[torch.arange(T).unsqueeze(1), expert_indices]  # [T, k, d_low]
    y = torch.zeros(T, d)
    for e in range(E):
        tok, rank = torch.nonzero(expert_indices == e, as_tuple=True)
        if tok.numel() == 0:
            continue
        x1 = topk_acts[tok, rank] @ wup[e].T
        x2 = x.index_select(0, tok) @ v1[e].T
        out = (act(kind, x1) * x2) @ w2[e]
        y = y.index_add(0, tok, out * expert_weights[tok, rank].unsqueeze(-1))
    if c["sharedExperts"] > 0:
        fs = c["sharedExperts"] * c["sharedHidden"]
        sg = t(case["shared.gate"], (1, fs, d))[0].requires_grad_()
        su = t(case["shared.up"], (1, fs, d))[0].requires_grad_()
        sd = t(case["shared.down"], (1, d, fs))[0].requires_grad_()
        leaves.update({"shared.gate": sg, "shared.up": su, "shared.down": sd})
        y = y + ffn(kind, x, sg, su, sd)
    bal = balance(c["balanceLoss"], scores, expert_indices, k, c["balanceCoef"], c["groupSize"])
    zl = c["zLossCoef"] * (torch.logsumexp(logits, dim=-1) ** 2).mean()
    loss = (t(case["dy"], (T, d)) * y).sum() + bal + zl
    loss.backward()
    return y, bal, zl, expert_indices, leaves, {}


VARIANTS = {"moe++": moepp_reference, "aoe": aoe_reference}


def variant_main(case):
    y, bal, zl, idx, leaves, extra = VARIANTS[case["config"]["router"]](case)
    out = {"y": y.detach().flatten().tolist(), "balanceLoss": float(bal), "zLoss": float(zl),
           "experts": idx.flatten().tolist(), "kept": [True] * idx.numel()}
    out.update(extra)
    for name, leaf in leaves.items():
        out["grad." + name] = leaf.grad.flatten().tolist() if leaf.grad is not None else [0.0] * leaf.numel()
    json.dump(out, open(sys.argv[2], "w"))


def main():
    case = json.load(open(sys.argv[1]))
    c = case["config"]
    if c["router"] in VARIANTS:
        return variant_main(case)
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
