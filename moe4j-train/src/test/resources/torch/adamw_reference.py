# torch.optim.AdamW on given parameters and per-step gradients: the reference for moe4j's AdamW.
# in.json: {"params": [{"shape": [..], "values": [..], "decay": bool, "lrMult": float}], "grads": [[[..] per param] per step],
#           "lrs": [per step], "beta1", "beta2", "eps", "weightDecay"}
# out.json: {"values": [[..] per param], "m": [[..]], "v": [[..]]}
import json, sys
import torch

inp = json.load(open(sys.argv[1]))
params = [torch.tensor(p["values"], dtype=torch.float32).reshape(p["shape"]).requires_grad_(True) for p in inp["params"]]
groups = [{"params": [t], "weight_decay": inp["weightDecay"] if p["decay"] else 0.0, "lr_mult": p["lrMult"]}
          for t, p in zip(params, inp["params"])]
opt = torch.optim.AdamW(groups, lr=1.0, betas=(inp["beta1"], inp["beta2"]), eps=inp["eps"], foreach=False)
for step, lr in enumerate(inp["lrs"]):
    for t, g in zip(params, inp["grads"][step]):
        t.grad = torch.tensor(g, dtype=torch.float32).reshape(t.shape)
    for grp in opt.param_groups:
        grp["lr"] = lr * grp["lr_mult"]
    opt.step()
out = {"values": [t.detach().reshape(-1).tolist() for t in params],
       "m": [opt.state[t]["exp_avg"].reshape(-1).tolist() for t in params],
       "v": [opt.state[t]["exp_avg_sq"].reshape(-1).tolist() for t in params]}
json.dump(out, open(sys.argv[2], "w"))
