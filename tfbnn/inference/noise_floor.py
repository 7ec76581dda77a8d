"""A floor under a learned noise scale, from the resolution of the targets.

Targets recorded on a grid (integer ratings, values rounded to a unit) let a
network that learns its noise scale drive that scale towards zero at training
points it fits exactly: the Gaussian density of a grid value has no upper bound,
and one test point a grid step away then scores thousands of nats below the
rest. Treating each recorded value as the grid cell around it (uniform
dequantisation [1]) gives the noise no less than the spread of that cell: a
floor `delta / sqrt(12)`, `delta` the grid step, the standard deviation of a
uniform variable over one step (Sheppard's correction [2]). On continuous targets
the step, and so the floor, is negligible.

#### References

[1]: Lucas Theis, Aaron van den Oord and Matthias Bethge. A note on the evaluation
     of generative models. In _ICLR_, 2016. https://arxiv.org/abs/1511.01844

[2]: W. F. Sheppard. On the calculation of the most probable values of
     frequency-constants, for data arranged according to equidistant division of
     a scale. _Proceedings of the London Mathematical Society_, 29:353-380, 1898.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from tfbnn import likelihoods

#: The largest floor, in units of the (standardised) target's standard deviation:
#: coarser grids (a binary target) would give a noise no smaller than the target's
#: own spread, i.e. a network that may not use its inputs.
MAX_FLOOR = 0.5


def target_resolution(y) -> float:
    """The grid step of targets `y`: the smallest gap between two distinct values of
    any target column (0 with fewer than two distinct values)."""
    y = np.asarray(y, np.float64)
    columns = y.reshape(len(y), -1).T if y.ndim > 1 else y[None]
    gaps = [np.diff(np.unique(c)) for c in columns]
    gaps = [g.min() for g in gaps if g.size]
    return float(min(gaps)) if gaps else 0.0


def resolution_floor(y) -> float:
    """`target_resolution(y) / sqrt(12)`, at most `MAX_FLOOR`: the noise scale floor of
    targets `y` in their own units (standardised targets: units of their std).

    It is rounded down to a power of `2 ** (1 / 4)` (at most 16% lower): the floor is
    part of the compiled training program, and the splits or refits of one data set,
    whose standardised grid steps differ in the last digits, then share one.
    """
    floor = min(target_resolution(y) / math.sqrt(12.0), MAX_FLOOR)
    if floor <= 0.0:
        return 0.0
    return float(2.0 ** (math.floor(4.0 * math.log2(floor)) / 4.0))


def has_learned_scale(likelihood) -> bool:
    """Whether `likelihood` reads `(location, raw scale)` parameters, the scale being
    `softplus(raw) + min_scale`: a heteroscedastic Gaussian, or a Gaussian or
    Student-t whose scale is learned."""
    return isinstance(likelihood, likelihoods.HeteroscedasticGaussian) or bool(
        getattr(likelihood, "trainable", False))


def with_floor(likelihood, floor: float):
    """`likelihood` with its `min_scale` raised to `floor` (the same object if it has
    no learned scale, or already a floor that high)."""
    if not has_learned_scale(likelihood):
        return likelihood
    # A learned Gaussian or Student-t scale starts at `scale`, which must stay above the floor.
    floor = min(floor, 0.5 * getattr(likelihood, "scale", 2.0 * floor))
    if floor <= likelihood.min_scale:
        return likelihood
    return type(likelihood).from_config({**likelihood.get_config(), "min_scale": float(floor)})


def shift_floor(params, floor: float, min_scale: float):
    """`(..., 2d)` parameters `(loc, raw)` read with a scale floor `floor`, rewritten so a
    likelihood with the lower floor `min_scale` reads the same scale:
    `softplus(raw') + min_scale = softplus(raw) + floor`."""
    if floor <= min_scale:
        return params
    loc, raw = tf.split(params, 2, axis=-1)
    excess = tf.math.softplus(raw) + tf.constant(floor - min_scale, raw.dtype)
    # softplus^-1(e) = e + log(-expm1(-e)), stable for small and large e.
    return tf.concat([loc, excess + tf.math.log(-tf.math.expm1(-excess))], axis=-1)
