#!/usr/bin/python3
"""Independent PyTorch reference of moe4j's MoLE training layer (spec 4.16), for differential tests.

Written after JieShibo/MoLE modeling_mole.py (MoleDecoderLayer, MoleMLP, MoleRMSNorm), in float64: the expert
input is the RMS-normed embedding of the current token (nn.functional.embedding of the ids), the router is a
bias-free linear map on the normed hidden state u with a softmax over all experts, experts and the shared FFN
are down(gelu(up(x))) with the exact GELU. Back-propagates L = sum(dy * y) with autograd and writes y and every
gradient (hidden state, embedding table, router, experts, shared FFN, norm weight) as JSON.

Usage: mole_reference.py IN.json OUT.json     (Debian's /usr/bin/python3 with python3-torch)
"""
import json
import sys

import torch

torch.set_default_dtype(torch.float64)


def t(v, shape):
    return torch.tensor(v, dtype=torch.float64).reshape(shape).requires_grad_(True)


def rmsnorm(x, w, eps):
    variance = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(variance + eps))


def mlp(x, up, down):
    return torch.nn.functional.gelu(x @ up.T) @ down.T


def main():
    case = json.load(open(sys.argv[1]))
    T, d, E, f, fs, V = (case[k] for k in ("tokens", "dModel", "numExperts", "expertHidden", "sharedHidden", "vocab"))
    eps = case["normEps"]
    ids = torch.tensor(case["ids"], dtype=torch.long)
    u = t(case["u"], (T, d))
    table = t(case["embedding"], (V, d))
    router = t(case["router.weight"], (E, d))
    up = t(case["experts.up"], (E, f, d))
    down = t(case["experts.down"], (E, d, f))
    s_up = t(case["shared.up"], (1, fs, d))
    s_down = t(case["shared.down"], (1, d, fs))
    norm_w = t(case["expert_norm.weight"], (d,))
    dy = torch.tensor(case["dy"], dtype=torch.float64).reshape(T, d)

    inputs_embeds = rmsnorm(torch.nn.functional.embedding(ids, table), norm_w, eps)
    router_value = torch.softmax(u @ router.T, dim=-1)
    shared = mlp(u, s_up[0], s_down[0])
    expert_output = torch.stack([mlp(inputs_embeds, up[e], down[e]) for e in range(E)], dim=1)  # T, E, d
    y = shared + (expert_output * router_value.unsqueeze(-1)).sum(dim=1)
    (dy * y).sum().backward()

    flat = lambda x: x.detach().reshape(-1).tolist()
    out = {"y": flat(y), "probs": flat(router_value), "grad.u": flat(u.grad), "grad.embedding": flat(table.grad),
           "grad.router.weight": flat(router.grad), "grad.experts.up": flat(up.grad),
           "grad.experts.down": flat(down.grad), "grad.shared.up": flat(s_up.grad),
           "grad.shared.down": flat(s_down.grad), "grad.expert_norm.weight": flat(norm_w.grad)}
    json.dump(out, open(sys.argv[2], "w"))


if __name__ == "__main__":
    main()
