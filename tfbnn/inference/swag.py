"""SWA-Gaussian: a Gaussian fitted to the iterates of the optimizer (Maddox et al., 2019),
around several independently trained networks (MultiSWAG, Wilson & Izmailov, 2020)."""

from __future__ import annotations

import collections
import math
from pathlib import Path

import numpy as np

from tfbnn.functional import map_params
from tfbnn.inference.base import (
    INFERENCE,
    MODEL_FILE,
    FitSettings,
    Inference,
    check_likelihood,
    load_network,
    train_options,
)
from tfbnn.inference.deterministic import check_params_size, member_seeds
from tfbnn.inference.training_data import training_data
from tfbnn.models import network
from tfbnn.training import train
from tfbnn.validation import check_int, check_positive

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
    """Stochastic weight averaging Gaussian: the spread of the optimizer's iterates,
    fitted around `n_models` independently trained networks (MultiSWAG).

    Each network trains `burn_in` epochs (default: the estimator's `epochs`), then
    `swag_epochs` more at `swag_learning_rate`, collecting its parameters once per
    epoch: their mean `theta_bar`, the diagonal covariance
    `Sigma_diag = mean(theta^2) - theta_bar^2` and the deviation matrix `D` of the
    last `K = max_rank` iterates from the running mean. A draw from one network's
    Gaussian is

        theta = theta_bar + Sigma_diag^(1/2) z1 / sqrt(2) + D z2 / sqrt(2 (K - 1)),

    `z1 ~ N(0, I_P)`, `z2 ~ N(0, I_K)`. `max_rank=0` is SWAG-diagonal.

    With `n_models = M > 1` this is MultiSWAG [2]: M networks with different
    initial weights (the `mlp` seed, `SEED_STRIDE` apart, as in the deep ensemble)
    and data orders, trained together as one vectorised program, each with its own
    SWAG Gaussian; the posterior is their equal mixture, and the `n_samples` draws
    of a prediction are shared out among the M Gaussians as evenly as possible
    (so give at least M). All draws are evaluated in one vectorised call
    (`FunctionalModel.map`). `n_models=1` is the SWAG of [1].

    Why several networks: a single SWAG Gaussian describes one mode, and its
    spread follows the gradient noise, which moves the weights only along
    directions the training data constrain; away from the data (in a gap between
    input clusters) it need not widen. The mixture over independently trained
    networks adds the spread between modes, as a deep ensemble does [2]. It costs
    about M times the arithmetic of one network.

    Deviations from the paper: the iterates come from the estimator's optimizer
    (Adam by default) with a constant step size rather than SGD with a cyclical or
    constant high learning rate, and the burn-in and collection phases each start
    the optimizer's state afresh; raise `swag_learning_rate` for a wider Gaussian
    around each network. There is no
    weight decay (maximum-likelihood iterates). The batch-norm refresh of the
    paper is not done: with an estimator's `network=` holding batch normalisation
    (only with `n_models=1`: members trained together cannot update it), every
    draw uses the moving statistics of the trained network. Early stopping (the
    estimator's `patience`) applies to the burn-in, per model. Every tfbnn
    likelihood works.

    Args:
        swag_epochs: epochs over which iterates are collected (one per epoch), >= 2.
        max_rank: `K`, the number of deviation columns kept (0: diagonal only).
        burn_in: training epochs before collection; None uses the estimator's `epochs`.
        swag_learning_rate: the (constant) step size while collecting; None uses the
            estimator's `learning_rate` (or its optimizer's own rate).
        n_models: `M`, the independently trained networks whose SWAG Gaussians are
            mixed (1: plain SWAG).
        jit_compile: train with XLA.

    #### References

    [1]: Wesley Maddox, Timur Garipov, Pavel Izmailov, Dmitry Vetrov and Andrew
         Gordon Wilson. A Simple Baseline for Bayesian Uncertainty in Deep Learning.
         In _NeurIPS_, 2019. https://arxiv.org/abs/1902.02476

    [2]: Andrew Gordon Wilson and Pavel Izmailov. Bayesian Deep Learning and a
         Probabilistic Perspective of Generalization. In _NeurIPS_, 2020.
         https://arxiv.org/abs/2002.08791
    """

    name = "swag"

    def __init__(self, swag_epochs: int = 40, max_rank: int = 20, burn_in: int | None = None,
                 swag_learning_rate: float | None = None, n_models: int = 5,
                 jit_compile: bool = True):
        self.swag_epochs = check_int("swag_epochs", swag_epochs, 2)
        self.max_rank = check_int("max_rank", max_rank, 0)
        self.burn_in = None if burn_in is None else check_int("burn_in", burn_in, 0)
        self.swag_learning_rate = (None if swag_learning_rate is None else
                                   check_positive("swag_learning_rate", swag_learning_rate))
        self.n_models = check_int("n_models", n_models, 1)
        self.jit_compile = bool(jit_compile)
        self.model = None
        self.likelihood = None
        self.moments_ = None
        self._rng = np.random.default_rng()

    def get_config(self):
        return {
            "swag_epochs": self.swag_epochs,
            "max_rank": self.max_rank,
            "burn_in": self.burn_in,
            "swag_learning_rate": self.swag_learning_rate,
            "n_models": self.n_models,
            "jit_compile": self.jit_compile,
        }

    def fit(self, x, y, likelihood, settings: FitSettings):
        check_likelihood(likelihood)
        data = training_data(x, y, settings)
        x_train, y_train, validation = data.x, data.y, data.validation
        models = [network(data.example_shape, data.n_targets, likelihood, settings, seed=s,
                          name="swag_mlp") for s in member_seeds(settings.seed, self.n_models)]
        # One model trains alone; several as one vectorised program.
        target = models if self.n_models > 1 else models[0]
        options = train_options(settings, self.jit_compile)
        burn_in = settings.epochs if self.burn_in is None else self.burn_in
        history = {"nll": [], "kl": [], "loss": [], "val_nll": [], "stopped_epoch": None}
        if burn_in:
            # Without a hook the burn-in runs many epochs per compiled call.
            burn = train(target, likelihood, x_train, y_train, validation_data=validation,
                         patience=settings.patience, **{**options, "epochs": burn_in})
            history = burn.as_dict()
        moments = [SwagMoments(self.max_rank) for _ in models]

        def collect_iterates(epoch, theta):
            for m, t in zip(moments, np.reshape(theta.numpy(), (len(moments), -1))):
                m.collect(t)

        # Validation is reported while collecting too; early stopping only in the burn-in.
        collect = train(
            target, likelihood, x_train, y_train, validation_data=validation,
            **{**options, "epochs": self.swag_epochs,
               "learning_rate": self.swag_learning_rate or options["learning_rate"],
               "seed": None if settings.seed is None else settings.seed + 1},
            epoch_hook=collect_iterates,
        )
        for key in ("nll", "kl", "loss", "val_nll"):
            history[key] = history[key] + getattr(collect, key)
        self._set(models[0], likelihood, moments)
        return history

    def _set(self, model, likelihood, moments):
        self.model, self.likelihood, self.moments_ = model, likelihood, list(moments)

    def _sample_params(self, x, n_samples, seed):
        rng = self._rng if seed is None else np.random.default_rng(seed)
        # The equal mixture of the models' Gaussians: draws shared out as evenly as possible.
        m = len(self.moments_)
        counts = n_samples // m + (np.arange(m) < n_samples % m)
        thetas = np.concatenate([g.sample(rng, int(c)) for g, c in zip(self.moments_, counts)])
        return map_params(self.model, thetas, x)

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        self.model.save(directory / MODEL_FILE)
        arrays = [g.arrays() for g in self.moments_]
        np.savez(directory / SWAG_FILE, **{k: np.stack([a[k] for a in arrays]) for k in arrays[0]})

    def _restore(self, directory: Path) -> None:
        model = load_network(directory)
        with np.load(Path(directory) / SWAG_FILE, allow_pickle=False) as data:
            stacked = {k: np.asarray(data[k]) for k in data.files}
        check_params_size(stacked["mean"], model, SWAG_FILE)
        if len(stacked["mean"]) != self.n_models:
            raise ValueError(f"{SWAG_FILE} holds {len(stacked['mean'])} models, expected "
                             f"n_models={self.n_models}")
        moments = [SwagMoments.from_arrays(self.max_rank, {k: v[i] for k, v in stacked.items()})
                   for i in range(self.n_models)]
        self._set(model, self.likelihood, moments)
