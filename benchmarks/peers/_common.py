"""Shared by the PyTorch peers of benchmarks/compare-peers (files starting with `_` are not run as
peers): the clock, the repetition count and the row filter that compare-peers passes in the
environment (SELFREPLAY_PEER_TIME = cpu | real, SELFREPLAY_PEER_REPETITIONS, SELFREPLAY_PEER_FILTER),
single-threaded torch, and the median timing loop."""
import os
import re
import statistics
import time

import torch

torch.set_num_threads(1)
clock = time.process_time_ns if os.environ.get("SELFREPLAY_PEER_TIME", "cpu") == "cpu" else time.perf_counter_ns
reps = int(os.environ.get("SELFREPLAY_PEER_REPETITIONS", "3"))
row_filter = re.compile(os.environ.get("SELFREPLAY_PEER_FILTER", ".*"))


def median_ns_per_call(fn, calls=1):
    """Median over `reps` repetitions of the time of one call of fn, each repetition timing
    `calls` calls, after one warm-up call (allocator, first touch)."""
    fn()
    times = []
    for _ in range(reps):
        t0 = clock()
        for _ in range(calls):
            fn()
        times.append((clock() - t0) / calls)
    return statistics.median(times)
