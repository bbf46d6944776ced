#!/usr/bin/python3
"""Regenerates tests/data/losses/golden_losses.txt: PyTorch (CPU, float64) values, per-position
values and autograd gradients for selfreplay's losses (next_token_loss, kl_divergence,
generalized_jsd), which tests/losses/test_golden.cpp compares against.

Run with Debian's python3 (torch 1.13):  /usr/bin/python3 tests/golden/gen_losses.py

Conventions reproduced here independently of the C++ code:
- NTP (paper reference code): target at t is token t+1, last position contributes 0,
  F.cross_entropy per position; reductions mean over B*T, over counted positions, or sum.
- KL(pi || theta): F.kl_div(log_softmax(theta/tau), log_softmax(pi/tau), log_target=True) summed
  over the vocabulary (reverse swaps the arguments); last position zeroed when shift.
- generalized JSD: the formula of TRL's GKDTrainer.generalized_jsd_loss (beta = 0 and 1 special-cased).
Float32 cases: inputs are rounded to float32, the truth is computed in float64 from those values.
-inf logits (masked vocabulary) are replaced by -1e30 inside torch only (exp underflows to exactly 0,
and autograd stays finite); the file keeps -inf, which the C++ receives.
"""
import math
import os

import torch
import torch.nn.functional as F

torch.set_num_threads(1)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "losses", "golden_losses.txt")


def finite_for_torch(x):
    return torch.where(torch.isinf(x) & (x < 0), torch.full_like(x, -1e30), x)


def position_weights(B, T, shift, mask):
    w = torch.ones(B, T, dtype=torch.float64)
    if shift:
        w[:, -1] = 0
    if mask is not None:
        w = w * (mask != 0).double()
    return w


def reduce(per_pos, counted, B, T, how):
    if how == "mean_all":
        return per_pos.sum() / (B * T)
    if how == "mean_counted":
        return per_pos.sum() / counted if counted > 0 else per_pos.sum() * 0
    return per_pos.sum()


def ce_case(c):
    B, T, V = c["shape"]
    x = c["student"].clone().requires_grad_(True)
    tok = c["tokens"]
    logits = finite_for_torch(x)
    per = torch.zeros(B, T, dtype=torch.float64)
    counted = 0
    w = torch.zeros(B, T, dtype=torch.float64)
    for b in range(B):
        for t in range(T - 1):
            y = int(tok[b, t + 1])
            if y == c["ignore_index"] or (c["mask"] is not None and c["mask"][b, t] == 0):
                continue
            w[b, t] = 1
            counted += 1
    tgt = tok[:, 1:].clone().long()
    losses = F.cross_entropy(logits[:, :-1, :].reshape(-1, V), tgt.reshape(-1),
                             reduction="none", ignore_index=c["ignore_index"]).reshape(B, T - 1)
    per = torch.cat([losses, torch.zeros(B, 1, dtype=torch.float64)], dim=1) * w
    value = reduce(per, counted, B, T, c["reduction"])
    value.backward()
    return value.item(), per.detach(), x.grad


def divergence_per_position(s, r, c):
    tau = c["temperature"]
    ls = F.log_softmax(finite_for_torch(s) / tau, dim=-1)
    lr = F.log_softmax(finite_for_torch(r) / tau, dim=-1)
    kind = c["kind"]
    if kind == "kl_forward":
        return F.kl_div(ls, lr, reduction="none", log_target=True).sum(-1)
    if kind == "kl_reverse":
        return F.kl_div(lr, ls, reduction="none", log_target=True).sum(-1)
    # TRL GKDTrainer.generalized_jsd_loss (student = ls, teacher = lr)
    beta = c["beta"]
    if beta == 0:
        jsd = F.kl_div(ls, lr, reduction="none", log_target=True)
    elif beta == 1:
        jsd = F.kl_div(lr, ls, reduction="none", log_target=True)
    else:
        bt = torch.tensor(beta, dtype=ls.dtype)
        mix = torch.logsumexp(torch.stack([ls + torch.log(1 - bt), lr + torch.log(bt)]), dim=0)
        kl_teacher = F.kl_div(mix, lr, reduction="none", log_target=True)
        kl_student = F.kl_div(mix, ls, reduction="none", log_target=True)
        jsd = bt * kl_teacher + (1 - bt) * kl_student
    return jsd.sum(-1)


def divergence_case(c):
    B, T, V = c["shape"]
    s = c["student"].clone().requires_grad_(True)
    w = position_weights(B, T, c["shift"], c["mask"])
    per = divergence_per_position(s, c["reference"], c) * w
    value = reduce(per, int(w.sum().item()), B, T, c["reduction"])
    value.backward()
    return value.item(), per.detach(), s.grad


def make(name, kind, dtype, shape, gen, seed, **kw):
    g = torch.Generator().manual_seed(seed)
    B, T, V = shape
    student, reference = gen(g, B, T, V)
    if dtype == "float32":  # round the inputs, compute the truth in float64
        student = student.float().double()
        reference = reference.float().double()
    c = dict(name=name, kind=kind, dtype=dtype, shape=shape, student=student, reference=reference,
             temperature=1.0, beta=0.0, reduction="mean_all", shift=True, ignore_index=-100, mask=None,
             tokens=torch.randint(0, V, (B, T), generator=g, dtype=torch.int32))
    c.update(kw)
    if gen is rising:
        c["formula"] = "rising"
    return c


def normal(scale=2.0, ref_noise=1.0):
    def gen(g, B, T, V):
        s = torch.randn(B, T, V, generator=g, dtype=torch.float64) * scale
        return s, s + ref_noise * torch.randn(B, T, V, generator=g, dtype=torch.float64)
    return gen


def extreme(g, B, T, V):
    """Logits of magnitude 1e4: each row sits at +1e4 or -1e4 (the reference at the opposite sign),
    a third of its entries 2e4 lower, plus O(1) noise, so that the softmax is not one-hot."""
    sign = torch.where(torch.rand(B, T, 1, generator=g) < 0.5, 1.0, -1.0).double()
    low = (torch.rand(B, T, V, generator=g) < 1.0 / 3).double() * -2e4
    s = 1e4 * sign + low + torch.randn(B, T, V, generator=g, dtype=torch.float64) * 2
    r = -1e4 * sign + low + torch.randn(B, T, V, generator=g, dtype=torch.float64) * 2
    return s, r


def masked_vocab(g, B, T, V):  # some vocabulary entries -inf in both (same entries)
    s = torch.randn(B, T, V, generator=g, dtype=torch.float64) * 2
    r = s + torch.randn(B, T, V, generator=g, dtype=torch.float64)
    banned = torch.rand(B, T, V, generator=g) < 0.3
    banned[..., 0] = False  # keep at least one finite entry per row
    s[banned] = -math.inf
    r[banned] = -math.inf
    return s, r


def rising(g, B, T, V):
    """The max keeps growing along the row (exercises the online rescaling). Generated by a formula
    (file key `formula rising`) that the C++ test evaluates identically with libm's sin / cos:
    s = -30 + 60 v / (V - 1) + 3 sin(0.37 v + 1.3 t + 2.1 b), r = 0.9 (-30 + 60 v / (V - 1)) + 3 cos(0.53 v + 0.7 t + 0.4 b)."""
    s = torch.empty(B, T, V, dtype=torch.float64)
    r = torch.empty(B, T, V, dtype=torch.float64)
    for b in range(B):
        for t in range(T):
            for v in range(V):
                ramp = -30.0 + 60.0 * v / (V - 1)
                s[b, t, v] = ramp + 3.0 * math.sin(0.37 * v + 1.3 * t + 2.1 * b)
                r[b, t, v] = 0.9 * ramp + 3.0 * math.cos(0.53 * v + 0.7 * t + 0.4 * b)
    return s, r


def cases():
    out = []
    for dt in ("float64", "float32"):
        sfx = "_" + dt
        out.append(make("ce_basic" + sfx, "ce", dt, (2, 5, 11), normal(), 1))
        out.append(make("ce_mean_counted_mask_ignore" + sfx, "ce", dt, (3, 4, 7), normal(), 2,
                        reduction="mean_counted",
                        mask=torch.tensor([[1, 0, 1, 1], [1, 1, 1, 0], [0, 1, 1, 1]], dtype=torch.int32)))
        c = out[-1]
        c["tokens"][1, 2] = -100
        out.append(make("ce_sum" + sfx, "ce", dt, (2, 3, 9), normal(), 3, reduction="sum"))
        out.append(make("ce_extreme" + sfx, "ce", dt, (2, 4, 13), extreme, 4))
        c = make("ce_masked_vocab" + sfx, "ce", dt, (2, 4, 17), masked_vocab, 5)
        c["tokens"] = torch.zeros(2, 4, dtype=torch.int32)  # targets on the always-finite entry 0
        out.append(c)
        out.append(make("ce_v1" + sfx, "ce", dt, (2, 3, 1), normal(), 6))
        out.append(make("ce_single_row" + sfx, "ce", dt, (1, 2, 10), normal(), 7))
        out.append(make("ce_long_row" + sfx, "ce", dt, (1, 2, 2100), rising, 8))
        for kind in ("kl_forward", "kl_reverse"):
            k = kind + "_"
            out.append(make(k + "basic" + sfx, kind, dt, (2, 5, 11), normal(), 10))
            out.append(make(k + "temperature_mask" + sfx, kind, dt, (3, 4, 8), normal(3.0, 2.0), 11,
                            temperature=2.0, reduction="mean_counted",
                            mask=torch.tensor([[1, 1, 0, 1], [0, 1, 1, 1], [1, 1, 1, 1]], dtype=torch.int32)))
            out.append(make(k + "noshift_sum" + sfx, kind, dt, (2, 3, 6), normal(), 12, shift=False, reduction="sum"))
            out.append(make(k + "extreme" + sfx, kind, dt, (2, 3, 13), extreme, 13))
            out.append(make(k + "masked_vocab" + sfx, kind, dt, (2, 4, 17), masked_vocab, 14))
            out.append(make(k + "v1" + sfx, kind, dt, (2, 3, 1), normal(), 15))
            out.append(make(k + "single_row" + sfx, kind, dt, (1, 1, 10), normal(), 16, shift=False))
            out.append(make(k + "long_row" + sfx, kind, dt, (1, 2, 2100), rising, 17))
        for beta in (0.0, 0.1, 0.5, 0.9, 1.0):
            out.append(make("jsd_beta%g" % beta + sfx, "jsd", dt, (2, 4, 9), normal(), 20, beta=beta))
        out.append(make("jsd_temperature_mask" + sfx, "jsd", dt, (3, 4, 8), normal(3.0, 2.0), 21, beta=0.3,
                        temperature=1.5, reduction="mean_counted",
                        mask=torch.tensor([[1, 1, 0, 1], [0, 1, 1, 1], [1, 1, 1, 1]], dtype=torch.int32)))
        out.append(make("jsd_extreme" + sfx, "jsd", dt, (2, 3, 13), extreme, 22, beta=0.5))
        out.append(make("jsd_masked_vocab" + sfx, "jsd", dt, (2, 4, 17), masked_vocab, 23, beta=0.5))
        out.append(make("jsd_long_row" + sfx, "jsd", dt, (1, 2, 2100), rising, 24, beta=0.5))
    return out


def fmt(x):
    x = float(x)
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return repr(x)


def fmt13(x):  # gradients: 13 significant digits (the tests need 1e-9 relative at most)
    x = float(x)
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return "%.13g" % x


def main():
    lines = ["# generated by tests/golden/gen_losses.py with torch %s; do not edit" % torch.__version__]
    for c in cases():
        value, per, grad = ce_case(c) if c["kind"] == "ce" else divergence_case(c)
        B, T, V = c["shape"]
        lines.append("case " + c["name"])
        lines.append("kind " + c["kind"])
        lines.append("dtype " + c["dtype"])
        lines.append("shape %d %d %d" % (B, T, V))
        lines.append("temperature " + fmt(c["temperature"]))
        lines.append("beta " + fmt(c["beta"]))
        lines.append("reduction " + c["reduction"])
        lines.append("shift %d" % int(c["shift"]))
        lines.append("ignore_index %d" % c["ignore_index"])
        if c.get("formula"):
            lines.append("formula " + c["formula"])
        else:
            lines.append("student " + " ".join(fmt(v) for v in c["student"].flatten()))
            lines.append("reference " + " ".join(fmt(v) for v in c["reference"].flatten()))
        lines.append("tokens " + " ".join(str(int(v)) for v in c["tokens"].flatten()))
        if c["mask"] is not None:
            lines.append("mask " + " ".join(str(int(v)) for v in c["mask"].flatten()))
        lines.append("value " + fmt(value))
        lines.append("per_position " + " ".join(fmt(v) for v in per.flatten()))
        lines.append("grad " + " ".join(fmt13(v) for v in grad.flatten()))
        lines.append("end")
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote", os.path.normpath(OUT))


if __name__ == "__main__":
    main()
