"""Training rows handed over block by block: in-memory arrays or a `tf.data.Dataset`.

The Laplace approximation sums its curvature, log-likelihood and noise statistics
over the training rows, so it never needs them all at once. `Rows` yields them in
blocks of at most a given number of rows, from NumPy arrays or from a
`tf.data.Dataset` of `(x, y)` batches, read afresh on every pass (its order may
change between passes: every pass sums over all rows, whatever their order).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def as_targets(y) -> np.ndarray:
    """`y` as float64 `(n, d)`: a 1-D `y` is one target column."""
    y = np.asarray(y, np.float64)
    return y[:, None] if y.ndim == 1 else y


class Rows:
    """Rows `(x, y)` of a data set, read in blocks.

    Args:
        x: inputs `(n, ...)`, or a `tf.data.Dataset` of `(x, y)` batches (then no `y`).
        y: targets `(n,)` or `(n, d)`; None for inputs only (prediction).
        features: whether `x` holds a last layer's input features with the column of
            ones (float64) rather than the network's inputs.
    """

    def __init__(self, x, y=None, *, features: bool = False):
        self.features = bool(features)
        self.dataset = None
        if isinstance(x, tf.data.Dataset):
            spec = x.element_spec
            if y is not None or not isinstance(spec, tuple) or len(spec) != 2:
                raise ValueError(
                    "A tf.data.Dataset must yield (x, y) batches and come without y; got "
                    f"elements {spec!r}" + (" and a y" if y is not None else ""))
            self.dataset = x
            return
        self.x = np.asarray(x, np.float64 if features else np.float32)
        self.y = None if y is None else as_targets(y)
        if self.y is not None and len(self.y) != len(self.x):
            raise ValueError(f"x has {len(self.x)} rows but y has {len(self.y)}")

    @property
    def input_spec(self) -> tf.TensorShape:
        """The shape of one batch of inputs, `(None or n, ...)`."""
        if self.dataset is not None:
            return tf.TensorShape(self.dataset.element_spec[0].shape)
        return tf.TensorShape([None, *self.x.shape[1:]])

    def batches(self):
        """`(x, y)` as stored: the whole arrays, or the dataset's batches as NumPy."""
        if self.dataset is None:
            yield self.x, self.y
            return
        for x, y in self.dataset:
            yield np.asarray(x, np.float32), as_targets(y)

    def blocks(self, rows: int):
        """`(x, y)` blocks of at most `rows` rows (`y` None for inputs only)."""
        for x, y in self.batches():
            for start in range(0, len(x), rows):
                yield x[start : start + rows], None if y is None else y[start : start + rows]

    def arrays(self):
        """`(x, y)` in memory (a dataset read once and concatenated)."""
        if self.dataset is None:
            return self.x, self.y
        xs, ys = zip(*self.batches())
        return np.concatenate(xs), np.concatenate(ys)
