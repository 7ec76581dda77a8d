"""SWA-Gaussian: a Gaussian fitted to the iterates of the optimizer (Maddox et al., 2019)."""

from __future__ import annotations

import collections
import math
from pathlib import Path

import numpy as np

from tfbnn.inference.base import (
    INFERENCE,
    MODEL_FILE,
    FitSettings,
    Inference,
    load_network,
    train_options,
    validation_split,
)
from tfbnn.inference.ensemble import (
    ParamsMap,
    check_float,
    check_int,
    check_likelihood,
    check_params_size,
    network,
)
from tfbnn.training import train

SWAG_FILE = "swag.npz"


class SwagMoments:
    """Running first and second moments of parameter vectors, and the last K deviations.

    `collect(theta)` is called once per epoch; the deviation stored is
    `theta_i - mean_i`, the iterate minus the running mean after including it.
    """

    def __init__(self, max_rank: int):
        self.max_rank = max_rank
        self.n = 0
        self.mean = None
        self.sq_mean = None
        self.deviations = collections.deque(maxlen=max(max_rank, 1))

    def collect(self, theta) -> None:
        theta = np.asarray(theta, np.float64)
        if self.n == 0:
            self.mean, self.sq_mean = np.zeros_like(theta), np.zeros_like(theta)
        self.n += 1
        self.mean += (theta - self.mean) / self.n
        self.sq_mean += (theta**2 - self.sq_mean) / self.n
        if self.max_rank:
            self.deviations.append(theta - self.mean)

    def arrays(self) -> dict:
        deviations = np.stack(self.deviations) if self.deviations else np.zeros((0, self.mean.size))
        return {"n": np.int64(self.n), "mean": self.mean, "sq_mean": self.sq_mean,
                "deviations": deviations}

    @classmethod
    def from_arrays(cls, max_rank: int, arrays) -> SwagMoments:
        moments = cls(max_rank)
        moments.n = int(arrays["n"])
        moments.mean = np.asarray(arrays["mean"], np.float64)
        moments.sq_mean = np.asarray(arrays["sq_mean"], np.float64)
        moments.deviations.extend(np.asarray(arrays["deviations"], np.float64))
        return moments

    def sample(self, rng: np.random.Generator, n_samples: int) -> np.ndarray:
        """`(S, P)` draws `mean + diag^(1/2) z1 / sqrt(2) + D z2 / sqrt(2 (K - 1))`."""
        diag = np.clip(self.sq_mean - self.mean**2, 0.0, None)
        z1 = rng.standard_normal((n_samples, self.mean.size))
        thetas = self.mean + np.sqrt(diag / 2.0) * z1
        k = len(self.deviations)
        if k >= 2:  # the low-rank term needs at least two deviations
            z2 = rng.standard_normal((n_samples, k))
            thetas += z2 @ np.stack(self.deviations) / math.sqrt(2.0 * (k - 1))
        return thetas


@INFERENCE.register("swag")
class SWAG(Inference):
    """Stochastic weight averaging Gaussian: the spread of the optimizer's iterates.

    Training runs `burn_in` epochs (default: the estimator's `epochs`), then
    `swag_epochs` more at `swag_learning_rate`, collecting the parameters once per
    epoch: their mean `theta_bar`, the diagonal covariance
    `Sigma_diag = mean(theta^2) - theta_bar^2` and the deviation matrix `D` of the
    last `K = max_rank` iterates from the running mean. Prediction draws

        theta = theta_bar + Sigma_diag^(1/2) z1 / sqrt(2) + D z2 / sqrt(2 (K - 1)),

    `z1 ~ N(0, I_P)`, `z2 ~ N(0, I_K)`, and evaluates all draws in one vectorised
    call (`FunctionalModel.map`). `max_rank=0` is SWAG-diagonal.

    Deviations from the paper: the iterates come from Adam (tfbnn's training loop)
    with a constant step size rather than SGD with a cyclical or constant high
    learning rate, and the burn-in and collection phases each start Adam's moments
    afresh; raise `swag_learning_rate` for a wider posterior. There is no weight
    decay (maximum-likelihood iterates). The batch-norm refresh of the paper does
    not apply (no batch normalisation). Every tfbnn likelihood works.

    Limitation seen in the tests: the spread of the iterates follows the gradient
    noise, which the training data drive, so SWAG's epistemic variance is not
    reliably larger between clusters of inputs than on them (1-D data with a gap:
    ratios 0.5-1.4 over seeds, where deep ensembles and MC dropout give 1.3-5).

    Args:
        swag_epochs: epochs over which iterates are collected (one per epoch), >= 2.
        max_rank: `K`, the number of deviation columns kept (0: diagonal only).
        burn_in: training epochs before collection; None uses the estimator's `epochs`.
        swag_learning_rate: the (constant) step size while collecting; None uses the
            estimator's `learning_rate`.
        jit_compile: train with XLA.

    #### References

    [1]: Wesley Maddox, Timur Garipov, Pavel Izmailov, Dmitry Vetrov and Andrew
         Gordon Wilson. A Simple Baseline for Bayesian Uncertainty in Deep Learning.
         In _NeurIPS_, 2019. https://arxiv.org/abs/1902.02476
    """

    name = "swag"

    def __init__(self, swag_epochs: int = 40, max_rank: int = 20, burn_in: int | None = None,
                 swag_learning_rate: float | None = None, jit_compile: bool = True):
        self.swag_epochs = check_int("swag_epochs", swag_epochs, 2)
        self.max_rank = check_int("max_rank", max_rank, 0)
        self.burn_in = None if burn_in is None else check_int("burn_in", burn_in, 0)
        self.swag_learning_rate = (None if swag_learning_rate is None else
                                   check_float("swag_learning_rate", swag_learning_rate, 0.0))
        self.jit_compile = bool(jit_compile)
        self.model = None
        self.likelihood = None
        self.moments_ = None
        self._map = None
        self._rng = np.random.default_rng()

    def get_config(self):
        return {
            "swag_epochs": self.swag_epochs,
            "max_rank": self.max_rank,
            "burn_in": self.burn_in,
            "swag_learning_rate": self.swag_learning_rate,
            "jit_compile": self.jit_compile,
        }

    def fit(self, x, y, likelihood, settings: FitSettings):
        check_likelihood(likelihood)
        x_train, y_train, validation = validation_split(x, y, settings)
        model = network(x.shape[1], y.shape[1], likelihood, settings, seed=settings.seed,
                        name="swag_mlp")
        options = train_options(settings, self.jit_compile)
        burn_in = settings.epochs if self.burn_in is None else self.burn_in
        history = {"nll": [], "kl": [], "loss": [], "val_nll": [], "stopped_epoch": None}
        if burn_in:
            # Without a hook the burn-in runs many epochs per compiled call.
            burn = train(model, likelihood, x_train, y_train, validation_data=validation,
                         patience=settings.patience, **{**options, "epochs": burn_in})
            history = burn.as_dict()
        moments = SwagMoments(self.max_rank)
        # Validation is reported while collecting too; early stopping only in the burn-in.
        collect = train(
            model, likelihood, x_train, y_train, validation_data=validation,
            **{**options, "epochs": self.swag_epochs,
               "learning_rate": self.swag_learning_rate or settings.learning_rate,
               "seed": None if settings.seed is None else settings.seed + 1},
            epoch_hook=lambda epoch, theta: moments.collect(theta.numpy()),
        )
        for key in ("nll", "kl", "loss", "val_nll"):
            history[key] = history[key] + getattr(collect, key)
        self._set(model, likelihood, moments)
        return history

    def _set(self, model, likelihood, moments):
        self.model, self.likelihood, self.moments_ = model, likelihood, moments
        self._map = ParamsMap(model)

    def _sample_params(self, x, n_samples, seed):
        rng = self._rng if seed is None else np.random.default_rng(seed)
        return self._map(self.moments_.sample(rng, n_samples), x)

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        self.model.save(directory / MODEL_FILE)
        np.savez(directory / SWAG_FILE, **self.moments_.arrays())

    def _restore(self, directory: Path) -> None:
        model = load_network(directory)
        with np.load(Path(directory) / SWAG_FILE, allow_pickle=False) as data:
            moments = SwagMoments.from_arrays(self.max_rank, data)
        check_params_size(moments.mean, model, SWAG_FILE)
        self._set(model, self.likelihood, moments)
