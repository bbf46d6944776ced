#!/usr/bin/python3
"""PyTorch CPU peer of the sampling rows of benchmarks/compare-peers (single thread, float32):
one token sampled from one row of V logits per call, with the Hugging Face warper semantics and
the same chain order as bench_sampling.cpp (truncation, then temperature 0.8, then a draw):

- temperature_draw_V: softmax(x / 1) and torch.multinomial;
- top_k40_V:  threshold at the 40th largest (torch.topk), mask, / 0.8, softmax, multinomial;
- top_p09_V:  the sort-based reference: sort, softmax, cumsum, mask cumulative <= 1 - p
              (keeping the top token), scatter back, mask, / 0.8, softmax, multinomial;
- min_p005_V: softmax, mask p < 0.05 * p_max, / 0.8, softmax, multinomial.

Logits: N(0, 5^2), as in bench_sampling.cpp. V in 32000, 128000, 256000.
Prints {"<row>": {"peer_ns": <median ns per token>, "peer": "pytorch-cpu"}} on stdout.
Environment (set by compare-peers): SELFREPLAY_PEER_TIME = cpu | real (clock, default cpu),
SELFREPLAY_PEER_REPETITIONS (default 3), SELFREPLAY_PEER_FILTER (regex on row names).
"""
import json

import torch

from _common import median_ns_per_call, row_filter

NEG_INF = float("-inf")


def temperature_draw(x, g):
    return torch.multinomial(torch.softmax(x / 1.0, dim=-1), 1, generator=g)


def top_k40(x, g):
    kth = torch.topk(x, 40).values[-1]
    y = x.masked_fill(x < kth, NEG_INF) / 0.8
    return torch.multinomial(torch.softmax(y, dim=-1), 1, generator=g)


def top_p09(x, g, p=0.9):
    sorted_logits, sorted_idx = torch.sort(x, descending=False)
    cum = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    remove_sorted = cum <= (1 - p)
    remove_sorted[-1:] = False  # min_tokens_to_keep = 1
    remove = remove_sorted.scatter(0, sorted_idx, remove_sorted)
    y = x.masked_fill(remove, NEG_INF) / 0.8
    return torch.multinomial(torch.softmax(y, dim=-1), 1, generator=g)


def min_p005(x, g, p=0.05):
    probs = torch.softmax(x, dim=-1)
    y = x.masked_fill(probs < p * probs.max(), NEG_INF) / 0.8
    return torch.multinomial(torch.softmax(y, dim=-1), 1, generator=g)


def main():
    out = {}
    g = torch.Generator().manual_seed(42)
    for vocab in (32000, 128000, 256000):
        x = torch.randn(vocab, generator=g) * 5
        calls = max(5, 2000000 // vocab)
        for name, fn in (("temperature_draw", temperature_draw), ("top_k40", top_k40), ("top_p09", top_p09),
                         ("min_p005", min_p005)):
            row = "%s_%d" % (name, vocab)
            if row_filter.search(row):
                out[row] = {"peer_ns": median_ns_per_call(lambda: fn(x, g), calls), "peer": "pytorch-cpu"}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
