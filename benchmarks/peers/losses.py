#!/usr/bin/python3
"""PyTorch CPU peer of the losses rows of benchmarks/compare-peers (single thread, float32):
fused KL(pi || theta) value + gradient w.r.t. the student logits, and next-token cross-entropy
value + gradient, at rows x V = 1024 x 32000 and 256 x 128000.

Prints {"<row>": {"peer_ns": <median ns>, "peer": "pytorch-cpu"}} on stdout.
Environment (set by compare-peers): SELFREPLAY_PEER_TIME = cpu | real (clock, default cpu),
SELFREPLAY_PEER_REPETITIONS (default 3), SELFREPLAY_PEER_FILTER (regex on row names).
"""
import json

import torch
import torch.nn.functional as F

from _common import median_ns_per_call, row_filter


def kl_step(s, r):
    x = s.detach().requires_grad_(True)
    loss = F.kl_div(F.log_softmax(x, dim=-1), F.log_softmax(r, dim=-1), reduction="sum", log_target=True) / s.shape[0]
    loss.backward()
    return loss.item(), x.grad


def ce_step(s, tokens):
    x = s.detach().requires_grad_(True)
    loss = F.cross_entropy(x, tokens)
    loss.backward()
    return loss.item(), x.grad


def main():
    out = {}
    g = torch.Generator().manual_seed(42)
    for rows, vocab in ((1024, 32000), (256, 128000)):
        shape = "%dx%d" % (rows, vocab)
        want_kl = row_filter.search("kl_fused_" + shape)
        want_ce = row_filter.search("ce_fused_" + shape)
        if not (want_kl or want_ce):
            continue
        s = torch.randn(rows, vocab, generator=g) * 3
        if want_kl:
            r = s + 0.5 * torch.randn(rows, vocab, generator=g)
            out["kl_fused_" + shape] = {"peer_ns": median_ns_per_call(lambda: kl_step(s, r)), "peer": "pytorch-cpu"}
            del r
        if want_ce:
            tokens = torch.randint(0, vocab, (rows,), generator=g)
            out["ce_fused_" + shape] = {"peer_ns": median_ns_per_call(lambda: ce_step(s, tokens)), "peer": "pytorch-cpu"}
        del s
    print(json.dumps(out))


if __name__ == "__main__":
    main()
