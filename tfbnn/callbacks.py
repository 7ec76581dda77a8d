"""Keras callbacks for Bayesian neural networks.

`KLAnnealing` sets the KL weight of every variational layer at the start of each
epoch. The layers read the weight from a variable on every training step, so the
schedule is followed by `model.fit` and by `tfbnn.train` alike, without
recompiling.
"""

from __future__ import annotations

import math

import keras

from tfbnn.layers.posterior import variational_layers
from tfbnn.validation import check_int, check_non_negative, check_number, check_option

SCHEDULES = ("linear", "cyclical")


def linear_factor(epoch: int, n_epochs: int) -> float:
    """`epoch / n_epochs`, held at 1 from epoch `n_epochs` on: a linear warm-up."""
    return min(1.0, epoch / n_epochs)


def cyclical_factor(epoch: int, n_epochs: int, n_cycles: int, ramp: float) -> float:
    """The cyclical schedule of Fu et al. (2019): `n_epochs` cut into `n_cycles`
    cycles; in each the factor rises linearly from 0 to 1 over the first `ramp`
    fraction of the cycle, then stays at 1."""
    period = n_epochs / n_cycles
    position = (epoch % math.ceil(period)) / period
    return min(1.0, position / ramp)


class KLAnnealing(keras.callbacks.Callback):
    """Anneals the KL weight: `weight(epoch) = target * schedule factor(epoch)`.

    Pass it to `model.fit(..., callbacks=[...])` or `tfbnn.train(..., callbacks=[...])`.
    At the start of every epoch it sets each variational layer's `kl_weight`; at the
    end it logs the weight as `kl_weight` (so `History`, `CSVLogger` and `TensorBoard`
    show it).

    Args:
        schedule: "linear" (a warm-up: the factor rises from 0 at epoch 0 to 1 at
            epoch `n_epochs`, then stays 1), "cyclical" (Fu et al., 2019: `n_cycles`
            cycles over `n_epochs`, each ramping from 0 to 1 over its first `ramp`
            fraction), or a function `epoch -> factor` (a number >= 0).
        n_epochs: the warm-up length (linear) or the annealed span (cyclical); None
            takes the number of epochs of the run (`params["epochs"]` of the fit).
        weight: the target KL weight; None keeps each layer's own weight as found at
            the first `on_train_begin` (the `1 / n_train` it was built with).
        n_cycles: cycles of the cyclical schedule.
        ramp: fraction of each cycle spent rising, in (0, 1].

    #### References

    [1]: Hao Fu, Chunyuan Li, Xiaodong Liu, Jianfeng Gao, Asli Celikyilmaz and
         Lawrence Carin. Cyclical Annealing Schedule: A Simple Approach to
         Mitigating KL Vanishing. In _NAACL_, 2019. https://arxiv.org/abs/1903.10145
    """

    def __init__(self, schedule="linear", n_epochs: int | None = None,
                 weight: float | None = None, n_cycles: int = 4, ramp: float = 0.5):
        super().__init__()
        if not callable(schedule):
            check_option("schedule", schedule, SCHEDULES)
        self.schedule = schedule
        self.n_epochs = None if n_epochs is None else check_int("n_epochs", n_epochs, 1)
        self.weight = None if weight is None else check_non_negative("weight", weight)
        self.n_cycles = check_int("n_cycles", n_cycles, 1)
        self.ramp = check_number("ramp", ramp, 0.0, 1.0, include_high=True)
        self.targets = None
        self.current = None

    def on_train_begin(self, logs=None):
        layers = variational_layers(self.model)
        if not layers:
            raise ValueError(f"KLAnnealing: {self.model.name} has no tfbnn variational layers")
        if self.targets is None:
            self.targets = [layer.kl_weight if self.weight is None else self.weight
                            for layer in layers]

    def factor(self, epoch: int) -> float:
        """The schedule's factor at `epoch` (0-based)."""
        if callable(self.schedule):
            return check_non_negative("the KL annealing schedule's factor",
                                      self.schedule(epoch))
        n_epochs = self.n_epochs or (self.params or {}).get("epochs")
        if not n_epochs:
            raise ValueError("KLAnnealing needs n_epochs: the training loop did not say "
                             "how many epochs it runs")
        if self.schedule == "linear":
            return linear_factor(epoch, n_epochs)
        return cyclical_factor(epoch, n_epochs, self.n_cycles, self.ramp)

    def on_epoch_begin(self, epoch, logs=None):
        factor = self.factor(epoch)
        for layer, target in zip(variational_layers(self.model), self.targets, strict=True):
            layer.kl_weight = factor * target
        self.current = factor * self.targets[0]

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self.current is not None:
            logs["kl_weight"] = self.current
