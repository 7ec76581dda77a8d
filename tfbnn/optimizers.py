"""Keras optimizers as pure functions of explicit state, for compiled training loops.

tfbnn's training loops, the MAP start of its samplers and SG-MCMC's preconditioner
run many optimizer steps inside one compiled TensorFlow program, over one flat
parameter tensor carried through a `tf.while_loop`. `FlatOptimizer` lets any Keras
optimizer (with its learning-rate schedule, weight decay and clipping) do those
steps: `apply(state, grad, theta) -> (theta, state)` touches no variable, so the
same compiled program serves every model of one architecture, any thread, and any
learning rate (the rate travels in `state`).

Keras implements this as `Optimizer.stateless_apply`, which its TensorFlow backend
refuses because `tf.distribute` wants real variables. The update rules themselves
(`update_step` of each optimizer) are backend-neutral, so `FlatOptimizer` runs
them with the backend-neutral variable handling of Keras' base optimizer.
"""

from __future__ import annotations

import json

import keras
import tensorflow as tf
from keras.src.optimizers.base_optimizer import BaseOptimizer

from tfbnn.validation import check_int, check_number, check_positive

#: The name of the parameter tensor the optimizer is built for (its slots are named after it).
PARAMETERS = "parameters"
#: The optimizer the training loops use when none is given.
DEFAULT_OPTIMIZER = "adam"


class _StatelessUpdates:
    """Keras' backend-neutral versions of the methods its TensorFlow optimizer binds
    to `tf.Variable`s and `tf.distribute`, so that `stateless_apply` works on tensors."""

    stateless_apply = BaseOptimizer.stateless_apply
    assign = BaseOptimizer.assign
    assign_add = BaseOptimizer.assign_add
    assign_sub = BaseOptimizer.assign_sub
    _var_key = BaseOptimizer._var_key
    _apply_weight_decay = BaseOptimizer._apply_weight_decay
    _backend_update_step = BaseOptimizer._backend_update_step


def get(optimizer=None, learning_rate=None) -> keras.optimizers.Optimizer:
    """A Keras optimizer from an instance, a name ("adam", "sgd", ...), a config dict or
    None (Adam).

    Args:
        optimizer: what to build the optimizer from. An instance is returned as it
            is unless `learning_rate` is given.
        learning_rate: if given, a positive constant step size that replaces the
            optimizer's (for an instance, in a copy: the instance is left alone).

    Raises:
        ValueError: an unknown optimizer, a bad `learning_rate`, or a
            `learning_rate` given with an optimizer that has a schedule.
    """
    if optimizer is None:
        optimizer = DEFAULT_OPTIMIZER
    given = optimizer
    if learning_rate is not None:
        learning_rate = check_positive("learning_rate", learning_rate)
    if isinstance(optimizer, str) and learning_rate is not None:
        optimizer = {"class_name": optimizer, "config": {"learning_rate": learning_rate}}
        learning_rate = None
    try:
        optimizer = keras.optimizers.get(optimizer)
    except ValueError as err:
        raise ValueError(f"Unknown optimizer={given!r}: {err}") from None
    if learning_rate is None:
        return optimizer
    if _rate_variable(optimizer) is None:
        raise ValueError(f"learning_rate={learning_rate!r} cannot replace the learning-rate "
                         f"schedule of the given {type(optimizer).__name__} optimizer")
    return type(optimizer).from_config({**optimizer.get_config(), "learning_rate": learning_rate})


def decaying_at_end(optimizer, learning_rate: float, total_steps: int, fraction: float,
                    floor: float = 0.01) -> keras.optimizers.Optimizer:
    """The optimizer `get(optimizer)` names, its step size held at `learning_rate` for
    the first `1 - fraction` of `total_steps` and then brought down along a half cosine
    to `floor * learning_rate` at the last step (and held there).

    Stochastic-gradient iterates at a constant step size keep fluctuating around the
    optimum by an amount that grows with the step size [1]; the decay ends a run at
    small steps, so the final weights sit close to the optimum, as SGDR's cosine
    annealing does within each cycle [2]. It is Keras' `CosineDecay` schedule with a
    constant warm-up (`warmup_target = initial_learning_rate`).

    Args:
        optimizer: None (Adam) or an optimizer name ("adam", "sgd", ...).
        learning_rate: the constant (peak) step size, positive.
        total_steps: the optimizer steps of the run.
        fraction: the share of `total_steps` at the end over which the rate decays,
            in [0, 1]; 0 keeps it constant.
        floor: the final rate as a fraction of `learning_rate`, in [0, 1].

    #### References

    [1]: Herbert Robbins and Sutton Monro. A Stochastic Approximation Method. _The
         Annals of Mathematical Statistics_, 22(3):400-407, 1951.

    [2]: Ilya Loshchilov and Frank Hutter. SGDR: Stochastic Gradient Descent with Warm
         Restarts. In _ICLR_, 2017. https://arxiv.org/abs/1608.03983
    """
    if optimizer is not None and not isinstance(optimizer, str):
        raise ValueError(f"decaying_at_end takes None or an optimizer name, got {optimizer!r}: "
                         "an optimizer instance or config brings its own learning rate")
    learning_rate = check_positive("learning_rate", learning_rate)
    total_steps = check_int("total_steps", total_steps, minimum=1)
    fraction = check_number("fraction", fraction, 0.0, 1.0, include_low=True, include_high=True)
    floor = check_number("floor", floor, 0.0, 1.0, include_low=True, include_high=True)
    decay_steps = int(round(fraction * total_steps))
    if decay_steps == 0:
        return get(optimizer, learning_rate)
    schedule = keras.optimizers.schedules.CosineDecay(
        learning_rate, decay_steps=decay_steps, alpha=floor, warmup_target=learning_rate,
        warmup_steps=total_steps - decay_steps)
    base = get(optimizer)
    return type(base).from_config({**base.get_config(), "learning_rate": schedule})


def describe_learning_rate(optimizer) -> str:
    """The optimizer's constant learning rate, or the name of its schedule, as text."""
    rate = _rate_variable(optimizer)
    if rate is None:
        schedule = optimizer.get_config()["learning_rate"]
        return f"the {schedule.get('class_name', 'learning-rate')} schedule"
    return f"{float(rate.numpy()):g}"


def _rate_variable(optimizer):
    """The variable holding a constant learning rate (None under a schedule)."""
    return next((v for v in optimizer.variables if v.name == "learning_rate"), None)


def program_key(optimizer) -> str:
    """What a compiled program depends on: the optimizer's class and configuration,
    except a constant learning rate, which is run-time state."""
    config = optimizer.get_config()
    if _rate_variable(optimizer) is not None:
        config.pop("learning_rate", None)
    config.pop("name", None)
    return json.dumps([type(optimizer).__name__, config], sort_keys=True, default=str)


class FlatOptimizer:
    """A Keras optimizer updating one parameter tensor by pure function calls.

    Args:
        optimizer: a Keras optimizer (its class and configuration are used; the
            instance itself is never updated), or anything `get` accepts.
        shape: the shape of the parameters, e.g. `(P,)`, or `(M, P)` for M
            networks trained side by side (elementwise optimizers such as Adam then
            update each network as if alone; a global clipping norm would span all).
        dtype: the parameters' dtype.
    """

    def __init__(self, optimizer, shape, dtype="float32"):
        optimizer = get(optimizer)
        self.keras_class, self.shape, self.dtype = type(optimizer), tuple(shape), dtype
        self.config = optimizer.get_config()
        stateless_class = type(type(optimizer).__name__, (_StatelessUpdates, type(optimizer)), {})
        self.optimizer = self._built(stateless_class)
        self.key = program_key(self.optimizer)

    def _built(self, cls) -> keras.optimizers.Optimizer:
        """An optimizer of class `cls` with this configuration, built for the parameters
        (its slots named after `PARAMETERS`)."""
        optimizer = cls.from_config(self.config)
        optimizer.build([keras.Variable(tf.zeros(self.shape, self.dtype), name=PARAMETERS)])
        return optimizer

    def initial_state(self, optimizer=None) -> list[tf.Tensor]:
        """Fresh optimizer state (step count 0, zero moments), with the constant learning
        rate of `optimizer` if given (it must share this one's `program_key`)."""
        state = [tf.convert_to_tensor(v) for v in self.optimizer.variables]
        if optimizer is not None:
            optimizer = get(optimizer)
            if program_key(optimizer) != self.key:
                raise ValueError(f"{optimizer!r} does not match this program's optimizer")
            rate = _rate_variable(self.optimizer)
            if rate is not None:
                state = [tf.cast(_rate_variable(optimizer), s.dtype) if v is rate else s
                         for v, s in zip(self.optimizer.variables, state)]
        return state

    def apply(self, state, grad, theta):
        """One step: `(new theta, new state)` from the gradient of the loss at `theta`."""
        (theta,), state = self.optimizer.stateless_apply(list(state), [grad], [theta])
        return theta, state

    def slot(self, state, name: str) -> tf.Tensor:
        """The optimizer's per-parameter slot `name` (e.g. RMSprop's "velocity", Adam's
        "momentum"), read from `state`."""
        names = [v.name for v in self.optimizer.variables]
        wanted = f"{PARAMETERS}_{name}"
        if wanted not in names:
            slots = [n[len(PARAMETERS) + 1:] for n in names if n.startswith(PARAMETERS + "_")]
            raise ValueError(f"{type(self.optimizer).__name__} has no slot {name!r}; "
                             f"it has {slots}")
        return state[names.index(wanted)]

    def iterations(self, state) -> tf.Tensor:
        """The number of steps taken, read from `state`."""
        return state[self.optimizer.variables.index(self.optimizer.iterations)]

    # -- a Keras optimizer mirroring the state, for Keras callbacks ---------------------

    def view(self, optimizer=None) -> keras.optimizers.Optimizer:
        """A plain Keras optimizer of this class and configuration whose variables hold
        `initial_state(optimizer)`, one variable per state entry, in the same order.

        Keras callbacks read and set its `learning_rate` and `iterations`, and
        `save_weights` / `load_weights` store all of it (moments included);
        `read_view` and `write_view` move values between it and the loop's state.
        """
        view = self._built(self.keras_class)
        self.write_view(view, self.initial_state(optimizer))
        return view

    def read_view(self, view, state=None) -> list[tf.Tensor]:
        """The state held by `view`; given `state`, only its scalar entries (step count,
        constant learning rate) are taken from `view`, the slots from `state`."""
        values = [tf.convert_to_tensor(v) for v in view.variables]
        if state is None:
            return values
        return [v if v.shape.rank == 0 else s for v, s in zip(values, state)]

    def write_view(self, view, state) -> None:
        """Writes `state` into `view`."""
        for variable, value in zip(view.variables, state, strict=True):
            variable.assign(value)
