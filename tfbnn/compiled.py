"""The one cache of compiled TensorFlow programs, bounded, and `clear_cache`.

Tracing and XLA compilation cost seconds, far more than a small network's fit, so
training loops, samplers and predictors keep their compiled functions for reuse by
the next model of the same architecture (the next split, ensemble member or
clone). They all keep them here, keyed by what the program depends on, with the
least recently used dropped beyond `MAX_PROGRAMS`, so a long session neither grows
without bound nor keeps old models alive for ever.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable

#: Compiled programs kept at most (each holds its traced graphs and XLA executables).
MAX_PROGRAMS = 32

_PROGRAMS: OrderedDict[Hashable, object] = OrderedDict()


def cached(key: Hashable, build: Callable[[], object]):
    """The program stored under `key`, built by `build()` the first time it is asked for.

    `key` should name the kind of program first (e.g. `("epoch_runner", ...)`), then
    everything its compiled code depends on.
    """
    if key in _PROGRAMS:
        _PROGRAMS.move_to_end(key)
        return _PROGRAMS[key]
    program = _PROGRAMS[key] = build()
    while len(_PROGRAMS) > MAX_PROGRAMS:
        _PROGRAMS.popitem(last=False)
    return program


def cache_size() -> int:
    """How many compiled programs are kept now."""
    return len(_PROGRAMS)


def clear_cache() -> None:
    """Forgets every compiled program (and the models they hold), freeing their memory.

    The next fit or prediction traces and compiles again.
    """
    _PROGRAMS.clear()
