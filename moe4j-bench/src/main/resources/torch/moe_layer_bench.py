#!/usr/bin/python3
"""PyTorch peer for `moe4j bench moe-layer`: two MoE FFN implementations, timed forward (no grad) and
forward+backward, printed as JSON:
  loop    - the usual loop over experts with index_select / index_add_ per expert (HF Mixtral style);
  sorted  - assignments sorted by expert once, one gather, per-expert matmuls on contiguous chunks, one
            index_add (the stronger baseline: autograd keeps one scatter instead of one per expert).

Usage: moe_layer_bench.py T d E k f shared_f warmup repeat [serve]
With "serve": warm every variant up, print "ready", then run one call per stdin line naming it (loop_fwd,
loop_fwdbwd, sorted_fwd, sorted_fwdbwd) and print its seconds (wall, then CPU of all threads), until an empty line or EOF — so that the caller can
alternate PyTorch's calls with its own and both see the same machine load.
Run with Debian's /usr/bin/python3 and, set by the caller BEFORE Python starts:
OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=<threads> OMP_NUM_THREADS=<threads>
(Debian's torch does its matmuls in OpenBLAS, which ignores torch.set_num_threads.)
"""
import json
import sys
import time

import torch


def main():
    T, d, E, k, f, fs, warmup, repeat = (int(a) for a in sys.argv[1:9])
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    router = torch.nn.Parameter(torch.randn(E, d, generator=g) * 0.02)
    # one Parameter per expert matrix, as HF's nn.ModuleList of experts: indexing a stacked [E, f, d]
    # Parameter would make autograd materialise a full-size gradient per expert (64 × 3 × 33 MB per step)
    w1 = [torch.nn.Parameter(torch.randn(f, d, generator=g) * 0.02) for _ in range(E)]
    w3 = [torch.nn.Parameter(torch.randn(f, d, generator=g) * 0.02) for _ in range(E)]
    w2 = [torch.nn.Parameter(torch.randn(d, f, generator=g) * 0.02) for _ in range(E)]
    params = [router] + w1 + w3 + w2
    if fs > 0:
        s1 = torch.nn.Parameter(torch.randn(fs, d, generator=g) * 0.02)
        s3 = torch.nn.Parameter(torch.randn(fs, d, generator=g) * 0.02)
        s2 = torch.nn.Parameter(torch.randn(d, fs, generator=g) * 0.02)
        params += [s1, s3, s2]
    x0 = torch.randn(T, d, generator=g)
    dy = torch.randn(T, d, generator=g)

    def moe(x):
        p = torch.softmax(x @ router.T, dim=-1)
        w, idx = torch.topk(p, k, dim=-1)
        w = w / w.sum(-1, keepdim=True)
        y = torch.zeros_like(x)
        for e in range(E):
            tok, r = torch.nonzero(idx == e, as_tuple=True)
            if tok.numel() == 0:
                continue
            xe = x.index_select(0, tok)
            h = torch.nn.functional.silu(xe @ w1[e].T) * (xe @ w3[e].T)
            y.index_add_(0, tok, (h @ w2[e].T) * w[tok, r].unsqueeze(-1))
        if fs > 0:
            y = y + (torch.nn.functional.silu(x @ s1.T) * (x @ s3.T)) @ s2.T
        return y

    def moe_sorted(x):
        p = torch.softmax(x @ router.T, dim=-1)
        w, idx = torch.topk(p, k, dim=-1)
        w = w / w.sum(-1, keepdim=True)
        flat = idx.reshape(-1)
        order = torch.argsort(flat, stable=True)
        tok = order // k
        counts = torch.bincount(flat, minlength=E).tolist()
        xs = x.index_select(0, tok)
        outs = []
        start = 0
        for e in range(E):
            n = counts[e]
            if n == 0:
                continue
            xe = xs[start:start + n]
            h = torch.nn.functional.silu(xe @ w1[e].T) * (xe @ w3[e].T)
            outs.append(h @ w2[e].T)
            start += n
        ys = torch.cat(outs, 0) * w.reshape(-1)[order].unsqueeze(-1)
        y = torch.zeros_like(x).index_add(0, tok, ys)
        if fs > 0:
            y = y + (torch.nn.functional.silu(x @ s1.T) * (x @ s3.T)) @ s2.T
        return y

    def make(impl):
        def fwd():
            with torch.no_grad():
                impl(x0)

        def fwdbwd():
            for q in params:
                q.grad = None
            x = x0.clone().requires_grad_()
            y = impl(x)
            y.backward(dy)
        return fwd, fwdbwd

    if len(sys.argv) > 9 and sys.argv[9] == "serve":
        fns = {}
        for variant, impl in (("loop", moe), ("sorted", moe_sorted)):
            fns[variant + "_fwd"], fns[variant + "_fwdbwd"] = make(impl)
        for fn in fns.values():
            for _ in range(warmup):
                fn()
        print("ready", flush=True)
        for line in sys.stdin:
            name = line.strip()
            if not name:
                break
            t0, c0 = time.perf_counter(), time.process_time()
            fns[name]()
            print(time.perf_counter() - t0, time.process_time() - c0, flush=True)
        return

    out = {"threads": torch.get_num_threads(), "torch": torch.__version__}
    for variant, impl in (("loop", moe), ("sorted", moe_sorted)):
        fwd, fwdbwd = make(impl)
        for name, fn in (("fwd", fwd), ("fwdbwd", fwdbwd)):
            for _ in range(warmup):
                fn()
            ts = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                fn()
                ts.append(time.perf_counter() - t0)
            out[variant + "_" + name] = ts
    print(json.dumps(out))


if __name__ == "__main__":
    main()
