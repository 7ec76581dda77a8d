"""Targets against likelihood parameters: which shapes can be meant together.

A likelihood's parameters have shape `(..., B, k)`: optional sample (or member)
axes, `B` examples and `k` parameters standing for `d` target dimensions. Targets
come as `(..., B, d)`, or `(..., B)` when `d` is 1 (a single target, or a class
label), with fewer or broadcastable leading axes. Anything else is refused with
both shapes named, before NumPy-style broadcasting could turn a `(B, 1)` output
and a `(B,)` target into a `(B, B)` cross product.

The check reads static shapes only, so it costs nothing inside `tf.function` or
XLA; a size not known when tracing is taken to fit.
"""

from __future__ import annotations

import tensorflow as tf


def with_target_axis(y, params_shape, width):
    """`y` as `(..., B, width)` for parameters of static shape `(..., B, k)`.

    `y` may have a target axis of `width`, or none when `width` is 1; its leading
    axes must broadcast against the parameters' (it may leave sample axes out), and
    its example axis must equal theirs. Checked on static shapes (unknown sizes
    pass), so it costs nothing inside `tf.function` or XLA; unknown ranks pass
    unchecked.
    """
    if y.shape.rank is None or params_shape.rank is None or width is None:
        return y
    batch = params_shape[:-1]
    if y.shape.rank >= 1 and _fits(y.shape[:-1], batch) and y.shape[-1] in (width, None):
        return y
    if width == 1 and _fits(y.shape, batch):
        return y[..., tf.newaxis]
    n = batch[-1] if batch.rank else None
    expected = f"(..., {n}, {width})" + (f" or (..., {n})" if width == 1 else "")
    raise ValueError(
        f"targets of shape {tuple(y.shape)} do not fit likelihood parameters of shape "
        f"{tuple(params_shape)} ({width} target dimension{'s' if width != 1 else ''}): "
        f"expected targets of shape {expected}"
    )


def _fits(y_batch, batch) -> bool:
    """Whether targets' batch shape `y_batch` can be meant against parameters' `batch`:
    no more axes, the same example axis (the last), broadcastable leading axes."""
    if y_batch.rank > batch.rank or (batch.rank and not y_batch.rank):
        return False
    if batch.rank and None not in (y_batch[-1], batch[-1]) and y_batch[-1] != batch[-1]:
        return False
    return all(a is None or b is None or a == b or 1 in (a, b)
               for a, b in zip(y_batch[::-1], batch[::-1]))
