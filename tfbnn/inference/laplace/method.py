"""`LaplaceInference`: the estimators' Laplace approximation, from training to posterior.

`fit` trains a deterministic MLP to the maximum a posteriori (MAP) weights
(`tfbnn.training.train`, the Normal prior as weight decay); everything after
training, the exact last-layer refit, the hyperparameter tuning, the curvature and
the predictive, is `tfbnn.inference.laplace.posterior.LaplacePosterior`, which
`tfbnn.posthoc.LastLayerLaplace` shares for networks users trained themselves.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tfbnn import models, priors
from tfbnn.inference.base import (
    INFERENCE,
    MODEL_FILE,
    FitSettings,
    Inference,
    load_network,
    train_options,
)
from tfbnn.inference.laplace.posterior import LaplacePosterior, check_likelihood
from tfbnn.inference.laplace.rows import Rows
from tfbnn.inference.training_data import training_data
from tfbnn.training import train
from tfbnn.training.stream import Stream


def check_prior(prior) -> priors.Normal:
    """Refuses a prior other than a zero-mean Normal (its precision is the weight decay)."""
    prior = priors.get(prior)
    if type(prior) is not priors.Normal:
        raise ValueError(
            "The Laplace approximation needs a Normal prior (its precision 1/scale^2 is "
            f"the MAP network's weight decay and the posterior's prior precision); got {prior!r}"
        )
    if prior.loc != 0.0:
        raise ValueError(f"The Laplace approximation needs a zero-mean Normal prior, got {prior!r}")
    return prior


@INFERENCE.register("laplace")
class LaplaceInference(LaplacePosterior, Inference):
    """The Laplace approximation around the MAP of a deterministic MLP.

    Args:
        subset_of_weights: "last_layer" (default) or "all" (see `SubsetOfWeights`).
        hessian_structure: "full" (default), "diag" or "kron" (see `HessianStructure`).
            Every combination works; `max_memory_gb` refuses those that would not fit.
        prior_precision: "marglik" (default: maximise the marginal likelihood,
            starting from the prior's `1 / scale^2`), "prior" (use `1 / scale^2`), or
            a positive number (used for the MAP training and the posterior).
        pred_type: "glm" (default, the linearised predictive) or "nn" (weight
            samples through the network); see `PredType`.
        sigma_noise: for a Gaussian likelihood with a learned noise scale (the
            regressors' default): "marglik" (default: maximise the marginal
            likelihood over it, jointly with the prior precision, counting the
            effective number of parameters over all weights with their full GGN;
            needs `P^2` memory for the network's `P` weights) or "map" (keep the
            trained scale); see `SigmaNoiseMethod`. A fixed noise is always kept.
        max_memory_gb: refuse, before training, a configuration whose curvature
            needs more memory than this (an estimate, reported in the message).
        refine_map: after training, solve the last layer's MAP exactly by Newton's
            method (a convex problem given its input features; needs the last
            layer's full GGN, `(H + 1)^2 k^2` floats). With `subset_of_weights=
            "last_layer"` and "marglik" this alternates with the precision update
            until both settle (MacKay, 1992).
        jit_compile: train with XLA.

    Fitted attributes: `theta_map_` (the MAP of the Bayesian weights, float64),
    `prior_precision_`, `sigma_noise_` (the Gaussian noise scale per output, in the
    model's standardised units; None for other likelihoods), `curvature_` (a
    `tfbnn.inference.laplace.curvature.Curvature`), `log_likelihood_`, `n_data_`,
    `model` (the Keras MAP network, holding the refitted last layer and tuned noise).

    Example:
        >>> import numpy as np, tfbnn
        >>> X = np.linspace(-1, 1, 64)[:, None]; y = np.sin(3 * X[:, 0])
        >>> model = tfbnn.BayesianRegressor(
        ...     inference="laplace", epochs=5, random_state=0,
        ...     inference_options={"subset_of_weights": "all", "hessian_structure": "kron"},
        ... ).fit(X, y)
        >>> mean, std = model.predict(X, return_std=True)
        >>> mean.shape, bool((std > 0).all())
        ((64,), True)

    #### References

    MacKay (1992); Ritter, Botev & Barber (2018), "A scalable Laplace approximation
    for neural networks"; Immer, Korzepa & Bauer (2021), "Improving predictions of
    Bayesian neural nets via local linearization"; Daxberger et al. (2021),
    "Laplace Redux - effortless Bayesian deep learning".
    """

    name = "laplace"
    owns_model = True

    def __init__(self, subset_of_weights: str = "last_layer", hessian_structure: str = "full",
                 prior_precision="marglik", pred_type: str = "glm", sigma_noise: str = "marglik",
                 max_memory_gb: float = 4.0, refine_map: bool = True, jit_compile: bool = True):
        super().__init__(subset_of_weights, hessian_structure, prior_precision, pred_type,
                         sigma_noise, max_memory_gb, refine_map)
        self.jit_compile = bool(jit_compile)

    def get_config(self):
        return {**self.posterior_config(), "jit_compile": self.jit_compile}

    def fit(self, x, y, likelihood, settings: FitSettings):
        check_likelihood(likelihood)  # before any training
        prior = check_prior(settings.prior)
        alpha = (self.prior_precision if isinstance(self.prior_precision, float)
                 else 1.0 / prior.scale**2)
        if not isinstance(x, Stream):
            x, y = np.asarray(x, np.float32), np.asarray(y, np.float32)
        data = training_data(x, y, settings)
        # Mean NLL + alpha/(2N) ||w||^2 is the negative log posterior divided by N.
        model = models.network(data.example_shape, data.n_targets, likelihood, settings,
                               seed=settings.seed, name="laplace_mlp",
                               weight_decay=alpha / (2.0 * data.n_rows))
        self.check_model_memory(model, likelihood)
        history = train(model, likelihood, data.x, data.y, validation_data=data.validation,
                        patience=settings.patience, **train_options(settings, self.jit_compile))
        self.prepare(model, likelihood)
        # A stream's curvature is summed batch by batch.
        self.fit_posterior(Rows(data.x.dataset) if data.streamed else Rows(data.x, data.y), alpha)
        return history.as_dict()

    def _sample_params(self, x, n_samples, seed):
        return self.draw_params(x, n_samples, seed)

    # -- persistence --------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save(directory / MODEL_FILE)
        self.save_posterior(directory)

    def _restore(self, directory: Path) -> None:
        self.prepare(load_network(directory), self.likelihood)
        self.restore_posterior(directory)
