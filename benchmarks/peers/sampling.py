#!/usr/bin/python3
"""PyTorch CPU peer of the sampling rows of benchmarks/compare-peers (single thread, float32):
one token sampled from one row of V logits per call, with the Hugging Face warper semantics and
the same chain order as bench_sampling.cpp (truncation, then temperature 0.8, then a draw):

- temperature_draw_V: softmax(x / 1) and torch.multinomial;
- top_k40_V:  threshold at the 40th largest (torch.topk), mask, / 0.8, softmax, multinomial;
- top_p09_V:  the sort-based reference: sort, softmax, cumsum, mask cumulative <= 1 - p
              (keeping the top token), scatter back, mask, / 0.8, softmax, multinomial;
- min_p005_V: softmax, mask p < 0.05 * p_max, / 0.8, softmax, multinomial;
- typical_p09_V: HF TypicalLogitsWarper (log-softmax, entropy, |-log p - H|, sort, cumsum of the
              sorted probabilities, keep the scores up to the first reaching 0.9), softmax,
              multinomial;
- gumbel_draw_V: argmax(x - log(-log(u))), u = torch.rand.

Logits as in bench_sampling.cpp: N(0, 5^2); the `_flat` rows N(0, 2^2); the `_zipf` rows
-1.1 ln(rank) for a random permutation of the ranks 1..V. V in 32000, 128000, 256000.
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


def typical_p09(x, g, mass=0.9):
    logp = torch.log_softmax(x, dim=-1)
    p = logp.exp()
    entropy = -(logp * p).nansum()
    scores = (-logp - entropy).abs()
    sorted_scores, sorted_idx = torch.sort(scores)
    cum = x.gather(0, sorted_idx).softmax(dim=-1).cumsum(dim=-1)
    last = min(int((cum < mass).sum()), x.numel() - 1)
    remove_sorted = sorted_scores > sorted_scores[last]
    remove = remove_sorted.scatter(0, sorted_idx, remove_sorted)
    return torch.multinomial(torch.softmax(x.masked_fill(remove, NEG_INF), dim=-1), 1, generator=g)


def gumbel_draw(x, g):
    u = torch.rand(x.shape, generator=g)
    return torch.argmax(x - torch.log(-torch.log(u)))


CHAINS = (("temperature_draw", temperature_draw, ""), ("top_k40", top_k40, ""), ("top_k40_flat", top_k40, "flat"),
          ("top_k40_zipf", top_k40, "zipf"), ("top_p09", top_p09, ""), ("top_p09_flat", top_p09, "flat"),
          ("top_p09_zipf", top_p09, "zipf"), ("min_p005", min_p005, ""), ("typical_p09", typical_p09, ""),
          ("typical_p09_flat", typical_p09, "flat"), ("typical_p09_zipf", typical_p09, "zipf"),
          ("gumbel_draw", gumbel_draw, ""), ("gumbel_draw_flat", gumbel_draw, "flat"),
          ("gumbel_draw_zipf", gumbel_draw, "zipf"))


def logits(vocab, shape, g):
    if shape == "flat":
        return torch.randn(vocab, generator=g) * 2
    if shape == "zipf":
        return -1.1 * torch.log((torch.randperm(vocab, generator=g) + 1).float())
    return torch.randn(vocab, generator=g) * 5


def main():
    out = {}
    g = torch.Generator().manual_seed(42)
    for vocab in (32000, 128000, 256000):
        rows = {shape: logits(vocab, shape, g) for shape in ("", "flat", "zipf")}
        calls = max(5, 2000000 // vocab)
        for name, fn, shape in CHAINS:
            row = "%s_%d" % (name, vocab)
            if row_filter.search(row):
                x = rows[shape]
                out[row] = {"peer_ns": median_ns_per_call(lambda: fn(x, g), calls), "peer": "pytorch-cpu"}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
