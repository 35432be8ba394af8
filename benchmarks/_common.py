"""Helpers shared by the benchmark scripts: alternating timing and peak memory."""

from __future__ import annotations

import multiprocessing as mp
import resource
import statistics
import time
from typing import Callable


def alternate(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Time each callable ``repeats`` times, alternating A B A B, and return medians (s)."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def _child(target: Callable[[], object], queue: "mp.Queue[float]") -> None:
    target()
    queue.put(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2)  # KiB -> GiB


def peak_memory_gb(target: Callable[[], object]) -> float:
    """Peak resident memory (GiB) of a fresh process running ``target`` once."""
    ctx = mp.get_context("fork")
    queue: "mp.Queue[float]" = ctx.Queue()
    proc = ctx.Process(target=_child, args=(target, queue))
    proc.start()
    value = queue.get()
    proc.join()
    return value
