#!/usr/bin/python3
"""Regenerates tests/data/schedules/golden.csv: learning rates produced by PyTorch's
torch.optim.lr_scheduler (stepped exactly as a training loop steps them), plus Python
restatements of the Hugging Face (WSD, inverse sqrt) and optax (warmup_cosine_decay)
formulas, which are not installed here. tests/schedules/test_golden.cpp builds the matching
selfreplay schedule for every case name.

Usage: /usr/bin/python3 tests/golden/gen_schedules.py   (torch 1.13)
"""
import csv
import math
import os

import torch
from torch.optim import lr_scheduler as S

OUT = os.path.join(os.path.dirname(__file__), "..", "data", "schedules", "golden.csv")


def run_torch(base_lr, make, steps):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=base_lr)
    sched = make(opt)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def hf_wsd(step, W, S_, D, warmup, decay, m):
    # transformers.optimization._get_wsd_scheduler_lambda (num_cycles = 0.5)
    if step < W:
        p = step / max(1, W)
        f = {"linear": p, "cosine": 0.5 * (1.0 - math.cos(math.pi * p)), "1-sqrt": 1.0 - math.sqrt(1.0 - p)}[warmup]
        return max(0.0, f * (1.0 - m) + m)
    if step < W + S_:
        return 1.0
    if step < W + S_ + D:
        p = (step - W - S_) / max(1, D)
        f = {"linear": 1.0 - p, "cosine": 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * p)), "1-sqrt": 1.0 - math.sqrt(p)}[decay]
        return max(0.0, f * (1.0 - m) + m)
    return m


def hf_inverse_sqrt(step, W, timescale=None):
    # transformers.optimization._get_inverse_sqrt_schedule_lr_lambda
    if timescale is None:
        timescale = W or 10_000
    if step < W:
        return step / max(1, W)
    shift = timescale - W
    return 1.0 / math.sqrt((step + shift) / timescale)


def optax_warmup_cosine(step, init, peak, W, D, end, exponent):
    # optax.warmup_cosine_decay_schedule = join(linear(init, peak, W), cosine_decay(peak, D - W, end / peak))
    if step < W:
        frac = 1 - step / W
        return (init - peak) * frac + peak
    k = min(step - W, D - W)
    c = 0.5 * (1 + math.cos(math.pi * k / (D - W)))
    alpha = 0.0 if peak == 0 else end / peak
    return peak * ((1 - alpha) * c**exponent + alpha)


def main():
    cases = {}
    cases["torch_linear_lr"] = run_torch(2.0, lambda o: S.LinearLR(o, start_factor=0.25, end_factor=1.0, total_iters=40), 60)
    cases["torch_polynomial_lr"] = run_torch(0.1, lambda o: S.PolynomialLR(o, total_iters=50, power=2.0), 70)
    cases["torch_exponential_lr"] = run_torch(1.0, lambda o: S.ExponentialLR(o, gamma=0.95), 80)
    cases["torch_step_lr"] = run_torch(0.3, lambda o: S.StepLR(o, step_size=7, gamma=0.5), 50)
    cases["torch_multistep_lr"] = run_torch(1.0, lambda o: S.MultiStepLR(o, milestones=[10, 25, 40], gamma=0.3), 60)
    cases["torch_cosine_annealing_lr"] = run_torch(0.5, lambda o: S.CosineAnnealingLR(o, T_max=60, eta_min=0.01), 61)
    cases["torch_warm_restarts_mult2"] = run_torch(
        0.1, lambda o: S.CosineAnnealingWarmRestarts(o, T_0=10, T_mult=2, eta_min=1e-3), 150)
    cases["torch_warm_restarts_mult1"] = run_torch(0.2, lambda o: S.CosineAnnealingWarmRestarts(o, T_0=7), 40)
    cases["torch_one_cycle_cos"] = run_torch(
        0.4, lambda o: S.OneCycleLR(o, max_lr=0.4, total_steps=100, cycle_momentum=False), 100)
    cases["torch_one_cycle_linear_three_phase"] = run_torch(
        0.4, lambda o: S.OneCycleLR(o, max_lr=0.4, total_steps=90, pct_start=0.25, anneal_strategy="linear",
                                    three_phase=True, div_factor=10.0, final_div_factor=100.0, cycle_momentum=False), 90)
    for warm, dec in [("linear", "cosine"), ("cosine", "linear"), ("1-sqrt", "1-sqrt")]:
        name = "hf_wsd_" + warm.replace("-", "") + "_" + dec.replace("-", "")
        cases[name] = run_torch(
            3e-4, lambda o: S.LambdaLR(o, lambda s: hf_wsd(s, 10, 20, 30, warm, dec, 0.1)), 70)
    cases["hf_inverse_sqrt"] = run_torch(1e-3, lambda o: S.LambdaLR(o, lambda s: hf_inverse_sqrt(s, 16)), 100)
    cases["optax_warmup_cosine"] = [optax_warmup_cosine(s, 0.01, 1.0, 10, 50, 0.05, 1.0) for s in range(60)]
    cases["optax_warmup_cosine_exp2"] = [optax_warmup_cosine(s, 0.0, 2.0, 5, 25, 0.0, 2.0) for s in range(30)]

    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["case", "step", "value"])
        for name, values in cases.items():
            for step, v in enumerate(values):
                w.writerow([name, step, repr(float(v))])


if __name__ == "__main__":
    main()
