"""Vectorised posterior sampling: many weight samples in one forward pass.

Inside `with weight_samples(S):` a model is called on its inputs tiled `S` times
along the batch axis (`S * B` rows). Every stochastic tfbnn layer then draws `S`
independent weight samples and applies sample `s` to rows `s * B ... (s + 1) * B`,
so one call of an unchanged Keras model yields `S` coherent function draws. The
count is read when the call is traced, so it works eagerly, under `tf.function`
and under XLA.
"""

from __future__ import annotations

import contextlib
import math
import threading

import tensorflow as tf

from tfbnn.validation import check_int

_state = threading.local()


def current_weight_samples() -> int | None:
    """The `S` of the enclosing `weight_samples(S)` block, or None outside one."""
    return getattr(_state, "n_samples", None)


@contextlib.contextmanager
def weight_samples(n_samples: int):
    """Makes tfbnn layers draw `n_samples` weight samples, one per block of the batch."""
    n_samples = check_int("n_samples", n_samples, 1)
    previous = current_weight_samples()
    _state.n_samples = n_samples
    try:
        yield
    finally:
        _state.n_samples = previous


def split_samples(inputs, n_samples: int):
    """`(S * B, ...)` -> `(S, B, ...)`."""
    shape = tf.shape(inputs)
    return tf.reshape(inputs, tf.concat([[n_samples, shape[0] // n_samples], shape[1:]], 0))


def merge_samples(outputs):
    """`(S, B, ...)` -> `(S * B, ...)`."""
    shape = tf.shape(outputs)
    return tf.reshape(outputs, tf.concat([[shape[0] * shape[1]], shape[2:]], 0))


def sample_outputs(model, x, n_samples: int):
    """Calls `model` on `x` under `S = n_samples` weight samples; returns `(S, B, ...)`."""
    x = tf.convert_to_tensor(x)
    tiled = tf.tile(x, tf.concat([[n_samples], tf.ones([tf.rank(x) - 1], tf.int32)], 0))
    with weight_samples(n_samples):
        outputs = model(tiled, training=False)
    return split_samples(outputs, n_samples)


def _seed(seed_generator):
    # Stateless ops want an int32 seed pair; the generator's state is int64.
    return tf.cast(tf.math.floormod(seed_generator.next(), tf.int32.max - 1), tf.int32)


# Philox: XLA on CPU compiles it to far fewer instructions than the default algorithm,
# which dominated the cost of a training step of a small network.
def random_symmetric(shape, seed_generator):
    """float32 noise uniform on the `2**23` odd multiples of `2**-23` in (-1, 1).

    Never 0 nor +-1, and symmetric about 0: its sign is a Rademacher variable
    (`rademacher`), and `sqrt(2) erfinv` of it a standard normal (`normal_from`). One
    draw can so feed both kinds of noise a layer needs.
    """
    uniform = tf.random.stateless_uniform(shape, seed=_seed(seed_generator), alg="philox")
    # `uniform` is k 2^-23 with k < 2^23, so 2 uniform - 1 + 2^-23 is exact.
    return 2.0 * uniform - (1.0 - 2.0**-23)


def normal_from(symmetric, dtype=tf.float32):
    """Standard normals from `random_symmetric` noise, by inverting the CDF.

    `N(0, 1)`'s quantile at `(1 + v) / 2` is `sqrt(2) erfinv(v)` (Abramowitz and
    Stegun, 1964, 7.1.2 and 26.2.2); the draws lie within +-5.3 (the quantiles of
    2^-24 and 1 - 2^-24), as float32 uniforms allow. Under XLA on CPU it is cheaper
    than `random_normal`'s transform, but XLA fuses its closing polynomial into
    every consumer: use it where the normals meet arithmetic of their own shape (a
    kernel's `loc + scale * eps`), and `random_normal` for noise broadcast over many
    outputs (a bias), which it would recompute at every position.
    """
    return tf.cast(math.sqrt(2.0) * tf.math.erfinv(symmetric), dtype)


def rademacher(symmetric, dtype=tf.float32):
    """+-1 with probability 1/2 each, from `random_symmetric` noise."""
    return tf.cast(tf.sign(symmetric), dtype)


def random_normal(shape, seed_generator, dtype=tf.float32):
    """Standard normal noise drawn from a `keras.random.SeedGenerator`."""
    return tf.random.stateless_normal(shape, seed=_seed(seed_generator), dtype=dtype, alg="philox")


def random_uniform(shape, seed_generator, dtype=tf.float32):
    """Uniform [0, 1) noise from a `keras.random.SeedGenerator`."""
    return tf.random.stateless_uniform(shape, seed=_seed(seed_generator), dtype=dtype, alg="philox")
