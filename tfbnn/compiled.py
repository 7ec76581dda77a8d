"""The one cache of compiled TensorFlow programs, bounded, and `clear_cache`.

Tracing and XLA compilation cost seconds, far more than a small network's fit, so
training loops, samplers and predictors keep their compiled functions for reuse by
the next model of the same architecture (the next split, ensemble member or
clone). They all keep them here, keyed by what the program depends on, with the
least recently used dropped beyond `MAX_PROGRAMS`, so a long session neither grows
without bound nor keeps old models alive for ever.

They build those programs with `function`: a `tf.function` without AutoGraph. tfbnn's
compiled code states its loops and branches with `tf.while_loop` and `tf.cond`, so
AutoGraph's rewriting of the Python source finds nothing to convert, yet it parses
and transforms the source of every function the trace calls, which is much of a
first fit's tracing time.
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


def function(fn: Callable, **options):
    """`tf.function(fn, autograph=False, **options)`: a graph of `fn` as written.

    Python `if`, `for` and `while` in `fn` run once, at tracing; a Python branch on a
    tensor's value raises at tracing instead of being rewritten into a `tf.cond`. State
    loops and branches that depend on tensors with `tf.while_loop` and `tf.cond`.

    Args:
        fn: the Python function to trace.
        **options: other `tf.function` arguments (`jit_compile`, `reduce_retracing`,
            `input_signature`); `autograph` cannot be given.

    Raises:
        TypeError: `autograph` is among `options`.
    """
    if "autograph" in options:
        raise TypeError("compiled.function builds without AutoGraph; do not pass autograph")
    import tensorflow as tf

    return tf.function(fn, autograph=False, **options)


def cache_size() -> int:
    """How many compiled programs are kept now."""
    return len(_PROGRAMS)


def clear_cache() -> None:
    """Forgets every compiled program (and the models they hold), freeing their memory.

    The next fit or prediction traces and compiles again.
    """
    _PROGRAMS.clear()
