"""Timing shared by the benchmark scripts (which run as ``python benchmarks/<name>.py``, so this
folder is on the path)."""

from __future__ import annotations

import statistics
import time


def median_seconds(fns, rounds: int) -> list[float]:
    """Median time of each function, run in interleaved rounds so drift hits all alike."""
    for fn in fns:
        fn()  # warm-up: first-call allocations and kernel selection
    times = [[] for _ in fns]
    for _ in range(rounds):
        for fn, bucket in zip(fns, times):
            start = time.perf_counter()
            fn()
            bucket.append(time.perf_counter() - start)
    return [statistics.median(bucket) for bucket in times]
