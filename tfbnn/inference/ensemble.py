"""Deep ensembles: M independently initialised networks, trained as one program."""

from __future__ import annotations

import json
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
from tfbnn.inference.ensemble_choice import (
    AUTO,
    NOISE_OPTIONS,
    Members,
    choose,
    held_out_nll,
    member_candidates,
    selection_rows,
)
from tfbnn.inference.noise_floor import (
    has_learned_scale,
    resolution_floor,
    shift_floor,
    with_floor,
)
from tfbnn.inference.training_data import training_data
from tfbnn.models import network
from tfbnn.parallel import resolve_threads
from tfbnn.training import train
from tfbnn.training.stream import feature_range
from tfbnn.validation import (
    check_fraction,
    check_int,
    check_non_negative,
    check_option,
    check_positive,
)

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

    Adversarial training, the paper's option, fits the fast-gradient-sign inputs
    `x + epsilon_j sign(d nll / d x)` at every step as well [2], with `epsilon_j =
    adversarial_epsilon` times input feature j's range in the training data (the
    paper's 0.01; in inputs of higher rank, feature j is entry j of the last axis,
    e.g. an image channel). It smooths noisy data's predictive distributions, but on
    nearly noise-free targets it widens them (the members must predict one target
    across a step in every input), and heteroscedastic members may fit the mean
    worse where they can call it noise [3]. So by default (`"auto"`) both are chosen
    on rows held out of the training data (`tfbnn.inference.ensemble_choice`): the
    paper's members, the same without the adversarial step, and members with one
    learned noise scale each; the paper's unless another is clearly better on the
    estimator's validation rows if it holds some out, else on `selection_fraction`
    of the training rows, which the chosen setting then refits on. Labels and counts keep the paper's step; too few rows (a stream, or
    under `MIN_HELD_OUT` held out) keep the paper's members.

    Targets on a grid (integer ratings) let a learned noise scale shrink towards
    zero on points fitted exactly, and a test point one step away then scores
    thousands of nats down. `min_scale="auto"` floors the members' noise scale at
    the targets' grid step over `sqrt(12)`, the spread of one grid cell
    (`tfbnn.inference.noise_floor`); on continuous targets it is negligible.
    After fitting, `choice_` records the setting kept (with every candidate's
    held-out NLL) and `floor_` the floor; both are saved with the model.

    #### Mathematical details

    With members' predictive densities `p_m(y | x)`, the ensemble's predictive is
    the equal mixture `p(y | x) = (1/M) sum_m p_m(y | x)`. For Gaussian members
    with means `mu_m` and variances `sigma_m^2`, its variance is
    `(1/M) sum_m sigma_m^2 + (1/M) sum_m mu_m^2 - mu^2`, `mu = (1/M) sum_m mu_m`:
    aleatoric plus epistemic.

    Args:
        n_members: the number of networks M.
        adversarial_epsilon: the adversarial step as a fraction of each input
            feature's range (the paper's 0.01), None for plain maximum likelihood, or
            "auto": one of the two, chosen on held-out rows.
        noise: "auto" (with a heteroscedastic Gaussian likelihood: per-input noise or
            one learned scale per member, chosen on held-out rows; otherwise the
            likelihood's own), "heteroscedastic" or "homoscedastic" (for a
            heteroscedastic Gaussian likelihood only).
        min_scale: the floor of a learned noise scale in units of the target's
            standard deviation: "auto" (the target's grid step over `sqrt(12)`), a
            number, or None (the likelihood's own `min_scale`).
        selection_fraction: the share of training rows held out to choose the
            "auto" settings on, when the estimator holds out no validation rows (0:
            none, the paper's members).
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

    [3]: Maximilian Seitzer, Arash Tavakoli, Dimitrije Antic and Georg Martius. On the
         Pitfalls of Heteroscedastic Uncertainty Estimation with Probabilistic Neural
         Networks. In _ICLR_, 2022. https://arxiv.org/abs/2203.09168
    """

    name = "ensemble"
    auto_likelihood = "heteroscedastic"

    def __init__(self, n_members: int = 5, adversarial_epsilon="auto", noise: str = "auto",
                 min_scale="auto", selection_fraction: float = 0.1, threads="auto",
                 jit_compile: bool = True):
        self.n_members = check_int("n_members", n_members, 1)
        resolve_threads(threads, self.n_members)  # validates
        self.threads = threads
        self.adversarial_epsilon = auto_or("adversarial_epsilon", adversarial_epsilon,
                                           check_positive, "a positive number")
        self.noise = check_option("noise", noise, NOISE_OPTIONS)
        self.min_scale = auto_or("min_scale", min_scale, check_non_negative,
                                 "a non-negative number")
        self.selection_fraction = check_fraction("selection_fraction", selection_fraction)
        self.jit_compile = bool(jit_compile)
        self.model = None
        self.likelihood = None
        self.thetas_ = None
        self.floor_ = 0.0
        self.choice_ = None

    def get_config(self):
        return {"n_members": self.n_members, "adversarial_epsilon": self.adversarial_epsilon,
                "noise": self.noise, "min_scale": self.min_scale,
                "selection_fraction": self.selection_fraction, "threads": self.threads,
                "jit_compile": self.jit_compile}

    def fit(self, x, y, likelihood, settings: FitSettings):
        check_likelihood(likelihood)
        data = training_data(x, y, settings)
        floor = self._floor(data, likelihood)
        candidates = member_candidates(likelihood, self.noise, self.adversarial_epsilon)
        choice, scores = candidates[0], None
        held_out = None if len(candidates) == 1 else selection_rows(
            data, self.selection_fraction, settings.seed)
        if held_out is not None:
            fits = {c: self._train(c, held_out[0], likelihood, floor, settings)
                    for c in candidates}
            nlls = {c: held_out_nll(f[0], held_out[1]) for c, f in fits.items()}
            choice, scores = choose(nlls), {c: v.mean() for c, v in nlls.items()}
        if held_out is not None and data.validation is not None:
            members, history = fits[choice]  # already fitted on these rows
        else:
            members, history = self._train(choice, data, likelihood, floor, settings)
        self.floor_ = members.likelihood.min_scale if has_learned_scale(likelihood) else 0.0
        self.choice_ = choice.describe(scores)
        self._set(members.model, likelihood, members.thetas)
        return history.as_dict()

    def _floor(self, data, likelihood) -> float:
        """The scale floor the members train with (standardised target units)."""
        if self.min_scale is None or not has_learned_scale(likelihood):
            return 0.0
        if self.min_scale != AUTO:
            return self.min_scale
        return 0.0 if data.streamed else resolution_floor(data.y)

    def _train(self, choice, data, likelihood, floor, settings):
        """Trains the members of `choice` on `data`: their `Members` and `History`."""
        train_likelihood = with_floor(choice.likelihood(likelihood), floor)
        models = [
            network(data.example_shape, data.n_targets, train_likelihood, settings, seed=s,
                    name="ensemble_member")
            for s in member_seeds(settings.seed, self.n_members)
        ]
        epsilon = None
        if choice.epsilon is not None:
            epsilon = choice.epsilon * (
                feature_range(data.x) if data.streamed
                else np.ptp(data.x.reshape(-1, data.x.shape[-1]), axis=0))
        history = train(models, train_likelihood, data.x, data.y,
                        validation_data=data.validation, patience=settings.patience,
                        adversarial_epsilon=epsilon, threads=self.threads,
                        **train_options(settings, self.jit_compile))
        thetas = np.stack([FunctionalModel(m).get_params().numpy() for m in models])
        return Members(models[0], train_likelihood, thetas), history

    def _set(self, model, likelihood, thetas):
        self.model, self.likelihood, self.thetas_ = model, likelihood, thetas

    def _sample_params(self, x, n_samples, seed):
        params = map_params(self.model, self.thetas_, x)
        if self.floor_ and has_learned_scale(self.likelihood):
            params = shift_floor(params, self.floor_, self.likelihood.min_scale)
        return params

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        self.model.save(directory / MODEL_FILE)
        np.savez(directory / ENSEMBLE_FILE, thetas=self.thetas_, floor=np.float64(self.floor_),
                 choice=np.str_(json.dumps(self.choice_)))

    def _restore(self, directory: Path) -> None:
        model = load_network(directory)
        with np.load(Path(directory) / ENSEMBLE_FILE, allow_pickle=False) as data:
            thetas = np.asarray(data["thetas"], np.float32)
            # Saved before the floor and the choice existed: neither.
            self.floor_ = float(data["floor"]) if "floor" in data else 0.0
            self.choice_ = json.loads(str(data["choice"])) if "choice" in data else None
        check_params_size(thetas, model, ENSEMBLE_FILE)
        if thetas.ndim != 2 or len(thetas) != self.n_members:
            raise ValueError(f"{ENSEMBLE_FILE} holds {thetas.shape} parameters, expected "
                             f"{self.n_members} members")
        self._set(model, self.likelihood, thetas)


def auto_or(name: str, value, check, expected: str):
    """`value` if it is "auto" or None, else `check(name, value)`; a ValueError naming
    all three kinds otherwise."""
    if value is None or (isinstance(value, str) and value == AUTO):
        return value
    try:
        return check(name, value)
    except ValueError:
        raise ValueError(f"{name} must be 'auto', None or {expected}, got {value!r}") from None
