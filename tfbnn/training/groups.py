"""One network, or an ensemble's members cut into groups, advanced by compiled epochs.

An ensemble of M members is cut into one group per thread; every group runs the
same compiled program (`EpochRunner`) of the largest group's size, a smaller group
padded with a copy of its last member that is dropped again, so the program is
traced and compiled once. Groups run side by side (`run_concurrently`); members
are independent, so the grouping changes the speed, and the result only by
floating-point rounding.
"""

from __future__ import annotations

import functools

import keras
import numpy as np
import tensorflow as tf

from tfbnn.convert.rebuild import walk_layers
from tfbnn.functional import FunctionalModel
from tfbnn.parallel import partition, resolve_threads, run_concurrently
from tfbnn.training import distributed
from tfbnn.training.runner import runner_for


class ParamsSync:
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


class GroupedRun:
    """The parameters, optimizer states and model state of a run, advanced chunk by chunk.

    Args:
        models: the Keras models: one network, or an ensemble's members.
        stacked: whether `models` is an ensemble (`theta` is then `(M, P)`).
        likelihood: the likelihood trained under.
        batch_size: minibatch size.
        optimizer: the Keras optimizer (its learning rate is run-time state).
        threads: an ensemble's groups ("auto": one per CPU core).
        jit_compile: compile with XLA.
        adversarial: whether the steps also fit fast-gradient-sign inputs.
        strategy: a `tf.distribute.Strategy` whose replicas share every minibatch
            (`tfbnn.training.distributed`; then one group), or None: the current one.
    """

    def __init__(self, models, stacked: bool, likelihood, batch_size: int, optimizer, *,
                 threads="auto", jit_compile: bool = True, adversarial: bool = False,
                 strategy=None):
        if stacked:
            check_member_state(models[0])
        strategy = distributed.resolve_strategy(strategy)
        self.params = ParamsSync(models, stacked)
        self.n_models = len(models) if stacked else None
        threads = 1 if strategy is not None else resolve_threads(threads, len(models))
        self.groups = [slice(None)] if not stacked else partition(len(models), threads)
        self.size = None if not stacked else self.groups[0].stop - self.groups[0].start
        make_runner = runner_for if strategy is None else functools.partial(
            distributed.runner_for, strategy)
        self.runner = make_runner(models[0], likelihood, batch_size, jit_compile=jit_compile,
                                  n_members=self.size, adversarial=adversarial,
                                  optimizer=optimizer)
        self.opt_states = [self.runner.initial_state(optimizer) for _ in self.groups]
        self.reload()

    def reload(self):
        """Takes the parameters and non-trainable values (seed states, KL weights) from
        the Keras model(s): what callbacks leave there is what the next epoch uses."""
        self.theta = self.params.get()
        # Per group: its (padded) slice of the members' parameters.
        self.thetas = [tf.constant(pad_rows(self.theta[g], self.size)) for g in self.groups]
        self.state = self.params.functionals[0].get_state()

    def optimizer_view(self) -> keras.optimizers.Optimizer:
        """A Keras optimizer holding the run's optimizer state, for Keras callbacks
        (`FlatOptimizer.view`); `pull_optimizer` and `push_optimizer` keep them in step."""
        view = self.runner.optimizer.view()
        self.push_optimizer(view)
        return view

    def pull_optimizer(self, view):
        """Takes the optimizer state from `view`: all of it for one group, else its
        step count and constant learning rate (shared by the groups)."""
        flat = self.runner.optimizer
        if len(self.groups) == 1:
            self.opt_states = [flat.read_view(view)]
        else:
            self.opt_states = [flat.read_view(view, s) for s in self.opt_states]

    def push_optimizer(self, view):
        """Writes the (first group's) optimizer state into `view`."""
        self.runner.optimizer.write_view(view, self.opt_states[0])

    def run(self, x, y, orders, n_epochs: int, epsilon):
        """`n_epochs` epochs in the data orders `orders` (k, [M,] n): per-epoch NLL and
        KL terms, `(n_epochs,)` each, or `(n_epochs, M)` for an ensemble's members."""
        return self.take([
            functools.partial(self.runner.run_epochs, x, y, theta, opt_state, self.state,
                              tf.constant(pad_rows(orders[:, g], self.size, axis=1)),
                              tf.constant(n_epochs), epsilon)
            for g, theta, opt_state in zip(self.groups, self.thetas, self.opt_states)
        ], n_epochs)

    def run_stream(self, dataset, epsilon):
        """One epoch over a dataset of `(x, y)` batches, every member taking every batch
        (one group: each pass of the stream is read once): records as `run`'s."""
        if len(self.groups) != 1:
            raise ValueError("A stream trains an ensemble as one group (threads=1)")
        return self.take([functools.partial(self.runner.run_stream, dataset, self.thetas[0],
                                            self.opt_states[0], self.state, epsilon)], 1)

    def take(self, calls, n_epochs: int):
        """Runs the groups' compiled calls side by side and takes on their new parameters
        and states; returns the per-epoch NLL and KL records of the real members."""
        outs = run_concurrently(calls)
        self.thetas, self.opt_states = [o[0] for o in outs], [o[1] for o in outs]
        self.state = outs[0][2]
        self.theta = self.thetas[0] if self.n_models is None else tf.concat(
            [t[: g.stop - g.start] for t, g in zip(self.thetas, self.groups)], axis=0)
        return tuple(self._members([out[i].numpy()[:n_epochs] for out in outs])
                     for i in (3, 4))

    def _members(self, records) -> np.ndarray:
        """The real members' columns of the groups' `(k, [size])` records: `(k, [M])`."""
        if self.n_models is None:
            return records[0]
        return np.concatenate([r[:, : g.stop - g.start] for r, g in zip(records, self.groups)],
                              axis=1)

    def val_nll(self, x_val, y_val):
        """The predictive NLL on validation data and each member's own mean NLL."""
        return self.runner.val_nll(x_val, y_val, self.theta, self.state)

    def sync(self, theta=None):
        """Writes `theta` (default: the current parameters) into the Keras model(s)."""
        self.params.set(self.theta if theta is None else theta, self.state)

    def restore_initial(self):
        """Gives the Keras model(s) back the weights they had before training."""
        self.params.restore_initial()


def check_member_state(model) -> None:
    """Refuses ensemble members with batch normalisation: members train as one vectorised
    program whose non-trainable state is shared and not updated, so their moving
    statistics would stay at their initial values."""
    found = [layer.name for layer in walk_layers(model)
             if isinstance(layer, keras.layers.BatchNormalization)]
    if found:
        raise ValueError(
            f"Ensemble members with BatchNormalization ({found}) cannot be trained together: "
            "their moving statistics are not updated when members train as one vectorised "
            "program. Use keras.layers.LayerNormalization or GroupNormalization, or train "
            "the members one at a time")


def pad_rows(values, size, axis=0):
    """`values` (an array) with its last row along `axis` repeated up to `size` rows."""
    values = np.asarray(values)
    if size is None or values.shape[axis] == size:
        return values
    last = np.take(values, [-1] * (size - values.shape[axis]), axis=axis)
    return np.concatenate([values, last], axis=axis)
