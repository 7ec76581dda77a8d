"""`LaplacePosterior`: the Laplace posterior around a trained Keras network.

Everything after training lives here, shared by the estimators' method
(`tfbnn.inference.laplace.LaplaceInference`, which first trains an MLP to its MAP)
and `tfbnn.posthoc.LastLayerLaplace` (a network the user trained): the exact refit
of the last layer, the tuning of the prior precision and of a Gaussian noise by
the marginal likelihood (`evidence`), the curvature of the chosen weights
(`network`, `curvature`), the linearised predictive and weight draws, and the
arrays that save and restore the fitted posterior.

The network's outputs are the likelihood's parameters: the last Dense layer emits
the "network outputs" `f` in which the likelihood's curvature is written
(`Likelihood.output_hessian_sqrt`), and the likelihood's own heads
(`Likelihood.output_layers`, e.g. a `tfbnn.layers.LearnedScale` noise scale)
complete them. The posterior keeps its own copy of those heads, so a tuned noise
never has to be written into a user's model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from tfbnn import likelihoods as lik
from tfbnn.functional import FunctionalModel, map_params
from tfbnn.inference.laplace import evidence
from tfbnn.inference.laplace.curvature import STRUCTURES, memory_bytes
from tfbnn.inference.laplace.network import Network, apply_layers, is_mlp
from tfbnn.inference.laplace.options import (
    HessianStructure,
    PredType,
    PriorPrecisionMethod,
    SigmaNoiseMethod,
    SubsetOfWeights,
    check_enum,
    check_prior_precision,
)
from tfbnn.inference.laplace.rows import Rows
from tfbnn.layers.heads import LearnedScale
from tfbnn.validation import check_positive

POSTERIOR_FILE = "laplace.npz"


def check_likelihood(likelihood) -> None:
    """Refuses a likelihood without the closed-form output Hessian the GGN needs."""
    if not likelihood.has_output_hessian:
        raise ValueError(
            f"The Laplace approximation supports the likelihoods {lik.output_hessian_names()}, "
            f"got {likelihood!r}")


def network_targets(likelihood, n_outputs: int) -> int:
    """The target dimensions `d` whose network outputs are `n_outputs` wide, else a ValueError."""
    for d in range(1, n_outputs + 1):
        try:
            if likelihood.n_network_outputs(d) == n_outputs:
                return d
        except ValueError:
            break
    raise ValueError(f"A last Dense layer of {n_outputs} units does not emit the network "
                     f"outputs of {likelihood!r} for any number of targets")


def noise_network(model) -> Network:
    """The network over which the Gaussian noise's evidence counts its well-determined
    weights (`evidence.NoiseEvidence`): every Dense layer of an MLP whose layers were
    all trained, else the last layer (a conv net in front, or frozen features)."""
    trained = is_mlp(model) and all(v.trainable for v in model.weights)
    return Network(model, SubsetOfWeights.ALL if trained else SubsetOfWeights.LAST_LAYER)


class LaplacePosterior:
    """The Laplace posterior `N(theta_MAP, (GGN + alpha I)^-1)` of a trained network's
    Dense weights (see `tfbnn.inference.laplace` for the options and the maths).

    Use: set `model` and `likelihood` with `prepare`, then `fit_posterior(rows, alpha)`;
    afterwards `glm_predictive`, `draw_params`, `log_marginal_likelihood` and
    `posterior_covariance` work, and `save_posterior` / `restore_posterior` keep it.

    Fitted attributes: `theta_map_`, `prior_precision_`, `sigma_noise_` (the Gaussian
    noise scale per output; None for other likelihoods), `curvature_`,
    `log_likelihood_`, `n_data_`.
    """

    #: Whether `fit_posterior` writes the refined last layer and the tuned noise into
    #: `model` (a network the method trained itself); otherwise the model is left as it is.
    owns_model = False
    model = None
    likelihood = None

    def __init__(self, subset_of_weights: str = "last_layer", hessian_structure: str = "full",
                 prior_precision="marglik", pred_type: str = "glm", sigma_noise: str = "marglik",
                 max_memory_gb: float = 4.0, refine_map: bool = True):
        self.subset_of_weights = check_enum("subset_of_weights", subset_of_weights,
                                            SubsetOfWeights)
        self.hessian_structure = check_enum("hessian_structure", hessian_structure,
                                            HessianStructure)
        self.prior_precision = check_prior_precision(prior_precision)
        self.pred_type = check_enum("pred_type", pred_type, PredType)
        self.sigma_noise = check_enum("sigma_noise", sigma_noise, SigmaNoiseMethod)
        self.max_memory_gb = check_positive("max_memory_gb", max_memory_gb)
        self.refine_map = bool(refine_map)

    def posterior_config(self) -> dict:
        """The constructor's options as plain values."""
        return {
            "subset_of_weights": self.subset_of_weights.value,
            "hessian_structure": self.hessian_structure.value,
            "prior_precision": (self.prior_precision if isinstance(self.prior_precision, float)
                                else self.prior_precision.value),
            "pred_type": self.pred_type.value,
            "sigma_noise": self.sigma_noise.value,
            "max_memory_gb": self.max_memory_gb,
            "refine_map": self.refine_map,
        }

    # -- memory ---------------------------------------------------------------------------

    def check_memory(self, shapes, n_outputs: int, noise_shapes=None) -> int:
        """The estimated bytes for the Laplace layers `[(n_in + 1, n_out), ...]` (the
        last is the last layer) and, when the noise is tuned, the full GGN of the
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

    def check_model_memory(self, model, likelihood) -> int:
        """`check_memory` for the Laplace layers of `model` under `likelihood`."""
        net = Network(model, self.subset_of_weights)
        tunes = self.tunes_noise(likelihood, net.n_outputs)
        return self.check_memory(net.shapes, net.n_outputs,
                                 noise_network(model).shapes if tunes else None)

    def tunes_noise(self, likelihood, n_outputs: int) -> bool:
        """Whether the marginal likelihood tunes a learned Gaussian noise of one output."""
        return (self.sigma_noise == SigmaNoiseMethod.MARGLIK and n_outputs == 1
                and isinstance(likelihood, lik.Gaussian) and likelihood.trainable)

    # -- the network ------------------------------------------------------------------------

    def prepare(self, model, likelihood) -> None:
        """Takes `model` (trained) and `likelihood`, and checks that they fit together."""
        check_likelihood(likelihood)
        self.model, self.likelihood = model, likelihood
        self.network = Network(model, self.subset_of_weights)
        self.heads = self._own_heads()
        self.sigma_noise_ = self._noise_scale()
        self._rng = np.random.default_rng()

    def _own_heads(self) -> list:
        """The likelihood's heads, with the weights of the model's own (when it has them)."""
        net, k = self.network, self.network.n_outputs
        heads = self.likelihood.output_layers(network_targets(self.likelihood, k))
        if net.heads and [type(h) for h in net.heads] != [type(h) for h in heads]:
            raise ValueError(
                f"The layers after the last Dense layer {net.last.name!r}, "
                f"{[type(h).__name__ for h in net.heads]}, are not the heads of {self.likelihood!r}"
                f", {[type(h).__name__ for h in heads]}")
        apply_layers(heads, np.zeros((1, 1, k)))  # builds them
        for head, trained in zip(heads, net.heads):
            head.set_weights(trained.get_weights())
        if heads and not net.heads:
            # A learned noise the model does not hold: only the evidence can set it.
            if self.sigma_noise != SigmaNoiseMethod.MARGLIK or k != 1:
                raise ValueError(
                    f"{self.likelihood!r} learns a noise scale that model {self.model.name!r} "
                    "does not hold (no LearnedScale head); it can be tuned by the marginal "
                    "likelihood (sigma_noise='marglik') for one output only. Otherwise give a "
                    "fixed noise, e.g. tfbnn.likelihoods.Gaussian(scale=0.1)")
        return heads

    def _noise_raws(self) -> list:
        # The heads come from `likelihood.output_layers`: their LearnedScale holds the noise.
        return [h.raw_scale for h in self.heads if isinstance(h, LearnedScale)]

    def _noise_scale(self):
        """`(k,)` float64 Gaussian noise scale as the heads hold it; None if not Gaussian."""
        if not isinstance(self.likelihood, lik.Gaussian):
            return None
        k, raws = self.network.n_outputs, self._noise_raws()
        if not raws:
            return self.likelihood.scale * np.ones(k)
        return self.likelihood.noise_scale(tf.cast(raws[0], tf.float64)).numpy() * np.ones(k)

    def _store_noise(self, scale) -> None:
        """Writes a tuned noise scale into the heads (and an owned model's noise weight)
        and reads it back as they hold it (float32)."""
        raws = self._noise_raws()
        if self.owns_model:
            raws += self.likelihood.noise_variables(self.model)
        for raw in raws:
            raw.assign(np.asarray(self.likelihood.noise_raw(scale), raw.dtype))
        self.sigma_noise_ = self._noise_scale()

    # -- fitting -----------------------------------------------------------------------------

    def fit_posterior(self, rows: Rows, alpha: float) -> None:
        """Fits the posterior around the model's current weights (its MAP, when
        `refine_map` refits the last layer) to the training `rows`, starting the prior
        precision at `alpha`."""
        net = self.network
        if not (net.last_layer_only or self.owns_model):
            raise ValueError("subset_of_weights='all' needs a network the method trained")
        net.check_outputs(next(rows.blocks(64))[0])
        theta = net.weights()
        tune = self.prior_precision == PriorPrecisionMethod.MARGLIK
        # Refitting the last layer takes many passes: over its features, kept in memory.
        cached = net.feature_rows(rows) if self.refine_map else rows
        noise = None
        if self.tunes_noise(self.likelihood, net.n_outputs):
            noise = self._noise_evidence(rows, cached, alpha, tune)
        alpha = self._fit_last_layer(cached, theta, alpha, tune, noise)
        if noise is not None:
            self._store_noise(noise.scale)
        curvature, log_lik, n_data = net.curvature(
            STRUCTURES[self.hessian_structure], self.likelihood, self.sigma_noise_,
            cached if net.last_layer_only else rows, theta)
        if tune:
            # The norm of the MAP's weights: none along the curvature's null space.
            alpha = evidence.tune_prior_precision(curvature.eigenvalues(),
                                                  curvature.determined_sq_norm(theta), alpha)
        self.theta_map_, self.prior_precision_ = theta, float(alpha)
        self.curvature_, self.log_likelihood_, self.n_data_ = curvature, float(log_lik), n_data

    def _noise_evidence(self, rows, cached, alpha: float, tune: bool) -> evidence.NoiseEvidence:
        """What the noise's marginal likelihood needs from the network: the eigenvalues
        of `J^T J` (the full GGN at unit noise) over its weights and the squared norm of
        those outside the last layer."""
        net = noise_network(self.model)
        if net.last_layer_only or self.subset_of_weights == SubsetOfWeights.ALL:
            net = self.network  # the same layers, already traced
        weights = net.weights()
        hidden = weights[: weights.size - np.prod(net.last_shape)]
        eigenvalues = net.unit_noise_eigenvalues(cached if net.last_layer_only else rows)
        return evidence.NoiseEvidence(eigenvalues, float(hidden @ hidden), alpha, tune,
                                      self.sigma_noise_.copy(), self.likelihood.min_scale)

    def _fit_last_layer(self, cached, theta, alpha, tune, noise):
        """Refits the last layer in `theta` (in place); returns `alpha`."""
        net = self.network
        last = slice(theta.size - np.prod(net.last_shape), theta.size)
        if self.refine_map:
            # With only the last layer Bayesian, the precision is tuned jointly with its
            # MAP, so the fixed point maximises the evidence of the refitted model.
            glm = evidence.LastLayerGLM(cached.x, cached.y, self.likelihood, net.last_shape,
                                        net.block_rows(int(np.prod(net.last_shape))))
            theta[last], alpha = evidence.refit_last_layer(
                glm, theta[last], alpha, self.sigma_noise_, noise=noise,
                tune=tune and net.last_layer_only,
                network_alpha=noise is not None and tune and not net.last_layer_only)
            if self.owns_model:
                w = theta[last].reshape(net.last_shape)
                net.last.kernel.assign(w[:-1].astype(np.float32))
                net.last.bias.assign(w[-1].astype(np.float32))
        elif noise is not None:  # at the trained weights, as laplace-torch does
            noise.update(theta[last], *net.residual_statistics(cached, theta[last]))
            alpha = noise.alpha
        return alpha

    # -- the posterior ------------------------------------------------------------------------

    def log_marginal_likelihood(self, prior_precision=None) -> float:
        """The Laplace log marginal likelihood at the MAP, for `prior_precision`
        (default: the fitted one)."""
        alpha = self.prior_precision_ if prior_precision is None else float(prior_precision)
        return evidence.log_marginal_likelihood(self.log_likelihood_,
                                                self.curvature_.determined_sq_norm(self.theta_map_),
                                                self.curvature_.eigenvalues(), alpha)

    def posterior_covariance(self) -> np.ndarray:
        """The dense `(P, P)` posterior covariance of the Bayesian weights (small models)."""
        need = 8 * 2 * self.network.n_params**2
        if need > self.max_memory_gb * 1e9:
            raise ValueError(
                f"The dense posterior covariance of {self.network.n_params} weights needs about "
                f"{need / 1e9:.3g} GB, more than max_memory_gb={self.max_memory_gb:g}")
        return self.curvature_.covariance(self.prior_precision_)

    def glm_predictive(self, x, full_cov: bool = False, include_noise: bool = False):
        """The linearised (GLM) predictive of the network outputs at `x`.

        Returns `(mean, var)`: `f_MAP(x)` `(B, k)` and the diagonal of `J Sigma J^T`
        `(B, k)` (or the full `(B, k, k)` with `full_cov`). For a Gaussian likelihood
        `include_noise` adds the noise variance: the predictive of `y` itself.
        """
        means, covs = [], []
        for _, f, acts, jz in self.network.blocks(Rows(x), self.theta_map_,
                                                  n_params=self.network.n_params):
            means.append(f)
            covs.append(self.curvature_.output_cov(acts, jz, self.prior_precision_))
        mean, cov = np.concatenate(means), np.concatenate(covs)
        if include_noise:
            if self.sigma_noise_ is None:
                raise ValueError(f"include_noise needs a Gaussian likelihood, not {self.likelihood!r}")
            cov = cov + np.diag(self.sigma_noise_**2)
        return mean, (cov if full_cov else np.diagonal(cov, axis1=-2, axis2=-1).copy())

    def draw_params(self, x, n_samples: int, seed=None) -> tf.Tensor:
        """`(S, B, n_params)` likelihood parameters from `S` posterior draws at `x`."""
        rng = self._rng if seed is None else np.random.default_rng(seed)
        net = self.network
        if self.pred_type == PredType.GLM:
            mean, cov = self.glm_predictive(x, full_cov=True)
            values, vectors = np.linalg.eigh(cov)
            root = vectors * np.sqrt(np.clip(values, 0.0, None))[:, None, :]
            z = rng.standard_normal((n_samples, *mean.shape))
            return apply_layers(self.heads, mean[None] + np.einsum("bjl,sbl->sbj", root, z))
        z = rng.standard_normal((n_samples, net.n_params))
        draws = self.theta_map_ + self.curvature_.sample(z, self.prior_precision_)
        if net.last_layer_only:  # the outputs are linear in the last layer's weights
            phi = np.concatenate([a for _, _, (a,), _ in net.blocks(Rows(x), self.theta_map_)])
            f = np.einsum("bi,sio->sbo", phi, draws.reshape(n_samples, *net.last_shape))
            return apply_layers(self.heads, f)
        thetas = np.tile(FunctionalModel(self.model).get_params().numpy(), (n_samples, 1))
        thetas[:, net.slice] = draws
        return map_params(self.model, thetas, x)

    # -- persistence --------------------------------------------------------------------------

    def save_posterior(self, directory: Path) -> None:
        """Writes the fitted arrays to `directory / POSTERIOR_FILE` (NumPy, no pickle)."""
        arrays = {f"curvature_{k}": v for k, v in self.curvature_.arrays().items()}
        arrays.update({f"head_{i}_{j}": w for i, h in enumerate(self.heads)
                       for j, w in enumerate(h.get_weights())})
        np.savez(
            Path(directory) / POSTERIOR_FILE,
            theta_map=self.theta_map_,
            prior_precision=np.float64(self.prior_precision_),
            log_likelihood=np.float64(self.log_likelihood_),
            n_data=np.int64(self.n_data_),
            **arrays,
        )

    def restore_posterior(self, directory: Path) -> None:
        """Reads what `save_posterior` wrote (after `prepare` with the saved model)."""
        with np.load(Path(directory) / POSTERIOR_FILE, allow_pickle=False) as data:
            arrays = {k.removeprefix("curvature_"): data[k] for k in data.files
                      if k.startswith("curvature_")}
            self.theta_map_ = np.asarray(data["theta_map"], np.float64)
            self.prior_precision_ = float(data["prior_precision"])
            self.log_likelihood_ = float(data["log_likelihood"])
            self.n_data_ = int(data["n_data"])
            for i, head in enumerate(self.heads):
                keys = [f"head_{i}_{j}" for j in range(len(head.weights))]
                if all(key in data.files for key in keys):  # older files: the model's heads
                    head.set_weights([data[key] for key in keys])
        self.sigma_noise_ = self._noise_scale()
        if self.theta_map_.shape != (self.network.n_params,):
            raise ValueError(
                f"{POSTERIOR_FILE} holds {self.theta_map_.size} weights, the model's Laplace "
                f"subset has {self.network.n_params}")
        self.curvature_ = STRUCTURES[self.hessian_structure].from_arrays(self.network.shapes,
                                                                         arrays)
