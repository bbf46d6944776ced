#!/usr/bin/python3
"""Regenerates tests/data/losses/golden_linear.txt: PyTorch (CPU, float64) values, per-position
values and autograd gradients with respect to the hidden states H, the projection W and the bias
for selfreplay's linear losses (linear_next_token_loss, linear_kl_divergence,
linear_generalized_jsd), which tests/losses/test_linear_golden.cpp compares against.

Run with Debian's python3 (torch 1.13):  /usr/bin/python3 tests/golden/gen_linear.py

Independent of the C++ code: logits = H @ W.T + b, then
- NTP: F.cross_entropy per position on the shifted targets (last position and ignored / masked
  positions contribute 0); reductions mean over B*T, over counted positions, or sum;
- KL(pi || theta): F.kl_div(log_softmax(theta / tau), log_softmax(pi / tau), log_target=True)
  summed over the vocabulary (reverse swaps the arguments), last position zeroed when shift;
- generalized JSD: the formula of TRL's GKDTrainer.generalized_jsd_loss.
pi has its own H (with another width D_pi), W and bias. Float32 cases: the inputs are rounded to
float32 and the truth is computed in float64 from them. A -inf bias (a masked vocabulary entry)
is -1e30 inside torch only (its probability underflows to exactly 0); the file keeps -inf.
"""
import math
import os

import torch
import torch.nn.functional as F

torch.set_num_threads(1)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "losses", "golden_linear.txt")


def finite(x):
    return torch.where(torch.isinf(x) & (x < 0), torch.full_like(x, -1e30), x)


def reduce(per, counted, n, how):
    if how == "mean_all":
        return per.sum() / n
    if how == "mean_counted":
        return per.sum() / counted if counted > 0 else per.sum() * 0
    return per.sum()


def weights(c):
    B, L = c["B"], c["L"]
    w = torch.ones(B, L, dtype=torch.float64)
    if c["kind"] == "ce" or c["shift"]:
        w[:, -1] = 0
    if c["mask"] is not None:
        w = w * (c["mask"] != 0).double()
    if c["kind"] == "ce":
        tok = c["tokens"]
        for b in range(B):
            for t in range(L - 1):
                if int(tok[b, t + 1]) == c["ignore_index"]:
                    w[b, t] = 0
    return w


def per_position(c, zs, zr):
    B, L, V = c["B"], c["L"], c["V"]
    if c["kind"] == "ce":
        tok = c["tokens"].long()
        tgt = torch.cat([tok[:, 1:], torch.zeros(B, 1, dtype=torch.long)], dim=1).reshape(-1)
        tgt = torch.where(tgt == c["ignore_index"], torch.zeros_like(tgt), tgt)
        return F.cross_entropy(zs, tgt, reduction="none").reshape(B, L)
    tau = c["temperature"]
    ls = F.log_softmax(zs / tau, dim=-1)
    lr = F.log_softmax(zr / tau, dim=-1)
    if c["kind"] == "kl_forward":
        out = F.kl_div(ls, lr, reduction="none", log_target=True).sum(-1)
    elif c["kind"] == "kl_reverse":
        out = F.kl_div(lr, ls, reduction="none", log_target=True).sum(-1)
    else:  # TRL GKDTrainer.generalized_jsd_loss, 0 < beta < 1
        bt = torch.tensor(c["beta"], dtype=ls.dtype)
        mix = torch.logsumexp(torch.stack([ls + torch.log(1 - bt), lr + torch.log(bt)]), dim=0)
        out = (bt * F.kl_div(mix, lr, reduction="none", log_target=True)
               + (1 - bt) * F.kl_div(mix, ls, reduction="none", log_target=True)).sum(-1)
    return out.reshape(B, L)


def solve(c):
    h = c["h"].clone().requires_grad_(True)
    w = c["w"].clone().requires_grad_(True)
    b = c["b"].clone().requires_grad_(True)
    zs = h @ w.T + finite(b)
    zr = None
    if c["kind"] != "ce":
        zr = c["hr"] @ c["wr"].T + finite(c["br"])
    wts = weights(c)
    per = per_position(c, zs, zr) * wts
    value = reduce(per, int(wts.sum().item()), c["B"] * c["L"], c["reduction"]) * c["scale"]
    value.backward()
    return value.item(), per.detach(), h.grad, w.grad, b.grad


def make(name, kind, dtype, B, L, D, V, seed, Dr=None, masked=False, **kw):
    g = torch.Generator().manual_seed(seed)
    Dr = Dr or D
    rnd = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)
    c = dict(name=name, kind=kind, dtype=dtype, B=B, L=L, D=D, Dr=Dr, V=V, temperature=1.0, beta=0.5,
             reduction="mean_all", shift=True, ignore_index=-100, mask=None, scale=1.0,
             h=rnd(B * L, D), w=rnd(V, D) * (3.0 / math.sqrt(D)), b=rnd(V) * 0.5,
             hr=rnd(B * L, Dr), wr=rnd(V, Dr) * (3.0 / math.sqrt(Dr)), br=rnd(V) * 0.5,
             tokens=torch.randint(0, V, (B, L), generator=g, dtype=torch.int32))
    if masked:  # every third entry from 1 masked in both models; targets moved off them
        for v in range(1, V, 3):
            c["b"][v] = -math.inf
            c["br"][v] = -math.inf
        c["tokens"] = torch.where(c["tokens"] % 3 == 1, c["tokens"] - 1, c["tokens"])
    c.update(kw)
    if dtype == "float32":
        for k in ("h", "w", "b", "hr", "wr", "br"):
            c[k] = c[k].float().double()
    return c


def cases():
    out = []
    mask = torch.tensor([[1, 1, 0, 1, 1], [0, 1, 1, 1, 1], [1, 1, 1, 0, 1]], dtype=torch.int32)
    for dt in ("float64", "float32"):
        s = "_" + dt
        out.append(make("ce_basic" + s, "ce", dt, 3, 5, 7, 13, 1))
        c = make("ce_mask_ignore_counted" + s, "ce", dt, 3, 5, 6, 11, 2, reduction="mean_counted", mask=mask, scale=2.5)
        c["tokens"][1, 3] = -100
        out.append(c)
        out.append(make("ce_sum_masked_vocab" + s, "ce", dt, 2, 4, 5, 17, 3, masked=True, reduction="sum"))
        for kind in ("kl_forward", "kl_reverse"):
            out.append(make(kind + "_basic" + s, kind, dt, 3, 5, 7, 13, 10, Dr=4))
            out.append(make(kind + "_temperature_mask" + s, kind, dt, 3, 5, 6, 9, 11, Dr=9, temperature=1.7,
                            reduction="mean_counted", mask=mask, scale=3.0))
            out.append(make(kind + "_noshift_sum_masked_vocab" + s, kind, dt, 2, 3, 5, 16, 12, masked=True,
                            shift=False, reduction="sum"))
        out.append(make("jsd_beta0.3" + s, "jsd", dt, 3, 5, 7, 13, 20, Dr=5, beta=0.3))
        out.append(make("jsd_temperature_mask_masked_vocab" + s, "jsd", dt, 3, 5, 6, 10, 21, masked=True, beta=0.6,
                        temperature=1.4, reduction="mean_counted", mask=mask))
    return out


def fmt(x):
    return " ".join(repr(float(v)) if math.isfinite(float(v)) else ("-inf" if float(v) < 0 else "inf")
                    for v in x.reshape(-1).tolist())


def main():
    lines = ["# generated by tests/golden/gen_linear.py (PyTorch %s); do not edit" % torch.__version__]
    for c in cases():
        value, per, dh, dw, db = solve(c)
        lines.append("name %s" % c["name"])
        for k in ("kind", "dtype", "reduction"):
            lines.append("%s %s" % (k, c[k]))
        for k in ("B", "L", "D", "Dr", "V", "ignore_index"):
            lines.append("%s %d" % (k, c[k]))
        for k in ("temperature", "beta", "scale"):
            lines.append("%s %r" % (k, c[k]))
        lines.append("shift %d" % int(c["shift"]))
        if c["mask"] is not None:
            lines.append("mask " + " ".join(str(int(v)) for v in c["mask"].reshape(-1).tolist()))
        lines.append("tokens " + " ".join(str(int(v)) for v in c["tokens"].reshape(-1).tolist()))
        for k in ("h", "w", "b", "hr", "wr", "br"):
            lines.append("%s %s" % (k, fmt(c[k])))
        lines.append("value %r" % value)
        lines.append("per " + fmt(per))
        lines.append("dh " + fmt(dh))
        lines.append("dw " + fmt(dw))
        lines.append("db " + fmt(db))
        lines.append("end")
    with open(OUT, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote %s (%d cases)" % (os.path.relpath(OUT), len(cases())))


if __name__ == "__main__":
    main()
