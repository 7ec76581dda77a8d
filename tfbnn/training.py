"""Compiled minibatch training of a Keras model under a tfbnn likelihood.

Small Bayesian networks are dominated by per-step overhead, not arithmetic, so a
whole epoch (shuffle, every minibatch step, the optimizer update) runs inside one
compiled TensorFlow function (`tf.while_loop`, XLA by default) with the data held
as tensors. Python is entered once per epoch, to report, check for divergence and
run Keras callbacks (early stopping, user callbacks).

The loss is the per-example negative ELBO: the minibatch mean negative
log-likelihood plus the model's layer losses, which for tfbnn variational layers
are `kl_weight * KL` with `kl_weight = 1 / n_train`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from tfbnn._parallel import partition, resolve_threads, run_concurrently
from tfbnn.functional import FunctionalModel, architecture_key
from tfbnn.layers.sampling import split_samples, weight_samples


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

    def as_dict(self) -> dict:
        return {
            "nll": self.nll,
            "kl": self.kl,
            "loss": self.loss,
            "val_nll": self.val_nll,
            "stopped_epoch": self.stopped_epoch,
        }


class EpochRunner:
    """The compiled one-epoch function of an architecture, likelihood and batch size.

    It works on `FunctionalModel` parameter vectors, so one runner (and its
    compiled code) serves every model of the same architecture; `runner_for`
    caches them. The optimizer is Adam, fused over the single parameter vector.

    With `n_members = M`, `theta` is `(M, P)`: M independent networks (an
    ensemble) with their own data order, trained by one vectorised program.

    With `adversarial`, every step also fits the fast-gradient-sign inputs
    `x + epsilon * sign(d loss / d x)` (Goodfellow et al., 2015; as in deep
    ensembles, Lakshminarayanan et al., 2017), `epsilon` a per-feature tensor
    given at run time.
    """

    def __init__(self, model, likelihood, batch_size: int, jit_compile: bool = True,
                 val_samples: int = 20, n_members: int | None = None,
                 adversarial: bool = False):
        self.functional = FunctionalModel(model)
        self.likelihood = likelihood
        self.batch_size = int(batch_size)
        self.val_samples = int(val_samples)
        self.n_members = n_members
        self.adversarial = adversarial
        #: Shape of the per-epoch NLL and KL records: one per member.
        self.record_shape = () if n_members is None else (n_members,)
        # No `reduce_retracing` here: the chunk length must stay a static shape (XLA
        # sizes the per-epoch record with it); `train` keeps it fixed per data size.
        self.run_epochs = tf.function(self._epochs, jit_compile=jit_compile)
        self.val_nll = tf.function(self._val_nll, jit_compile=jit_compile, reduce_retracing=True)

    def _nll(self, theta, state, xb, yb):
        """Minibatch mean NLL (per member: `(M,)`), layer losses, and the new state."""
        if self.n_members is None:
            params, state, kl = self.functional(theta, state, xb, training=True)
        elif self.functional._batchable:
            params, kl = self.functional.map(theta, xb), tf.zeros((), theta.dtype)
        else:
            # Their (shared) random state is not advanced.
            params, kl = tf.vectorized_map(
                lambda a: self.functional(a[0], state, a[1], training=True)[::2], (theta, xb)
            )
        return -tf.reduce_mean(self.likelihood.log_prob(yb, params), axis=-1), kl, state

    def _adversarial_inputs(self, theta, state, xb, yb, epsilon):
        """The fast-gradient-sign inputs `xb + epsilon * sign(d nll / d xb)`, constants."""
        with tf.GradientTape() as tape:
            tape.watch(xb)
            nll = tf.reduce_sum(self._nll(theta, state, xb, yb)[0])
        return tf.stop_gradient(xb + epsilon * tf.sign(tape.gradient(nll, xb)))

    def _loss_and_grad(self, theta, state, xb, yb, epsilon):
        if self.adversarial:
            x_adv = self._adversarial_inputs(theta, state, xb, yb, epsilon)
        with tf.GradientTape() as tape:
            tape.watch(theta)
            # Members' losses are separable, so the gradient of their sum is each
            # member's own gradient.
            nll, kl, new_state = self._nll(theta, state, xb, yb)
            loss = nll + kl
            if self.adversarial:
                loss += self._nll(theta, state, x_adv, yb)[0]
            loss = tf.reduce_sum(loss)
        # Per member (shape `record_shape`): `train` averages them over real members.
        return tape.gradient(loss, theta), new_state, nll, tf.broadcast_to(kl, tf.shape(nll))

    def _epochs(self, x, y, theta, adam, state, orders, n_epochs, learning_rate, epsilon):
        """`n_epochs` passes over `(x, y)`, in the data orders `orders` (k, [M,] n), k >= n_epochs.

        Returns the new `theta`, Adam moments and states, and the per-epoch mean
        NLL and KL terms, each of shape (k, *record_shape) (zero past `n_epochs`). One compiled
        program serves every `n_epochs <= k`, so a short last chunk costs no compile.
        """
        k = orders.shape[0]
        # Every entry defined up front, as XLA wants; one op, not k writes to trace.
        zeros = tf.zeros([k, *self.record_shape], theta.dtype)
        nlls = tf.TensorArray(theta.dtype, size=k).unstack(zeros)
        kls = tf.TensorArray(theta.dtype, size=k).unstack(zeros)

        def body(e, theta, adam, state, nlls, kls):
            theta, adam, state, nll, kl = self._epoch(
                x, y, theta, adam, state, orders[e], learning_rate, epsilon
            )
            return e + 1, theta, adam, state, nlls.write(e, nll), kls.write(e, kl)

        _, theta, adam, state, nlls, kls = tf.while_loop(
            lambda e, *_: e < n_epochs, body, (tf.constant(0), theta, adam, state, nlls, kls),
            maximum_iterations=k,
        )
        return theta, adam, state, nlls.stack(), kls.stack()

    def _epoch(self, x, y, theta, adam, state, order, learning_rate, epsilon):
        n = tf.shape(x)[0]
        bs = self.batch_size
        steps = (n + bs - 1) // bs
        # The permutation, padded by wrapping so that every step has `bs` rows (static
        # shapes for XLA); the few repeated rows change from epoch to epoch. Orders come
        # from NumPy: XLA's CPU sort is slow on thousands of rows.
        members = 1 if self.n_members is None else self.n_members
        order = tf.reshape(order, (members, n))
        order = tf.tile(order, [1, 2])[:, : steps * bs]
        batches = tf.reshape(order, (members, steps, bs))
        if self.n_members is None:
            batches = batches[0]
        beta1, beta2, eps = 0.9, 0.999, 1e-7

        def body(i, theta, m, v, t, state, nll_sum, kl_sum):
            idx = batches[i] if self.n_members is None else batches[:, i]
            grad, state, nll, kl = self._loss_and_grad(
                theta, state, tf.gather(x, idx), tf.gather(y, idx), epsilon
            )
            t = t + 1.0
            m = beta1 * m + (1.0 - beta1) * grad
            v = beta2 * v + (1.0 - beta2) * tf.square(grad)
            step = learning_rate * tf.sqrt(1.0 - beta2**t) / (1.0 - beta1**t)
            theta = theta - step * m / (tf.sqrt(v) + eps)
            return i + 1, theta, m, v, t, state, nll_sum + nll, kl_sum + kl

        zero = tf.zeros(self.record_shape, theta.dtype)
        m, v, t = adam
        _, theta, m, v, t, state, nll_sum, kl_sum = tf.while_loop(
            lambda i, *_: i < steps, body, (tf.constant(0), theta, m, v, t, state, zero, zero)
        )
        steps_f = tf.cast(steps, theta.dtype)
        return theta, (m, v, t), state, nll_sum / steps_f, kl_sum / steps_f

    def _val_nll(self, x, y, theta, state):
        """The predictive NLL on `(x, y)` (of the mixture over members or weight
        samples), and each member's (sample's) own mean NLL, `(S,)`, from one pass."""
        if self.n_members is not None:
            params = self.functional.map(theta, x, state)  # the ensemble's mixture
        else:
            values = self.functional.unflatten(theta)
            tiled = tf.tile(x, [self.val_samples, 1])
            with weight_samples(self.val_samples):
                params, _ = self.functional.model.stateless_call(
                    values, list(state), tiled, training=False
                )
            params = split_samples(params, self.val_samples)
        log_lik = self.likelihood.log_prob(y[tf.newaxis], params)  # (S, B)
        s = tf.cast(tf.shape(params)[0], log_lik.dtype)
        mixture = -tf.reduce_mean(tf.reduce_logsumexp(log_lik, axis=0) - tf.math.log(s))
        return mixture, -tf.reduce_mean(log_lik, axis=-1)


_RUNNERS: dict[tuple, EpochRunner] = {}


def runner_for(model, likelihood, batch_size: int, jit_compile: bool = True,
               n_members: int | None = None, adversarial: bool = False) -> EpochRunner:
    """A cached `EpochRunner`: models of one architecture share compiled code."""
    key = (architecture_key(model), repr(likelihood), int(batch_size), bool(jit_compile),
           n_members, bool(adversarial))
    if key not in _RUNNERS:
        _RUNNERS[key] = EpochRunner(model, likelihood, batch_size, jit_compile=jit_compile,
                                    n_members=n_members, adversarial=adversarial)
    return _RUNNERS[key]


def train(
    model,
    likelihood,
    x,
    y,
    *,
    epochs: int,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    validation_data=None,
    patience: int | None = None,
    seed: int | None = None,
    verbose: int = 1,
    callbacks=None,
    jit_compile: bool = True,
    epoch_hook=None,
    adversarial_epsilon=None,
    threads="auto",
) -> History:
    """Trains `model` to minimise the negative ELBO of `likelihood` on `(x, y)`.

    Args:
        model: a built Keras model mapping `x` to the likelihood's parameters, or a
            list of models of one architecture: an ensemble, trained together by
            vectorised programs (see `threads`), each member with its own data order.
        likelihood: a `tfbnn.likelihoods.Likelihood`.
        x, y: in-memory training arrays (float32 inputs; targets as the likelihood wants).
        epochs: passes over the data.
        batch_size: minibatch size.
        learning_rate: Adam's step size.
        validation_data: optional `(x_val, y_val)`; reports the predictive NLL on it.
        patience: with validation data, stop after this many epochs without
            improvement and restore the best weights (Keras `EarlyStopping`). For an
            ensemble, per member on its own validation NLL: each keeps its best
            epoch's weights, and training stops when all have run out of patience.
        seed: seeds the data order.
        verbose: 1 shows a progress bar, 0 is silent.
        callbacks: Keras callbacks, called at the end of every epoch.
        jit_compile: compile the epoch with XLA.
        epoch_hook: optional `f(epoch, theta)` called after every epoch with the
            flat parameters (`(M, P)` for an ensemble), e.g. to collect SWAG moments.
        adversarial_epsilon: None, or the fast-gradient-sign step (a number, or one
            per input feature): every step then also fits `x + epsilon * sign(d
            nll / d x)`, and costs about three times as much.
        threads: an ensemble's members are cut into this many groups, each trained
            by its own compiled program on its own thread, side by side ("auto": one
            per CPU core). Members are independent, so the grouping changes the
            speed, and the result only by floating-point rounding.

    Returns:
        The `History` of the run.

    Raises:
        NonFiniteLossError: the loss became NaN or infinite.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    if not (math.isfinite(learning_rate) and learning_rate > 0):
        raise ValueError(f"learning_rate must be a positive number, got {learning_rate!r}")
    # Targets travel as float32; likelihoods cast labels back to integers.
    x = tf.convert_to_tensor(x, tf.float32)
    y = tf.convert_to_tensor(y, tf.float32)
    if validation_data is not None:
        validation_data = tuple(tf.convert_to_tensor(v, tf.float32) for v in validation_data)
    batch_size = min(int(batch_size), int(x.shape[0]))
    members = list(model) if isinstance(model, list | tuple) else None
    if members is not None and callbacks:
        raise ValueError("Callbacks are not supported when training an ensemble")
    model = members[0] if members else model
    groups = [slice(None)] if members is None else partition(
        len(members), resolve_threads(threads, len(members)))
    # Every group runs one program of the largest group's size (a smaller group is
    # padded with a copy of its last member, then dropped): one trace and compile.
    size = None if members is None else groups[0].stop - groups[0].start
    runner = runner_for(model, likelihood, batch_size, jit_compile=jit_compile,
                        n_members=size, adversarial=adversarial_epsilon is not None)
    epsilon = _adversarial_epsilon(adversarial_epsilon, int(x.shape[-1]))
    params = _ParamsSync(members or [model], stacked=members is not None)
    functional = params.functionals[0]
    theta = params.get()
    # Per group: its (padded) slice of the members' parameters and Adam moments.
    thetas = [tf.constant(_pad_rows(theta[group], size)) for group in groups]
    adams = [(tf.zeros_like(t), tf.zeros_like(t), tf.zeros((), t.dtype)) for t in thetas]
    state = functional.get_state()
    rng = np.random.default_rng(seed)
    n_rows = int(x.shape[0])
    order_shape = (n_rows,) if members is None else (len(members), n_rows)
    lr = tf.constant(learning_rate, theta.dtype)

    callback_list = list(callbacks or [])
    stopping = validation_data is not None and patience is not None
    member_stopping = _MemberEarlyStopping(int(patience)) if stopping and members else None
    if stopping and not members:
        callback_list.append(
            keras.callbacks.EarlyStopping(
                monitor="val_nll", mode="min", patience=int(patience),
                restore_best_weights=True,
            )
        )
    # Callbacks, hooks and validation see every epoch; otherwise many epochs per call.
    per_epoch = bool(callback_list) or validation_data is not None or epoch_hook is not None
    chunk = 1 if per_epoch else _epochs_per_call(-(-int(x.shape[0]) // batch_size))
    callback_list = keras.callbacks.CallbackList(callback_list, model=model)
    progress = keras.utils.Progbar(
        epochs, verbose=1, unit_name="epoch", stateful_metrics=["nll", "kl", "loss", "val_nll"]
    ) if verbose else None
    history = History()
    model.stop_training = False
    callback_list.on_train_begin()
    for first in range(0, epochs, chunk):
        callback_list.on_epoch_begin(first)
        n_run = min(chunk, epochs - first)
        orders = np.broadcast_to(np.arange(n_rows, dtype=np.int32), (chunk, *order_shape)).copy()
        orders[:n_run] = rng.permuted(orders[:n_run], axis=-1)
        outs = run_concurrently([
            functools.partial(runner.run_epochs, x, y, t, adam, state,
                              tf.constant(_pad_rows(orders[:, group], size, axis=1)),
                              tf.constant(n_run), lr, epsilon)
            for group, t, adam in zip(groups, thetas, adams)
        ])
        nlls, kls = (_member_mean([out[i].numpy()[:n_run] for out in outs], groups)
                     for i in (3, 4))
        bad = ~(np.isfinite(nlls) & np.isfinite(kls))
        if bad.any():
            # The model is left with the weights it had before training.
            params.restore_initial()
            epoch = first + int(np.argmax(bad))
            raise NonFiniteLossError(
                f"Training diverged: the loss became non-finite at epoch {epoch + 1} "
                f"(nll={nlls[bad][0]}, kl={kls[bad][0]}). Try a smaller learning_rate "
                f"(now {learning_rate}), check the data for extreme values, or standardise "
                "the inputs and targets."
            )
        thetas, adams, state = [o[0] for o in outs], [o[1] for o in outs], outs[0][2]
        theta = thetas[0] if members is None else tf.concat(
            [t[: g.stop - g.start] for t, g in zip(thetas, groups)], axis=0)
        history.nll.extend(nlls.tolist())
        history.kl.extend(kls.tolist())
        history.loss.extend((nlls + kls).tolist())
        epoch = first + len(nlls) - 1
        logs = {"nll": history.nll[-1], "kl": history.kl[-1], "loss": history.loss[-1]}
        if per_epoch:
            # Callbacks (early stopping) read and restore the Keras model's weights.
            params.set(theta, state)
        if epoch_hook is not None:
            epoch_hook(epoch, theta)
        if validation_data is not None:
            val_nll, member_nll = runner.val_nll(*validation_data, theta, state)
            logs["val_nll"] = float(val_nll)
            history.val_nll.append(logs["val_nll"])
        if progress is not None:
            progress.update(epoch + 1, values=list(logs.items()), finalize=epoch + 1 == epochs)
        callback_list.on_epoch_end(epoch, logs)
        if member_stopping is not None:
            model.stop_training = member_stopping.update(member_nll.numpy(), theta.numpy())
        if model.stop_training:
            history.stopped_epoch = epoch + 1
            break
    if member_stopping is not None:
        theta = member_stopping.best_theta
    if not per_epoch or member_stopping is not None:
        params.set(theta, state)
    callback_list.on_train_end()
    return history


class _MemberEarlyStopping:
    """Early stopping of each ensemble member on its own validation NLL.

    Keeps every member's weights from its best epoch; says stop once every member
    has gone `patience` epochs without improving. Members that have run out of
    patience keep training with the others (one program), but are restored.
    """

    def __init__(self, patience: int):
        self.patience = patience
        self.best = self.wait = self.best_theta = None

    def update(self, member_nll: np.ndarray, theta: np.ndarray) -> bool:
        if self.best is None:
            self.best, self.wait = np.full(len(theta), np.inf), np.zeros(len(theta), int)
            self.best_theta = theta.copy()
        improved = member_nll < self.best
        self.best = np.where(improved, member_nll, self.best)
        self.best_theta[improved] = theta[improved]
        self.wait = np.where(improved, 0, self.wait + 1)
        return bool(np.all(self.wait >= self.patience))


class _ParamsSync:
    """Moves flat parameters between the compiled loop and the Keras model(s)."""

    def __init__(self, models, stacked: bool):
        self.functionals = [FunctionalModel(m) for m in models]
        self.stacked = stacked
        self.initial = (self.get(), self.functionals[0].get_state())

    def get(self):
        thetas = [f.get_params() for f in self.functionals]
        return tf.stack(thetas) if self.stacked else thetas[0]

    def set(self, theta, state):
        thetas = tf.unstack(theta) if self.stacked else [theta]
        for functional, t in zip(self.functionals, thetas):
            functional.set_params(t)
            functional.set_state(state)

    def restore_initial(self):
        self.set(*self.initial)


def _pad_rows(values, size, axis=0):
    """`values` (an array) with its last row along `axis` repeated up to `size` rows."""
    values = np.asarray(values)
    if size is None or values.shape[axis] == size:
        return values
    last = np.take(values, [-1] * (size - values.shape[axis]), axis=axis)
    return np.concatenate([values, last], axis=axis)


def _member_mean(records, groups) -> np.ndarray:
    """Per-epoch mean over the real members of the groups' `(k, [size])` records."""
    if len(records[0].shape) == 1:
        return records[0]
    return np.concatenate([r[:, : g.stop - g.start] for r, g in zip(records, groups)],
                          axis=1).mean(axis=1)


def _adversarial_epsilon(value, n_features: int) -> tf.Tensor:
    """`adversarial_epsilon` as a `(n_features,)` tensor (zeros when None)."""
    if value is None:
        return tf.zeros([n_features], tf.float32)
    epsilon = np.asarray(value, np.float64)
    if epsilon.ndim > 1 or (epsilon.ndim == 1 and epsilon.size != n_features) or not (
            np.all(np.isfinite(epsilon)) and np.all(epsilon >= 0)):
        raise ValueError(
            "adversarial_epsilon must be a non-negative number or one per input feature "
            f"({n_features}), got {value!r}"
        )
    return tf.constant(np.broadcast_to(epsilon, (n_features,)), tf.float32)


def _epochs_per_call(steps_per_epoch: int, target_steps: int = 1000) -> int:
    """Epochs per compiled call: about `target_steps` optimizer steps.

    It depends only on the data size, so fits of any length share one program.
    """
    return max(1, target_steps // max(steps_per_epoch, 1))
