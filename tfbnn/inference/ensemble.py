"""Deep ensembles: M independently initialised networks, trained as one program."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tfbnn.functional import FunctionalModel, map_params
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
from tfbnn.parallel import resolve_threads
from tfbnn.training import train
from tfbnn.training.stream import feature_range
from tfbnn.validation import check_int, check_positive

ENSEMBLE_FILE = "ensemble.npz"


@INFERENCE.register("ensemble")
class DeepEnsemble(Inference):
    """M networks with different initialisations and data orders; the predictive is
    their equal mixture.

    All members are trained together by `tfbnn.training.train` as one vectorised
    program (batched matrix products over the member axis), cut into one group per
    CPU core run side by side. Members of an estimator's `network=` with
    convolutions run one after another inside that program (a convolution with
    per-member kernels has no vectorised form), and may not hold batch
    normalisation, whose moving statistics the shared program cannot update. Each member is a maximum-likelihood fit (no weight decay), as
    in the paper [1]; members differ in their initial weights (the `mlp` seed,
    `SEED_STRIDE` apart) and in the order they see the data. With
    the estimator's `validation_fraction` and `patience`, each member stops early on
    its own validation NLL and keeps its best epoch's weights.

    For regression an estimator's `likelihood="auto"` is the paper's choice, a
    heteroscedastic Gaussian: each member predicts a mean and a variance, and the
    mixture's variance splits into the members' mean variance (aleatoric) and the
    spread of their means (epistemic). Every tfbnn likelihood works
    (`likelihood="gaussian"` gives each member one learned noise scale).

    Prediction returns the M members' outputs, `(M, B, k)`, whatever `n_samples`
    is: the ensemble's predictive is exactly the equal mixture of its members, and
    repeating members would add nothing. Predictions are deterministic.

    Adversarial training, the paper's option, is on by default: every step also
    fits the fast-gradient-sign inputs `x + epsilon_j sign(d nll / d x)` [2], with
    `epsilon_j = adversarial_epsilon` times input feature j's range in the training
    data (the paper's 0.01; in inputs of higher rank, feature j is entry j of
    the last axis, e.g. an image channel). It smooths the members' predictive
    distributions, and costs about three gradient evaluations per step instead of
    one. `None` turns it off.

    #### Mathematical details

    With members' predictive densities `p_m(y | x)`, the ensemble's predictive is
    the equal mixture `p(y | x) = (1/M) sum_m p_m(y | x)`. For Gaussian members
    with means `mu_m` and variances `sigma_m^2`, its variance is
    `(1/M) sum_m sigma_m^2 + (1/M) sum_m mu_m^2 - mu^2`, `mu = (1/M) sum_m mu_m`:
    aleatoric plus epistemic.

    Args:
        n_members: the number of networks M.
        adversarial_epsilon: the adversarial step as a fraction of each input
            feature's range (default 0.01), or None for plain maximum likelihood.
        threads: the member groups trained side by side ("auto": one per CPU core;
            1 keeps to one core). The result depends on it only through
            floating-point rounding.
        jit_compile: train with XLA.

    #### References

    [1]: Balaji Lakshminarayanan, Alexander Pritzel and Charles Blundell. Simple and
         Scalable Predictive Uncertainty Estimation using Deep Ensembles. In
         _NeurIPS_, 2017. https://arxiv.org/abs/1612.01474

    [2]: Ian Goodfellow, Jonathon Shlens and Christian Szegedy. Explaining and
         Harnessing Adversarial Examples. In _ICLR_, 2015.
         https://arxiv.org/abs/1412.6572
    """

    name = "ensemble"
    auto_likelihood = "heteroscedastic"

    def __init__(self, n_members: int = 5, adversarial_epsilon: float | None = 0.01,
                 threads="auto", jit_compile: bool = True):
        self.n_members = check_int("n_members", n_members, 1)
        resolve_threads(threads, self.n_members)  # validates
        self.threads = threads
        self.adversarial_epsilon = None if adversarial_epsilon is None else check_positive(
            "adversarial_epsilon", adversarial_epsilon)
        self.jit_compile = bool(jit_compile)
        self.model = None
        self.likelihood = None
        self.thetas_ = None

    def get_config(self):
        return {"n_members": self.n_members, "adversarial_epsilon": self.adversarial_epsilon,
                "threads": self.threads, "jit_compile": self.jit_compile}

    def fit(self, x, y, likelihood, settings: FitSettings):
        check_likelihood(likelihood)
        data = training_data(x, y, settings)
        members = [
            network(data.example_shape, data.n_targets, likelihood, settings, seed=s,
                    name="ensemble_member")
            for s in member_seeds(settings.seed, self.n_members)
        ]
        epsilon = None
        if self.adversarial_epsilon is not None:
            epsilon = self.adversarial_epsilon * (
                feature_range(data.x) if data.streamed
                else np.ptp(data.x.reshape(-1, data.x.shape[-1]), axis=0))
        history = train(members, likelihood, data.x, data.y, validation_data=data.validation,
                        patience=settings.patience, adversarial_epsilon=epsilon,
                        threads=self.threads,
                        **train_options(settings, self.jit_compile))
        thetas = np.stack([FunctionalModel(m).get_params().numpy() for m in members])
        self._set(members[0], likelihood, thetas)
        return history.as_dict()

    def _set(self, model, likelihood, thetas):
        self.model, self.likelihood, self.thetas_ = model, likelihood, thetas

    def _sample_params(self, x, n_samples, seed):
        return map_params(self.model, self.thetas_, x)

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        self.model.save(directory / MODEL_FILE)
        np.savez(directory / ENSEMBLE_FILE, thetas=self.thetas_)

    def _restore(self, directory: Path) -> None:
        model = load_network(directory)
        with np.load(Path(directory) / ENSEMBLE_FILE, allow_pickle=False) as data:
            thetas = np.asarray(data["thetas"], np.float32)
        check_params_size(thetas, model, ENSEMBLE_FILE)
        if thetas.ndim != 2 or len(thetas) != self.n_members:
            raise ValueError(f"{ENSEMBLE_FILE} holds {thetas.shape} parameters, expected "
                             f"{self.n_members} members")
        self._set(model, self.likelihood, thetas)
