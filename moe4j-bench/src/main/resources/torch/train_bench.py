"""PyTorch peer of `moe4j bench train`: the same decoder-only MoE transformer (RMSNorm, RoPE on adjacent pairs, GQA,
SwiGLU experts with softmax top-k routing and the HF balance loss, untied LM head), float32, one training step =
zero_grad + forward + cross-entropy + backward + clip_grad_norm_(1.0) + AdamW. The MoE is the usual
loop over experts with index_select / index_add_ (as HF Mixtral / Qwen-MoE do). Run with Debian's python3 and
OMP_WAIT_POLICY=PASSIVE, OPENBLAS_NUM_THREADS=threads.
argv: vocab d layers heads kv hd experts topk f batch seq threads warmup repeat
prints JSON {"step_seconds": [...], "params": N}"""
import json, math, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

V, D, L, H, KV, HD, E, K, FF, B, T, THREADS, WARM, REP = map(int, sys.argv[1:15])
torch.set_num_threads(THREADS)
torch.manual_seed(0)


class RMSNorm(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.w = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * self.w


def rope_tables(T, hd):
    inv = 10000.0 ** (-torch.arange(0, hd, 2, dtype=torch.float32) / hd)
    ang = torch.arange(T, dtype=torch.float32)[:, None] * inv[None, :]
    return ang.cos()[None, :, None, :], ang.sin()[None, :, None, :]


COS, SIN = rope_tables(T, HD)


def rope(x):
    x0, x1 = x[..., 0::2], x[..., 1::2]
    return torch.stack([x0 * COS - x1 * SIN, x0 * SIN + x1 * COS], -1).flatten(-2)


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.wq = nn.Linear(D, H * HD, bias=False)
        self.wk = nn.Linear(D, KV * HD, bias=False)
        self.wv = nn.Linear(D, KV * HD, bias=False)
        self.wo = nn.Linear(H * HD, D, bias=False)
        self.register_buffer("mask", torch.full((T, T), float("-inf")).triu(1))

    def forward(self, x):
        q = rope(self.wq(x).view(B, T, H, HD))
        k = rope(self.wk(x).view(B, T, KV, HD)).repeat_interleave(H // KV, 2)
        v = self.wv(x).view(B, T, KV, HD).repeat_interleave(H // KV, 2)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        s = q @ k.transpose(-1, -2) / math.sqrt(HD) + self.mask
        return self.wo((s.softmax(-1) @ v).transpose(1, 2).reshape(B, T, H * HD))


class Expert(nn.Module):
    def __init__(self):
        super().__init__()
        self.gate = nn.Linear(D, FF, bias=False)
        self.up = nn.Linear(D, FF, bias=False)
        self.down = nn.Linear(FF, D, bias=False)

    def forward(self, x):
        return self.down(F.silu(self.gate(x)) * self.up(x))


class Moe(nn.Module):
    def __init__(self):
        super().__init__()
        self.router = nn.Linear(D, E, bias=False)
        self.experts = nn.ModuleList(Expert() for _ in range(E))

    def forward(self, x):
        x = x.reshape(-1, D)
        p = self.router(x).softmax(-1)
        w, idx = p.topk(K, -1)
        w = w / w.sum(-1, keepdim=True)
        y = torch.zeros_like(x)
        counts = torch.zeros(E)
        for e in range(E):
            tok, slot = torch.nonzero(idx == e, as_tuple=True)
            counts[e] = tok.numel()
            if tok.numel() == 0:
                continue
            y.index_add_(0, tok, self.experts[e](x.index_select(0, tok)) * w[tok, slot, None])
        aux = 0.01 * E * ((counts / x.shape[0]) * p.mean(0)).sum()
        return y.view(B, T, D), aux


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.n1, self.n2, self.attn, self.moe = RMSNorm(D), RMSNorm(D), Attention(), Moe()

    def forward(self, x):
        x = x + self.attn(self.n1(x))
        y, aux = self.moe(self.n2(x))
        return x + y, aux


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(V, D)
        self.blocks = nn.ModuleList(Block() for _ in range(L))
        self.norm = RMSNorm(D)
        self.out = nn.Linear(D, V, bias=False)

    def forward(self, tok, tgt):
        x = self.emb(tok)
        aux = 0
        for b in self.blocks:
            x, a = b(x)
            aux = aux + a
        logits = self.out(self.norm(x))
        return F.cross_entropy(logits.reshape(-1, V), tgt.reshape(-1)) + aux


model = Model()
opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
data = torch.randint(0, V, (B, T + 1))


def step():
    opt.zero_grad(set_to_none=True)
    loss = model(data[:, :T], data[:, 1:])
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()


for _ in range(WARM):
    step()
times = []
for _ in range(REP):
    t0 = time.perf_counter()
    step()
    times.append(time.perf_counter() - t0)
print(json.dumps({"step_seconds": times, "params": sum(p.numel() for p in model.parameters())}))
