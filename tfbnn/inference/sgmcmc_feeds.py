"""Where SG-MCMC's minibatches come from: in-memory arrays in a fresh permutation per
epoch, or a `tfbnn.training.stream.Stream` read in its own order across passes.

A feed runs a block of steps of a `tfbnn.inference.sgmcmc` step runner on its
batches (`run`) and lists the training data for summaries over all rows (`passes`).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfbnn.training.stream import Stream


def minibatch_rows(rng, n: int, batch_size: int, epochs: int) -> np.ndarray:
    """`(epochs * ceil(n / B), B)` row indices: a fresh permutation per epoch, wrapped
    so that every minibatch has `B` rows (static shapes for XLA). In-memory data is
    read in this order, one call per cycle after the cycles' noise seeds are drawn."""
    steps = -(-n // batch_size)
    rows = [np.resize(rng.permutation(n), steps * batch_size) for _ in range(epochs)]
    return np.concatenate(rows).reshape(-1, batch_size).astype(np.int32)


class ArrayFeed:
    """Minibatches of in-memory arrays, in the order of `minibatch_rows`."""

    def __init__(self, x, y, batch_size: int, rng):
        self.x, self.y = tf.constant(x, tf.float32), tf.constant(y, tf.float32)
        self.n, self.rng = len(x), rng
        self.batch_size = min(batch_size, self.n)

    def run(self, runner, epochs: int, theta, velocity, moments, *schedule):
        batches = tf.constant(minibatch_rows(self.rng, self.n, self.batch_size, epochs))
        return runner.run(theta, velocity, moments, self.x, self.y, batches, *schedule)

    def passes(self):
        """The training data as `(x, y)` batches (one: all rows)."""
        return [(self.x, self.y)]


class StreamFeed:
    """Minibatches of a `Stream`, in its own order, read on across passes (a cycle
    need not end with a pass). The batch size is that of its first batch."""

    def __init__(self, stream: Stream):
        self.dataset, self.n = stream.dataset, len(stream)
        self.batch_size = int(next(iter(self.dataset.take(1)))[0].shape[0])
        self.batches = iter(self.dataset.repeat())

    def run(self, runner, epochs: int, theta, velocity, moments, *schedule):
        return runner.run_stream(theta, velocity, moments, self.batches,
                                 tf.constant(self.n, theta.dtype), *schedule)

    def passes(self):
        return self.dataset
