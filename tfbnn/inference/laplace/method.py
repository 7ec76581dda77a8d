"""`LaplaceInference`: the method class that puts the Laplace pieces together.

`fit` trains the MAP network (`tfbnn.training.train`, the Normal prior as weight
decay), refits its last layer exactly and tunes the hyperparameters
(`tfbnn.inference.laplace.evidence`), and accumulates the curvature of the chosen
weights (`tfbnn.inference.laplace.network`, `tfbnn.inference.laplace.curvature`);
the likelihood supplies its own output terms (`Likelihood.output_hessian_sqrt`, ...).
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfbnn import likelihoods as lik
from tfbnn import models, priors
from tfbnn.functional import FunctionalModel
from tfbnn.inference.base import (
    INFERENCE,
    MODEL_FILE,
    FitSettings,
    Inference,
    load_network,
    train_options,
    validation_split,
)
from tfbnn.inference.laplace import evidence
from tfbnn.inference.laplace.curvature import STRUCTURES, memory_bytes
from tfbnn.inference.laplace.network import Network
from tfbnn.inference.laplace.options import (
    HessianStructure,
    PredType,
    PriorPrecisionMethod,
    SigmaNoiseMethod,
    SubsetOfWeights,
    check_enum,
    check_prior_precision,
)
from tfbnn.training import train
from tfbnn.validation import check_positive

POSTERIOR_FILE = "laplace.npz"


def check_likelihood(likelihood) -> None:
    """Refuses a likelihood without the closed-form output Hessian the GGN needs."""
    if not likelihood.has_output_hessian:
        raise ValueError(
            f"The Laplace approximation supports the likelihoods {lik.output_hessian_names()}, "
            f"got {likelihood!r}")


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


def gaussian_noise_scale(likelihood, model, n_outputs: int):
    """`(k,)` float64 Gaussian noise scale as `model` holds it; None for other likelihoods."""
    if not isinstance(likelihood, lik.Gaussian):
        return None
    raws = likelihood.noise_variables(model)
    if not raws:
        return likelihood.scale * np.ones(n_outputs)
    return likelihood.noise_scale(tf.cast(raws[0], tf.float64)).numpy() * np.ones(n_outputs)


@INFERENCE.register("laplace")
class LaplaceInference(Inference):
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
    `tfbnn.inference.laplace.curvature.Curvature`), `n_data_`, `model` (the Keras MAP
    network).

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

    def __init__(self, subset_of_weights: str = "last_layer", hessian_structure: str = "full",
                 prior_precision="marglik", pred_type: str = "glm", sigma_noise: str = "marglik",
                 max_memory_gb: float = 4.0, refine_map: bool = True, jit_compile: bool = True):
        self.subset_of_weights = check_enum("subset_of_weights", subset_of_weights,
                                            SubsetOfWeights)
        self.hessian_structure = check_enum("hessian_structure", hessian_structure,
                                            HessianStructure)
        self.prior_precision = check_prior_precision(prior_precision)
        self.pred_type = check_enum("pred_type", pred_type, PredType)
        self.sigma_noise = check_enum("sigma_noise", sigma_noise, SigmaNoiseMethod)
        self.max_memory_gb = check_positive("max_memory_gb", max_memory_gb)
        self.refine_map = bool(refine_map)
        self.jit_compile = bool(jit_compile)
        self.model = None
        self.likelihood = None

    def get_config(self):
        return {
            "subset_of_weights": self.subset_of_weights.value,
            "hessian_structure": self.hessian_structure.value,
            "prior_precision": (self.prior_precision if isinstance(self.prior_precision, float)
                                else self.prior_precision.value),
            "pred_type": self.pred_type.value,
            "sigma_noise": self.sigma_noise.value,
            "max_memory_gb": self.max_memory_gb,
            "refine_map": self.refine_map,
            "jit_compile": self.jit_compile,
        }

    # -- fitting ----------------------------------------------------------------------

    def check_memory(self, shapes, n_outputs: int, noise_shapes=None) -> int:
        """The estimated bytes for the Laplace layers `[(n_in + 1, n_out), ...]` (the
        last is the last layer) and, when the noise is tuned, the full GGN of all the
        layers `noise_shapes`; raises ValueError above `max_memory_gb`."""
        need = memory_bytes(self.hessian_structure, shapes, n_outputs)
        if self.refine_map:  # the last layer's Newton system
            need = max(need, memory_bytes(HessianStructure.FULL, shapes[-1:], n_outputs))
        if need > self.max_memory_gb * 1e9:
            n_params = sum(a * b for a, b in shapes)
            raise ValueError(
                f"The Laplace approximation with subset_of_weights='{self.subset_of_weights}', "
                f"hessian_structure='{self.hessian_structure}' over {n_params} weights needs "
                f"about {need / 1e9:.3g} GB, more than max_memory_gb={self.max_memory_gb:g}; use "
                "hessian_structure='kron' or 'diag', subset_of_weights='last_layer', "
                "refine_map=False (a wide last layer), a smaller network, or raise max_memory_gb"
            )
        if noise_shapes is not None:
            noise_need = memory_bytes(HessianStructure.FULL, noise_shapes, n_outputs)
            if noise_need > self.max_memory_gb * 1e9:
                raise ValueError(
                    "Tuning the Gaussian noise by the marginal likelihood (sigma_noise="
                    f"'marglik') needs the full GGN of all {sum(a * b for a, b in noise_shapes)} "
                    f"weights, about {noise_need / 1e9:.3g} GB, more than max_memory_gb="
                    f"{self.max_memory_gb:g}; use sigma_noise='map' (keep the trained noise), "
                    "a smaller network, or raise max_memory_gb")
            need = max(need, noise_need)
        return need

    def _tunes_noise(self, likelihood, model, n_outputs: int) -> bool:
        return (self.sigma_noise == SigmaNoiseMethod.MARGLIK and n_outputs == 1
                and isinstance(likelihood, lik.Gaussian) and bool(likelihood.noise_variables(model)))

    def fit(self, x, y, likelihood, settings: FitSettings):
        check_likelihood(likelihood)  # before any training
        prior = check_prior(settings.prior)
        alpha = (self.prior_precision if isinstance(self.prior_precision, float)
                 else 1.0 / prior.scale**2)
        x, y = np.asarray(x, np.float32), np.asarray(y, np.float32)
        x_train, y_train, validation = validation_split(x, y, settings)
        # Mean NLL + alpha/(2N) ||w||^2 is the negative log posterior divided by N.
        decay = keras.regularizers.L2(alpha / (2.0 * len(x_train)))
        model = models.mlp(
            x.shape[1],
            likelihood.n_network_outputs(y.shape[1]),
            hidden_units=settings.hidden_units,
            activation=settings.activation,
            output_layers=likelihood.output_layers(y.shape[1]),
            name="laplace_mlp",
            seed=settings.seed,
            kernel_regularizer=decay,
            bias_regularizer=decay,
        )
        net = Network(model, self.subset_of_weights)
        tunes_noise = self._tunes_noise(likelihood, model, net.n_outputs)
        self.check_memory(net.shapes, net.n_outputs,
                          Network(model, SubsetOfWeights.ALL).shapes if tunes_noise else None)
        history = train(model, likelihood, x_train, y_train, validation_data=validation,
                        patience=settings.patience, **train_options(settings, self.jit_compile))
        self.model, self.likelihood = model, likelihood
        self._setup()
        self._fit_posterior(x_train, y_train.astype(np.float64), alpha, tunes_noise)
        return history.as_dict()

    def _setup(self):
        self._net = Network(self.model, self.subset_of_weights)
        self._functional = FunctionalModel(self.model)
        self.sigma_noise_ = gaussian_noise_scale(self.likelihood, self.model, self._net.n_outputs)
        self._rng = np.random.default_rng()
        self._map = None

    def _store_noise(self, scale):
        """Writes the tuned noise scale into the model's noise weight (so the predictive,
        `save` and `load` use it) and reads it back as the model holds it (float32)."""
        (raw,) = self.likelihood.noise_variables(self.model)
        raw.assign(np.asarray(self.likelihood.noise_raw(scale), raw.dtype))
        self.sigma_noise_ = gaussian_noise_scale(self.likelihood, self.model, self._net.n_outputs)

    def _noise_evidence(self, x, alpha: float, tune: bool) -> evidence.NoiseEvidence:
        """What the noise's marginal likelihood needs from the whole network: the
        eigenvalues of `J^T J` over every dense weight (the full GGN at unit noise)
        and the squared norm of the weights outside the last layer."""
        net = (self._net if self.subset_of_weights == SubsetOfWeights.ALL
               else Network(self.model, SubsetOfWeights.ALL))
        weights = self._functional.get_params().numpy()[net.slice].astype(np.float64)
        hidden = weights[: weights.size - np.prod(net.last_shape)]
        return evidence.NoiseEvidence(
            net.unit_noise_eigenvalues(x), float(hidden @ hidden), alpha, tune,
            self.sigma_noise_.copy(), self.likelihood.min_scale)

    def _fit_last_layer(self, phi, y, theta, alpha, tune, noise):
        """Refits the last layer in `theta` (in place) and in the model; returns `alpha`."""
        last = slice(theta.size - np.prod(self._net.last_shape), theta.size)
        if self.refine_map:
            # With only the last layer Bayesian, the precision is tuned jointly with its
            # MAP, so the fixed point maximises the evidence of the refitted model.
            glm = evidence.LastLayerGLM(phi, y, self.likelihood, self._net.last_shape,
                                        self._net.block_rows(int(np.prod(self._net.last_shape))))
            theta[last], alpha = evidence.refit_last_layer(
                glm, theta[last], alpha, self.sigma_noise_, noise=noise,
                tune=tune and self._net.last_layer_only,
                network_alpha=noise is not None and tune and not self._net.last_layer_only)
            params = self._functional.get_params().numpy()
            params[self._net.slice] = theta
            self._functional.set_params(tf.constant(params, tf.float32))
        elif noise is not None:  # at the trained weights, as laplace-torch does
            w = theta[last].reshape(self._net.last_shape)
            noise.update(w, y - phi @ w)
            alpha = noise.alpha
        return alpha

    def _fit_posterior(self, x, y, alpha, tunes_noise: bool):
        theta = self._functional.get_params().numpy()[self._net.slice].astype(np.float64)
        tune = self.prior_precision == PriorPrecisionMethod.MARGLIK
        noise = self._noise_evidence(x, alpha, tune) if tunes_noise else None
        phi = (self._net.features(x)
               if self.refine_map or self._net.last_layer_only or noise is not None else None)
        alpha = self._fit_last_layer(phi, y, theta, alpha, tune, noise)
        if noise is not None:
            self._store_noise(noise.scale)
        curvature, log_lik = self._net.curvature(STRUCTURES[self.hessian_structure],
                                                 self.likelihood, self.sigma_noise_, x, y, theta,
                                                 phi)
        if tune:
            alpha = evidence.tune_prior_precision(curvature.eigenvalues(), float(theta @ theta),
                                                  alpha)
        self.theta_map_, self.prior_precision_ = theta, float(alpha)
        self.curvature_, self.log_likelihood_, self.n_data_ = curvature, float(log_lik), len(x)

    # -- the posterior ------------------------------------------------------------------

    def log_marginal_likelihood(self, prior_precision=None) -> float:
        """The Laplace log marginal likelihood at the MAP, for `prior_precision`
        (default: the fitted one)."""
        alpha = self.prior_precision_ if prior_precision is None else float(prior_precision)
        return evidence.log_marginal_likelihood(self.log_likelihood_, self.theta_map_,
                                                self.curvature_.eigenvalues(), alpha)

    def posterior_covariance(self) -> np.ndarray:
        """The dense `(P, P)` posterior covariance of the Bayesian weights (small models)."""
        need = 8 * 2 * self._net.n_params**2
        if need > self.max_memory_gb * 1e9:
            raise ValueError(
                f"The dense posterior covariance of {self._net.n_params} weights needs about "
                f"{need / 1e9:.3g} GB, more than max_memory_gb={self.max_memory_gb:g}")
        return self.curvature_.covariance(self.prior_precision_)

    def glm_predictive(self, x, full_cov: bool = False, include_noise: bool = False):
        """The linearised (GLM) predictive of the network outputs at `x`.

        Returns `(mean, var)`: `f_MAP(x)` `(B, k)` and the diagonal of `J Sigma J^T`
        `(B, k)` (or the full `(B, k, k)` with `full_cov`). For a Gaussian likelihood
        `include_noise` adds the noise variance: the predictive of `y` itself.
        """
        means, covs = [], []
        for _, f, acts, jz in self._net.blocks(np.asarray(x, np.float32), self.theta_map_,
                                               n_params=self._net.n_params):
            means.append(f)
            covs.append(self.curvature_.output_cov(acts, jz, self.prior_precision_))
        mean, cov = np.concatenate(means), np.concatenate(covs)
        if include_noise:
            if self.sigma_noise_ is None:
                raise ValueError(f"include_noise needs a Gaussian likelihood, not {self.likelihood!r}")
            cov = cov + np.diag(self.sigma_noise_**2)
        return mean, (cov if full_cov else np.diagonal(cov, axis1=-2, axis2=-1).copy())

    def _sample_params(self, x, n_samples, seed):
        rng = self._rng if seed is None else np.random.default_rng(seed)
        if self.pred_type == PredType.GLM:
            mean, cov = self.glm_predictive(x, full_cov=True)
            values, vectors = np.linalg.eigh(cov)
            root = vectors * np.sqrt(np.clip(values, 0.0, None))[:, None, :]
            z = rng.standard_normal((n_samples, *mean.shape))
            return self._net.apply_heads(mean[None] + np.einsum("bjl,sbl->sbj", root, z))
        z = rng.standard_normal((n_samples, self._net.n_params))
        thetas = np.tile(self._functional.get_params().numpy(), (n_samples, 1))
        thetas[:, self._net.slice] = self.theta_map_ + self.curvature_.sample(z, self.prior_precision_)
        if self._map is None:
            self._map = tf.function(self._functional.map, reduce_retracing=True)
        return self._map(tf.constant(thetas, tf.float32), tf.convert_to_tensor(x, tf.float32))

    # -- persistence --------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save(directory / MODEL_FILE)
        arrays = {f"curvature_{k}": v for k, v in self.curvature_.arrays().items()}
        np.savez(
            directory / POSTERIOR_FILE,
            theta_map=self.theta_map_,
            prior_precision=np.float64(self.prior_precision_),
            log_likelihood=np.float64(self.log_likelihood_),
            n_data=np.int64(self.n_data_),
            **arrays,
        )

    def _restore(self, directory: Path) -> None:
        self.model = load_network(directory)
        self._setup()
        with np.load(directory / POSTERIOR_FILE, allow_pickle=False) as data:
            arrays = {k.removeprefix("curvature_"): data[k] for k in data.files
                      if k.startswith("curvature_")}
            self.theta_map_ = np.asarray(data["theta_map"], np.float64)
            self.prior_precision_ = float(data["prior_precision"])
            self.log_likelihood_ = float(data["log_likelihood"])
            self.n_data_ = int(data["n_data"])
        if self.theta_map_.shape != (self._net.n_params,):
            raise ValueError(
                f"{POSTERIOR_FILE} holds {self.theta_map_.size} weights, the model's Laplace "
                f"subset has {self._net.n_params}")
        self.curvature_ = STRUCTURES[self.hessian_structure].from_arrays(self._net.shapes, arrays)
