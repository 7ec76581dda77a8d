"""Training data read batch by batch: a `tf.data.Dataset`, or Python batches of NumPy arrays.

Data larger than memory is trained on as a stream of `(x, y)` batches read afresh
every epoch. The batches, their size and their order are the source's own (shuffle
inside a dataset with `Dataset.shuffle`); every batch is one optimizer step of the
same compiled program `tfbnn.train` uses on arrays (`EpochRunner.run_stream`);
`batch_size` and `seed` of `train` do not apply, and callbacks and validation run
after every epoch. An ensemble trains as one group whose members all take every
batch (they differ by their initialisation). For the KL term (`kl_weight = 1 /
n_train`) `train` counts the rows of `x` in one pass unless `n_train` is given.
A batch size the compiled step has not seen (a short last batch) compiles it once
more; `Dataset.batch(n, drop_remainder=True)` avoids that.
"""

from __future__ import annotations

import collections.abc

import numpy as np
import tensorflow as tf


def is_stream(x) -> bool:
    """Whether `x` is streamed training data (see `Stream`) rather than in-memory arrays:
    a dataset, a batch function, a generator (refused later with advice), or a list of
    `(x, y)` tuples."""
    if isinstance(x, Stream | tf.data.Dataset | collections.abc.Iterator) or callable(x):
        return True
    return isinstance(x, list) and bool(x) and isinstance(x[0], tuple)


class Stream:
    """Training batches `(x, y)` as float32 tensors, `y` of rank 2, read afresh every pass.

    Args:
        source: a `tf.data.Dataset` of `(x, y)` batches; a function returning a fresh
            iterable of NumPy `(x, y)` batches (e.g. a generator function: it is called
            once per pass); or a re-iterable collection (a list) of such batches. A
            generator object can be read only once and is refused.
        n_rows: the number of training rows, if known; otherwise `len(stream)` counts
            them (the rows of `x` over one pass) the first time it is asked.
        n_batches: the number of batches of one pass, if known; otherwise
            `batch_count()` counts them the first time it is asked.
    """

    def __init__(self, source, n_rows: int | None = None, n_batches: int | None = None):
        self.dataset = as_dataset(source).map(_as_float_targets)
        x_spec, y_spec = self.dataset.element_spec
        #: One example's shape, `x.shape[1:]`.
        self.example_shape = tuple(x_spec.shape[1:])
        if x_spec.shape.rank is None or x_spec.shape.rank < 2 or None in self.example_shape:
            raise ValueError(
                f"A stream must yield batches (x of shape (batch, ...) with known example "
                f"shape), got x of shape {x_spec.shape}: batch a dataset with .batch(n)")
        self.n_targets = y_spec.shape[-1]
        if self.n_targets is None:
            raise ValueError(f"A stream's targets need a known number of columns, got {y_spec}")
        self.n_rows = None if n_rows is None else int(n_rows)
        self.n_batches = None if n_batches is None else int(n_batches)

    def batch_count(self) -> int:
        """The number of batches (training steps) of one pass."""
        if self.n_batches is None:
            self.n_batches = int(self.dataset.reduce(tf.constant(0, tf.int64),
                                                     lambda n, _: n + 1))
        return self.n_batches

    def __len__(self) -> int:
        if self.n_rows is None:
            self.n_rows = count_rows(self.dataset)
            if self.n_rows == 0:
                raise ValueError("The training stream yielded no rows")
        return self.n_rows


def as_dataset(source) -> tf.data.Dataset:
    """`source` (see `Stream`) as a `tf.data.Dataset` of `(x, y)` batches."""
    if isinstance(source, Stream):
        return source.dataset
    if isinstance(source, tf.data.Dataset):
        dataset = source
    elif isinstance(source, collections.abc.Iterator):
        raise TypeError(
            "A generator (or other iterator) can be read only once, but training reads its "
            "data every epoch: pass the function that makes it (e.g. `lambda: batches()`), "
            "or a tf.data.Dataset")
    elif callable(source) or isinstance(source, collections.abc.Iterable):
        factory = source if callable(source) else (lambda: iter(source))
        dataset = tf.data.Dataset.from_generator(
            factory, output_signature=_signature(next(iter(factory()), None)))
    else:
        raise TypeError(f"Expected a tf.data.Dataset or (x, y) batches, got {type(source)}")
    spec = dataset.element_spec
    if not isinstance(spec, tuple) or len(spec) != 2:
        raise ValueError(f"A training dataset must yield (x, y) batches; got elements {spec!r}")
    return dataset


def _signature(first):
    """The `from_generator` signature of batches like `first`, with any batch size."""
    if not isinstance(first, tuple | list) or len(first) != 2:
        raise ValueError(f"The batches must be (x, y) pairs of arrays, got {type(first)} first")
    # Numbers as float32; text labels (a classifier's) stay strings.
    return tuple(tf.TensorSpec((None, *np.shape(a)[1:]),
                               tf.string if np.asarray(a).dtype.kind in "USO" else tf.float32)
                 for a in first)


def _as_float_targets(x, y):
    y = tf.cast(y, tf.float32)
    return tf.cast(x, tf.float32), y[:, tf.newaxis] if y.shape.rank == 1 else y


def count_rows(dataset: tf.data.Dataset) -> int:
    """The number of rows (of `x`) of one pass over a dataset of `(x, y)` batches."""
    return int(dataset.reduce(tf.constant(0, tf.int64),
                              lambda n, batch: n + tf.shape(batch[0], tf.int64)[0]))


class StreamFeed:
    """What `tfbnn.train` runs epochs from: one pass over the stream per compiled call."""

    steps = None  # per epoch: not known up front

    def __init__(self, stream: Stream):
        self.stream = stream
        self.example_shape = stream.example_shape

    def chunk(self, per_epoch: bool) -> int:
        return 1

    def skip(self, n_epochs: int) -> None:
        """Nothing to skip: the stream's own order is not seeded by `train`."""

    def advance(self, run, n_epochs: int, epsilon):
        return run.run_stream(self.stream.dataset, epsilon)


def feature_range(stream: Stream) -> np.ndarray:
    """The range (max - min) of each entry of the inputs' last axis, over one pass."""
    width = stream.example_shape[-1]

    def extend(bounds, batch):
        flat = tf.reshape(batch[0], [-1, width])
        return (tf.minimum(bounds[0], tf.reduce_min(flat, 0)),
                tf.maximum(bounds[1], tf.reduce_max(flat, 0)))

    low, high = stream.dataset.reduce(
        (tf.fill([width], np.inf), tf.fill([width], -np.inf)), extend)
    return (high - low).numpy()
