"""`train`: minibatch training of a Keras model (or an ensemble) under a tfbnn likelihood.

The loss is the per-example negative ELBO: the minibatch mean negative
log-likelihood plus the model's layer losses, which for tfbnn variational layers
are `kl_weight * KL` with `kl_weight = 1 / n_train`. Many epochs run per compiled
call (`EpochRunner`); Python is entered between calls, or after every epoch when
callbacks, validation or an epoch hook need it, to report, check for divergence
and run Keras callbacks (early stopping, user callbacks).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from tfbnn import optimizers
from tfbnn.layers.posterior import set_kl_weight, variational_layers
from tfbnn.training.groups import GroupedRun
from tfbnn.training.monitor import Monitor
from tfbnn.training.stream import Stream, StreamFeed, is_stream
from tfbnn.validation import check_int


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss; the model's weights are not usable."""


@dataclass
class History:
    """Per-epoch training record: mean NLL, KL term and total loss, validation NLL."""

    nll: list[float] = field(default_factory=list)
    kl: list[float] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    val_nll: list[float] = field(default_factory=list)
    stopped_epoch: int | None = None
    #: The optimizer state at the end, which `train(optimizer_state=...)` continues from.
    optimizer_state: list | None = field(default=None, repr=False)

    def as_dict(self) -> dict:
        return {
            "nll": self.nll,
            "kl": self.kl,
            "loss": self.loss,
            "val_nll": self.val_nll,
            "stopped_epoch": self.stopped_epoch,
        }


def train(model, likelihood, x, y=None, *, epochs: int, batch_size: int = 32,
          learning_rate: float | None = None, optimizer=None, validation_data=None,
          patience: int | None = None, seed: int | None = None, verbose: int = 1,
          callbacks=None, jit_compile: bool = True, epoch_hook=None,
          adversarial_epsilon=None, threads="auto", strategy=None,
          n_train: int | None = None, optimizer_state=None) -> History:
    """Trains `model` to minimise the negative ELBO of `likelihood` on `(x, y)`.

    Args:
        model: a built Keras model mapping `x` to the likelihood's parameters, or a
            list of models of one architecture: an ensemble, trained together by
            vectorised programs (see `threads`), each member with its own data order.
        likelihood: a `tfbnn.likelihoods.Likelihood`.
        x, y: in-memory training arrays (float32 inputs of any rank, `(n, features)`,
            `(n, height, width, channels)`, `(n, steps, features)`, ...; targets as
            the likelihood wants); or `x` a stream of `(x, y)` batches and no `y`
            (see `tfbnn.training.stream`: its batches and order are the steps).
        epochs: passes over the data.
        batch_size: minibatch size.
        learning_rate: the optimizer's constant step size (None: the optimizer's own,
            Adam's 1e-3); replaces an instance's constant rate, never a schedule.
        optimizer: a Keras optimizer instance (with a constant rate or a
            `keras.optimizers.schedules.LearningRateSchedule`), a name ("adam",
            "sgd", ...), a Keras config dict, or None for Adam. The instance is
            never updated: its class and configuration are run inside the compiled
            loop, and its state persists across the loop's calls.
        validation_data: optional `(x_val, y_val)`; reports the predictive NLL on it.
        patience: with validation data, stop after this many epochs without
            improvement and restore the best weights (Keras `EarlyStopping`). For an
            ensemble, per member on its own validation NLL: each keeps its best
            epoch's weights, and training stops when all have run out of patience.
        seed: seeds the data order (of arrays).
        verbose: 1 shows a progress bar, 0 is silent.
        callbacks: Keras callbacks (`TensorBoard`, `CSVLogger`, `ModelCheckpoint`,
            `BackupAndRestore`, `LearningRateScheduler`, `ReduceLROnPlateau`,
            `EarlyStopping`, your own), called at the beginning and end of every
            epoch (not per batch), with `nll`, `kl`, `loss` and `val_nll` in their
            logs, and the run's optimizer as `model.optimizer`; an ensemble's
            see its first member, and the members' means and own values
            (`nll_member_0`, ...). Details: `tfbnn.training.monitor`.
        jit_compile: compile the epochs with XLA.
        epoch_hook: optional `f(epoch, theta)` called after every epoch with the
            flat parameters (`(M, P)` for an ensemble), e.g. to collect SWAG moments.
        adversarial_epsilon: None, or the fast-gradient-sign step (a number, or an
            array that broadcasts to one example's shape `x.shape[1:]`, e.g. one per
            input feature): every step then also fits `x + epsilon * sign(d nll /
            d x)`, and costs about three times as much.
        threads: an ensemble's groups of members, one program and thread each ("auto": one
            per core; a stream: one): the speed changes, the result only by rounding.
        strategy: a `tf.distribute.Strategy` whose replicas share every (global) minibatch,
            or None: the current `scope()`'s, if any (`tfbnn.training.distributed`).
        n_train: sets `kl_weight = 1 / n_train` (None: as built, or a stream's rows).
        optimizer_state: an earlier run's `History.optimizer_state` to continue from.

    Returns:
        The `History` of the run.

    Raises:
        NonFiniteLossError: the loss became NaN or infinite.
        ValueError: an invalid setting.
    """
    check_int("epochs", epochs, 1)
    optimizer = optimizers.get(optimizer, learning_rate)
    members = list(model) if isinstance(model, list | tuple) else None
    feed = _feed(x, y, batch_size, seed, members, [model] if members is None else members,
                 n_train)
    validation_data = _as_validation(validation_data)
    epsilon = adversarial_step(adversarial_epsilon, feed.example_shape)
    monitor = Monitor(members[0] if members else model, members is not None, epochs, feed.steps,
                      callbacks, validation_data, patience, epoch_hook, verbose)
    run = _grouped_run(members or [model], members is not None, likelihood, feed, optimizer,
                       (threads, jit_compile, adversarial_epsilon is not None, strategy),
                       optimizer_state)
    try:
        _run_epochs(run, monitor, feed, epsilon, epochs, feed.chunk(monitor.per_epoch), optimizer)
    finally:
        monitor.detach()
    monitor.history.optimizer_state = run.opt_states
    return monitor.history


def _feed(x, y, batch_size: int, seed, members, models, n_train):
    """`StreamFeed` for a stream, `ArrayFeed` for arrays; sets the models' KL weight."""
    check_int("batch_size", batch_size, 1)
    feed = _make_feed(x, y, batch_size, seed, None if members is None else len(members))
    _scale_kl(models, n_train, feed)
    return feed


def _make_feed(x, y, batch_size: int, seed, n_members):
    if is_stream(x):
        if y is not None:
            raise ValueError("A stream of (x, y) batches comes without a separate y")
        feed = StreamFeed(x if isinstance(x, Stream) else Stream(x))
        feed.batch_size = batch_size  # unused by a stream's epochs; keys the cached runner
        return feed
    if y is None:
        raise ValueError("train needs targets y with in-memory inputs x")
    return ArrayFeed(x, y, batch_size, seed, n_members)


def _scale_kl(models, n_train, feed) -> None:
    """Sets `kl_weight = 1 / n_train` (see `train`), counting a stream's rows if need be."""
    if not any(variational_layers(m) for m in models):
        return
    if n_train is None and isinstance(feed, StreamFeed):
        n_train = len(feed.stream)
    if n_train is not None:
        n_train = check_int("n_train", n_train, 1)
        for m in models:
            set_kl_weight(m, 1.0 / n_train)


def _grouped_run(models, stacked: bool, likelihood, feed, optimizer, options,
                 optimizer_state) -> GroupedRun:
    """The run of `train`, starting from `optimizer_state` if given."""
    threads, jit_compile, adversarial, strategy = options
    run = GroupedRun(models, stacked, likelihood, feed.batch_size, optimizer,
                     threads=1 if isinstance(feed, StreamFeed) else threads,
                     jit_compile=jit_compile, adversarial=adversarial, strategy=strategy)
    if optimizer_state is not None:
        run.opt_states = _check_optimizer_state(optimizer_state, run)
    return run


def _check_optimizer_state(state, run: GroupedRun) -> list:
    fresh = run.opt_states
    if len(state) != len(fresh) or any(
            len(a) != len(b) or any(u.shape != v.shape for u, v in zip(a, b))
            for a, b in zip(state, fresh)):
        raise ValueError("optimizer_state comes from a run of another model, ensemble grouping "
                         "or optimizer; pass the History.optimizer_state of this model's run")
    return list(state)


def steps_per_epoch(n_rows: int, batch_size: int) -> int:
    """Minibatch steps of one pass over `n_rows` in-memory rows (a batch at most all rows)."""
    return -(-n_rows // min(int(batch_size), max(n_rows, 1)))


class ArrayFeed:
    """In-memory arrays: many epochs per compiled call, data orders from `seed`."""

    def __init__(self, x, y, batch_size: int, seed, n_members):
        self.x, self.y = (tf.convert_to_tensor(v, tf.float32) for v in (x, y))
        self.n_rows = int(self.x.shape[0])
        self.example_shape = tuple(self.x.shape[1:])
        self.batch_size = min(int(batch_size), self.n_rows)
        self.steps = steps_per_epoch(self.n_rows, batch_size)
        self.seed, self.n_members, self.orders = seed, n_members, None

    def chunk(self, per_epoch: bool) -> int:
        chunk = 1 if per_epoch else epochs_per_call(self.steps)
        self.orders = _DataOrders(self.seed, chunk, self.n_rows if self.n_members is None
                                  else (self.n_members, self.n_rows))
        return chunk

    def skip(self, n_epochs: int) -> None:
        self.orders.skip(n_epochs)

    def advance(self, run: GroupedRun, n_epochs: int, epsilon):
        return run.run(self.x, self.y, self.orders.next(n_epochs), n_epochs, epsilon)


def _run_epochs(run: GroupedRun, monitor: Monitor, feed, epsilon, epochs: int, chunk: int,
                optimizer) -> None:
    """The epochs of `train`, `chunk` per compiled call, from the first not yet run."""
    start = monitor.begin(run, History())
    feed.skip(start)
    for first in range(start, epochs, chunk):
        monitor.on_epoch_begin(first, run)
        n_run = min(chunk, epochs - first)
        nlls, kls = feed.advance(run, n_run, epsilon)
        _check_finite(nlls, kls, first, run, optimizer)
        if monitor.end_of_epochs(first, nlls, kls, run):
            break
    monitor.finish(run)


def _as_validation(validation_data):
    """Validation data as float32 tensors: targets too (likelihoods cast labels back to
    integers)."""
    if validation_data is None:
        return None
    return tuple(tf.convert_to_tensor(v, tf.float32) for v in validation_data)


def _check_finite(nlls, kls, first: int, run: GroupedRun, optimizer) -> None:
    """Raises `NonFiniteLossError`, the model(s) given their initial weights, on divergence."""
    bad = ~(np.isfinite(nlls) & np.isfinite(kls))
    if bad.any():
        run.restore_initial()
        epoch = first + int(np.argmax(bad.reshape(len(bad), -1).any(axis=1)))
        raise NonFiniteLossError(
            f"Training diverged: the loss became non-finite at epoch {epoch + 1} "
            f"(nll={nlls[bad][0]}, kl={kls[bad][0]}). Try a smaller learning_rate "
            f"(now {optimizers.describe_learning_rate(optimizer)}), check the data for "
            "extreme values, or standardise the inputs and targets."
        )


class _DataOrders:
    """The data orders of consecutive chunks of epochs: `(chunk, [M,] n)` permutations.

    The array always has `chunk` epochs (one compiled input shape); past the epochs
    that run it holds the identity, unused.
    """

    def __init__(self, seed, chunk: int, shape):
        self.rng = np.random.default_rng(seed)
        self.shape = (chunk, *np.atleast_1d(shape))

    def next(self, n_epochs: int) -> np.ndarray:
        orders = np.broadcast_to(np.arange(self.shape[-1], dtype=np.int32), self.shape).copy()
        orders[:n_epochs] = self.rng.permuted(orders[:n_epochs], axis=-1)
        return orders

    def skip(self, n_epochs: int) -> None:
        """Draws (and drops) the orders of `n_epochs` epochs, one by one: a run resumed
        after them (one epoch per call) sees the orders the whole run would have."""
        for _ in range(n_epochs):
            self.next(1)


def adversarial_step(value, example_shape) -> tf.Tensor:
    """`adversarial_epsilon` as a tensor of one example's shape (zeros when None).

    `example_shape` is `x.shape[1:]`; an int `n` stands for `(n,)`, rows of `n` features.
    """
    shape = (int(example_shape),) if isinstance(example_shape, int) else tuple(example_shape)
    if value is None:
        return tf.zeros(shape, tf.float32)
    epsilon = np.asarray(value, np.float64)
    try:
        epsilon = np.broadcast_to(epsilon, shape) if epsilon.ndim <= len(shape) else None
    except ValueError:
        epsilon = None
    if epsilon is None or not (np.all(np.isfinite(epsilon)) and np.all(epsilon >= 0)):
        raise ValueError(
            "adversarial_epsilon must be a non-negative number or one per input feature "
            f"(an array that broadcasts to one example's shape {shape}), got {value!r}"
        )
    return tf.constant(epsilon, tf.float32)


def epochs_per_call(steps_per_epoch: int, target_steps: int = 1000) -> int:
    """Epochs per compiled call: about `target_steps` optimizer steps.

    It depends only on the data size, so fits of any length share one program.
    """
    return max(1, target_steps // max(steps_per_epoch, 1))
