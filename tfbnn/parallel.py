"""Independent compiled programs run side by side, one per CPU core.

A vectorised program over M ensemble members (or MCMC chains) of a small network
runs on one core at a time: XLA splits its small operations across threads only
at a loss. Cutting the batch into groups and running each group's compiled call
from its own Python thread (TensorFlow releases the GIL while it runs) puts every
core to work.
"""

from __future__ import annotations

import numbers
import os
from concurrent.futures import ThreadPoolExecutor, wait

_EXECUTOR: ThreadPoolExecutor | None = None
_EXECUTOR_WORKERS = 0


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def resolve_threads(threads, n_items: int, equal_groups: bool = False) -> int:
    """The number of groups for `n_items`: `threads`, at most `n_items`.

    "auto" is one group per core; with `equal_groups`, the fewest groups of one
    size that keep every core busy (4 chains on 2 cores: 2 groups; 3 chains: 3),
    so that one compiled program serves them all.
    """
    if threads == "auto":
        cores = available_cores()
        if equal_groups:
            return min(d for d in range(1, n_items + 1) if n_items % d == 0
                       and (d >= cores or d == n_items))
        threads = cores
    elif isinstance(threads, bool) or not isinstance(threads, numbers.Integral) or threads < 1:
        raise ValueError(f"threads must be 'auto' or an integer >= 1, got {threads!r}")
    return max(1, min(int(threads), n_items))


def partition(n_items: int, n_groups: int) -> list[slice]:
    """`n_groups` contiguous slices of `range(n_items)`, sizes differing by at most one
    (the larger first)."""
    size, extra = divmod(n_items, n_groups)
    bounds = [0]
    for g in range(n_groups):
        bounds.append(bounds[-1] + size + (g < extra))
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def run_concurrently(calls) -> list:
    """Results of the zero-argument `calls`, each on its own thread (the first on this one)."""
    global _EXECUTOR, _EXECUTOR_WORKERS
    if len(calls) == 1:
        return [calls[0]()]
    if _EXECUTOR_WORKERS < len(calls) - 1:
        if _EXECUTOR is not None:
            _EXECUTOR.shutdown(wait=False)  # idle: every call waits for its own work
        _EXECUTOR_WORKERS = max(len(calls) - 1, available_cores())
        _EXECUTOR = ThreadPoolExecutor(_EXECUTOR_WORKERS, thread_name_prefix="tfbnn")
    futures = [_EXECUTOR.submit(call) for call in calls[1:]]
    try:
        first = calls[0]()
    finally:
        wait(futures)  # no thread is left running when this returns or raises
    return [first, *(f.result() for f in futures)]
