"""Helpers shared by the benchmark scripts: alternating timing and peak memory."""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import time
from typing import Callable, Sequence


def alternate(runs: dict[str, Callable[[], object]], repeats: int, *, stat: str = "median") -> dict[str, float]:
    """Time each callable ``repeats`` times, alternating A B A B, and return medians (s).

    ``stat="min"`` returns the fastest run of each instead (best of N: on a
    shared machine the least disturbed run is the closest to the code's own
    cost); ``stat="both"`` returns ``{name: (median, min)}``.
    """
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    if stat == "min":
        return {name: min(values) for name, values in times.items()}
    if stat == "both":
        return {name: (statistics.median(values), min(values)) for name, values in times.items()}  # type: ignore[misc]
    return {name: statistics.median(values) for name, values in times.items()}


def peak_rss_gb() -> float:
    """Peak resident memory of this process so far (GiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB -> GiB


def peak_memory_gb(script: str, args: Sequence[str]) -> float:
    """Peak resident memory (GiB) of a fresh interpreter running ``script args``.

    The script must print ``PEAK <GiB>`` as its last line (a fresh process, not a
    fork: forking after Numba/OpenMP threads have started can deadlock).
    """
    out = subprocess.run([sys.executable, script, *args], capture_output=True, text=True, check=True).stdout
    return float(out.strip().splitlines()[-1].split()[1])
