"""The Laplace approximation: a Gaussian posterior around a trained MAP network.

`fit` trains a deterministic MLP to the maximum a posteriori (MAP) weights, with
the Normal prior as weight decay, and then approximates the posterior of the
chosen weights by `N(theta_MAP, (GGN + alpha I)^-1)`, where the generalised
Gauss-Newton matrix `GGN` stands in for the Hessian of the negative
log-likelihood (see `tfbnn.inference.curvature`) and the prior precision `alpha`
is tuned by maximising the Laplace marginal likelihood. Predictions come from the
linearised network (the GLM predictive, Immer et al., 2021) or from weight
samples pushed through the network.

Supported likelihoods: Gaussian (fixed or learned noise), Poisson, Bernoulli and
Categorical. A learned Gaussian noise scale is, by default, tuned by the marginal
likelihood too (`sigma_noise`): the scale learned with the MAP network fits its own
training residuals and makes the predictive over-confident.

#### Mathematical details

With `lambda_i` the eigenvalues of the GGN over the `P` Bayesian weights, the
Laplace log marginal likelihood is

    log p(y) ~ log p(y | theta) - alpha/2 ||theta||^2 + P/2 log(alpha)
               - 1/2 sum_i log(lambda_i + alpha),

exact for a linear model with Gaussian noise when `theta` is the MAP under
`alpha` (MacKay, 1992). For a learned Gaussian noise `sigma^2` the GGN is
`J^T J / sigma^2`, and the evidence is stationary where

    alpha = gamma / ||theta||^2,   sigma^2 = ||r||^2 / (N - gamma),
    gamma = sum_i lambda_i / (lambda_i + alpha),

`gamma` counting the well-determined weights and `r` the training residuals. The
noise is a hyperparameter of the whole network: every trained weight has helped to
shrink `r`, so `fit` counts `gamma` over all weights (the full GGN, with its own
`alpha`) whichever subset is Bayesian; with only the last layer Bayesian the
last layer's `alpha` is then tuned at that noise.

Given its input features the last layer is a generalised linear model, so after
training `fit` solves its MAP exactly by Newton's method (`refine_map`). It
alternates that with the noise update and, with only the last layer Bayesian, the
precision update until all settle; at that fixed point `alpha` (and `sigma`)
maximise the marginal likelihood itself (for Bayesian linear regression, the
exact evidence). With all weights Bayesian (as in laplace-torch) the precision is
tuned at the fixed MAP of the trained network.

#### References

MacKay, D. J. C. (1992). A practical Bayesian framework for backpropagation
networks. *Neural Computation*, 4(3).

Ritter, H., Botev, A. & Barber, D. (2018). A scalable Laplace approximation for
neural networks. *ICLR*.

Immer, A., Korzepa, M. & Bauer, M. (2021). Improving predictions of Bayesian
neural nets via local linearization. *AISTATS*.

Daxberger, E., Kristiadi, A., Immer, A., Eschenhagen, R., Bauer, M. & Hennig, P.
(2021). Laplace Redux - effortless Bayesian deep learning. *NeurIPS*.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import numbers
import warnings
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfbnn import likelihoods as lik
from tfbnn import models, priors
from tfbnn._options import check_option
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
from tfbnn.inference.curvature import (
    BLOCK_FLOATS,
    STRUCTURES,
    FullCurvature,
    GaussianTerms,
    memory_bytes,
    output_terms,
    tune_noise_variance,
    tune_prior_precision,
)
from tfbnn.training import train

POSTERIOR_FILE = "laplace.npz"
#: Rounds of (MAP refit, precision update) before giving up on a fixed point.
MAX_EVIDENCE_ROUNDS = 100


class SubsetOfWeights(enum.StrEnum):
    """Which weights get a posterior; the others stay at their MAP values."""

    LAST_LAYER = "last_layer"
    """The last dense layer's kernel and bias: cheap, and exact Bayesian linear
    regression on the learned features."""
    ALL = "all"
    """Every dense layer's kernel and bias."""


class HessianStructure(enum.StrEnum):
    """How the generalised Gauss-Newton curvature is stored."""

    FULL = "full"
    """One dense `P x P` matrix: exact, `P^2` memory."""
    DIAG = "diag"
    """Its diagonal: `P` memory, ignores all correlations between weights."""
    KRON = "kron"
    """One Kronecker product `A (x) B` per layer (KFAC): keeps the correlations
    within a layer at the memory of its input and output widths squared."""


class PredType(enum.StrEnum):
    """How predictive draws are made."""

    GLM = "glm"
    """Linearise the network at the MAP: outputs `f ~ N(f_MAP(x), J Sigma J^T)`
    (exact Gaussian for regression; logits sampled from it for classification)."""
    NN = "nn"
    """Sample weights from the posterior and run the network on each draw."""


class PriorPrecisionMethod(enum.StrEnum):
    """How the prior precision is set when not given as a number."""

    MARGLIK = "marglik"
    """Maximise the Laplace marginal likelihood (the evidence) over the precision."""
    PRIOR = "prior"
    """Use the prior's `1 / scale^2` as it is."""


class SigmaNoiseMethod(enum.StrEnum):
    """How a learned Gaussian noise scale is set (a fixed one is always kept)."""

    MARGLIK = "marglik"
    """Maximise the Laplace marginal likelihood over the noise, jointly with the
    prior precision: MacKay's `sigma^2 = ||r||^2 / (N - gamma)`, counting the
    well-determined weights `gamma` over the whole network with its full GGN. Used
    by the posterior and the predictive. For one target dimension; with several,
    the trained scales are kept."""
    MAP = "map"
    """Keep the scale learned with the MAP network (it fits the training residuals,
    which an over-fitted network has made too small)."""


def _values(enum_cls):
    return [member.value for member in enum_cls]


def _check_prior_precision(value):
    if isinstance(value, str):
        return check_option("prior_precision", value, _values(PriorPrecisionMethod))
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if math.isfinite(value) and value > 0:
            return float(value)
    raise ValueError(
        f"prior_precision must be one of {_values(PriorPrecisionMethod)} or a positive "
        f"number, got {value!r}"
    )


def layer_shapes(n_features, hidden_units, n_outputs, subset) -> list[tuple[int, int]]:
    """`(n_in + 1, n_out)` of the dense layers in the Laplace subset of an `mlp`."""
    widths = [int(n_features), *models.check_hidden_units(hidden_units), int(n_outputs)]
    shapes = [(a + 1, b) for a, b in zip(widths[:-1], widths[1:])]
    return shapes[-1:] if subset == SubsetOfWeights.LAST_LAYER else shapes


@dataclasses.dataclass
class _NoiseEvidence:
    """The whole network's share of the noise's marginal likelihood (see `_network_evidence`)."""

    eigenvalues: np.ndarray
    hidden_sq_norm: float
    alpha: float
    tune: bool


class _Network:
    """The MLP as the curvature code needs it: the Bayesian dense layers, where their
    weights sit in the flat parameter vector, the output heads, and a compiled
    function returning layer inputs and output Jacobians."""

    def __init__(self, model, subset):
        self.model = model
        self.dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
        self.heads = model.layers[model.layers.index(self.dense[-1]) + 1 :]
        self.first = len(self.dense) - 1 if subset == SubsetOfWeights.LAST_LAYER else 0
        layers = self.dense[self.first :]
        self.shapes = [(int(d.kernel.shape[0]) + 1, int(d.kernel.shape[1])) for d in layers]
        self.n_outputs = int(self.dense[-1].units)
        self.n_params = sum(a * b for a, b in self.shapes)
        # The subset's variables are consecutive (kernel, bias per layer) in the
        # FunctionalModel's parameter vector, in exactly the row-major layout of
        # `[kernel; bias]` that the curvature uses.
        variables = list(model.trainable_variables)
        wanted = [v for d in layers for v in (d.kernel, d.bias)]
        index = next(i for i, v in enumerate(variables) if v is wanted[0])
        if any(variables[index + i] is not v for i, v in enumerate(wanted)):
            raise ValueError("The Laplace layers' weights are not contiguous in the model")
        start = sum(int(np.prod(v.shape)) for v in variables[:index])
        self.slice = slice(start, start + self.n_params)
        signature = [tf.TensorSpec((None, int(self.dense[0].kernel.shape[0])), tf.float32)]
        self._jacobians = tf.function(self._jacobians_fn, input_signature=signature)
        self._outputs = tf.function(self._outputs_fn, input_signature=signature)

    def _forward(self, x, tape=None):
        """`(f, inputs of the subset layers, pre-activation perturbations)`."""
        h, acts, eps = x, [], []
        for i, layer in enumerate(self.dense):
            if i >= self.first:
                acts.append(h)
            z = tf.matmul(h, layer.kernel.value) + layer.bias.value
            if tape is not None and self.first <= i < len(self.dense) - 1:
                e = tf.zeros_like(z)
                tape.watch(e)
                eps.append(e)
                z = z + e
            h = layer.activation(z)
        ones = tf.ones_like(x[:, :1])
        return h, [tf.concat([a, ones], axis=-1) for a in acts], eps

    def _outputs_fn(self, x):
        f, acts, _ = self._forward(x)
        return f, acts

    def _jacobians_fn(self, x):
        with tf.GradientTape() as tape:
            f, acts, eps = self._forward(x, tape)
            total = tf.reduce_sum(f, axis=0)
        jz = [tf.transpose(j, (1, 0, 2)) for j in tape.jacobian(total, eps)] if eps else []
        return f, acts, jz

    def jacobians(self, x):
        """float64 `(f (B, k), acts [(B, n_in + 1)], jz [(B, k, n_out) or None])`; the
        last layer's Jacobian is the identity, None."""
        x = tf.convert_to_tensor(x, tf.float32)
        if self.first == len(self.dense) - 1:
            f, acts = self._outputs(x)
            jz = []
        else:
            f, acts, jz = self._jacobians(x)
            jz = [j.numpy().astype(np.float64) for j in jz]
        acts = [a.numpy().astype(np.float64) for a in acts]
        return f.numpy().astype(np.float64), acts, [*jz, None]

    def apply_heads(self, f):
        """Network outputs `(S, B, k)` -> likelihood parameters `(S, B, n_params)`."""
        s, b, k = f.shape
        out = tf.constant(f.reshape(s * b, k), tf.float32)
        for layer in self.heads:
            out = layer(out)
        return tf.reshape(out, (s, b, -1))


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
    `tfbnn.inference.curvature.Curvature`), `n_data_`, `model` (the Keras MAP network).

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
        self.subset_of_weights = SubsetOfWeights(
            check_option("subset_of_weights", subset_of_weights, _values(SubsetOfWeights)))
        self.hessian_structure = HessianStructure(
            check_option("hessian_structure", hessian_structure, _values(HessianStructure)))
        self.prior_precision = _check_prior_precision(prior_precision)
        self.pred_type = PredType(check_option("pred_type", pred_type, _values(PredType)))
        self.sigma_noise = SigmaNoiseMethod(
            check_option("sigma_noise", sigma_noise, _values(SigmaNoiseMethod)))
        if isinstance(max_memory_gb, bool) or not isinstance(max_memory_gb, numbers.Real) or not (
                math.isfinite(max_memory_gb) and max_memory_gb > 0):
            raise ValueError(f"max_memory_gb must be a positive number, got {max_memory_gb!r}")
        self.max_memory_gb = float(max_memory_gb)
        self.refine_map = bool(refine_map)
        self.jit_compile = bool(jit_compile)
        self.model = None
        self.likelihood = None

    def get_config(self):
        return {
            "subset_of_weights": self.subset_of_weights.value,
            "hessian_structure": self.hessian_structure.value,
            "prior_precision": (self.prior_precision if isinstance(self.prior_precision, float)
                                else str(self.prior_precision)),
            "pred_type": self.pred_type.value,
            "sigma_noise": self.sigma_noise.value,
            "max_memory_gb": self.max_memory_gb,
            "refine_map": self.refine_map,
            "jit_compile": self.jit_compile,
        }

    # -- fitting ----------------------------------------------------------------------

    def _training_precision(self, prior) -> float:
        prior = priors.get(prior)
        if type(prior) is not priors.Normal:
            raise ValueError(
                "The Laplace approximation needs a Normal prior (its precision 1/scale^2 is "
                f"the MAP network's weight decay and the posterior's prior precision); got {prior!r}"
            )
        if prior.loc != 0.0:
            raise ValueError(f"The Laplace approximation needs a zero-mean Normal prior, got {prior!r}")
        if isinstance(self.prior_precision, float):
            return self.prior_precision
        return 1.0 / prior.scale**2

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

    def fit(self, x, y, likelihood, settings: FitSettings):
        output_terms(likelihood)  # refuses unsupported likelihoods before any training
        alpha = self._training_precision(settings.prior)
        x, y = np.asarray(x, np.float32), np.asarray(y, np.float32)
        n_outputs = likelihood.n_network_outputs(y.shape[1])
        self.check_memory(
            layer_shapes(x.shape[1], settings.hidden_units, n_outputs, self.subset_of_weights),
            n_outputs,
            layer_shapes(x.shape[1], settings.hidden_units, n_outputs, SubsetOfWeights.ALL)
            if self._tunes_noise(likelihood, n_outputs) else None,
        )
        x_train, y_train, validation = validation_split(x, y, settings)
        # Mean NLL + alpha/(2N) ||w||^2 is the negative log posterior divided by N.
        decay = keras.regularizers.L2(alpha / (2.0 * len(x_train)))
        model = models.mlp(
            x.shape[1],
            n_outputs,
            hidden_units=settings.hidden_units,
            activation=settings.activation,
            output_layers=likelihood.output_layers(y.shape[1]),
            name="laplace_mlp",
            seed=settings.seed,
            kernel_regularizer=decay,
            bias_regularizer=decay,
        )
        history = train(model, likelihood, x_train, y_train, validation_data=validation,
                        patience=settings.patience, **train_options(settings, self.jit_compile))
        self.model, self.likelihood = model, likelihood
        self._setup()
        self._fit_posterior(x_train, y_train.astype(np.float64), alpha)
        return history.as_dict()

    def _tunes_noise(self, likelihood, n_outputs: int) -> bool:
        return (self.sigma_noise == SigmaNoiseMethod.MARGLIK and type(likelihood) is lik.Gaussian
                and likelihood.trainable and n_outputs == 1)

    def _setup(self):
        self._net = _Network(self.model, self.subset_of_weights)
        self._functional = FunctionalModel(self.model)
        self._read_noise()
        self._rng = np.random.default_rng()
        self._map = None

    def _read_noise(self):
        """The likelihood's output terms, with a learned noise scale as the model holds it."""
        noise = None
        if type(self.likelihood) is lik.Gaussian and self.likelihood.trainable:
            raw = np.asarray(self._net.heads[0].raw_scale.numpy(), np.float64)
            noise = np.logaddexp(0.0, raw) + self.likelihood.min_scale
        self._terms = output_terms(self.likelihood, noise)
        self.sigma_noise_ = (self._terms.scale * np.ones(self._net.n_outputs)
                             if isinstance(self._terms, GaussianTerms) else None)

    def _set_noise(self, variance: float):
        """Uses the noise scale `sqrt(variance)` from now on (above the likelihood's floor)."""
        floor = self.likelihood.min_scale
        scale = max(math.sqrt(variance), floor + 1e-6 * (floor or 1.0))
        self._terms = GaussianTerms(np.full(self._net.n_outputs, scale))

    def _store_noise(self):
        """Writes the tuned noise scale into the model's `LearnedScale` (so the predictive,
        `save` and `load` use it) and reads it back as the model holds it (float32)."""
        excess = self._terms.scale - self.likelihood.min_scale
        raw = excess + np.log(-np.expm1(-excess))  # the inverse of softplus
        head = self._net.heads[0]
        head.raw_scale.assign(np.asarray(raw, head.raw_scale.dtype))
        self._read_noise()

    @property
    def _last_shape(self):
        return self._net.shapes[-1]

    @property
    def _last_layer_only(self):
        return self._net.first == len(self._net.dense) - 1

    def _block_rows(self, n_params=None, net=None):
        net = net or self._net
        widest = max(max(a, b) for a, b in net.shapes)
        per_row = net.n_outputs * max(widest, n_params or 0) + sum(a for a, _ in net.shapes)
        return max(1, BLOCK_FLOATS // per_row)

    def _features(self, x):
        """float64 inputs (with ones) of the last layer, `(N, H + 1)`."""
        rows = self._block_rows()
        return np.concatenate([
            self._net._outputs(tf.constant(x[i : i + rows]))[1][-1].numpy().astype(np.float64)
            for i in range(0, len(x), rows)])

    def _blocks(self, x, theta, phi=None, n_params=None):
        """Yields `(rows, f, acts, jz)` over row blocks of `x` (float64)."""
        rows = self._block_rows(n_params)
        for start in range(0, len(x), rows):
            sl = slice(start, start + rows)
            if self._last_layer_only:
                a = self._features(x[sl]) if phi is None else phi[sl]
                yield sl, a @ theta.reshape(self._net.shapes[0]), [a], [None]
            else:
                yield (sl, *self._net.jacobians(x[sl]))

    def _curvature(self, x, y, theta, phi=None):
        curvature = STRUCTURES[self.hessian_structure](self._net.shapes)
        nll = 0.0
        for sl, f, acts, jz in self._blocks(x, theta, phi, curvature.n_params):
            curvature.accumulate(acts, jz, self._terms.hessian_sqrt(f))
            nll += self._terms.nll(f, y[sl])
        return curvature.finalize(len(x)), -nll

    def _last_layer_ggn(self, phi, f) -> FullCurvature:
        ggn = FullCurvature([self._last_shape])
        rows = self._block_rows(ggn.n_params)
        for i in range(0, len(phi), rows):
            ggn.accumulate([phi[i : i + rows]], [None], self._terms.hessian_sqrt(f[i : i + rows]))
        return ggn

    def _network_evidence(self, x, alpha: float, tune: bool) -> _NoiseEvidence:
        """What the noise's marginal likelihood needs from the whole network: the
        eigenvalues of `J^T J` over every dense weight (the full GGN at unit noise)
        and the squared norm of the weights outside the last layer."""
        net = (self._net if self.subset_of_weights == SubsetOfWeights.ALL
               else _Network(self.model, SubsetOfWeights.ALL))
        ggn = FullCurvature(net.shapes)
        unit = GaussianTerms(np.ones(net.n_outputs))
        rows = self._block_rows(ggn.n_params, net)
        for start in range(0, len(x), rows):
            f, acts, jz = net.jacobians(x[start : start + rows])
            ggn.accumulate(acts, jz, unit.hessian_sqrt(f))
        eigenvalues = np.linalg.eigvalsh(0.5 * (ggn.ggn + ggn.ggn.T))  # no eigenvectors needed
        weights = self._functional.get_params().numpy()[net.slice].astype(np.float64)
        hidden = weights[: weights.size - self._last_shape[0] * self._last_shape[1]]
        return _NoiseEvidence(np.clip(eigenvalues, 0.0, None), float(hidden @ hidden), alpha, tune)

    def _tune_noise(self, noise: _NoiseEvidence, w, residual) -> bool:
        """Moves the noise (and the network's precision, `noise.alpha`) to the evidence
        maximiser at the last layer's weights `w`; returns whether the noise settled."""
        old = float(self._terms.scale[0]) ** 2
        noise.alpha, variance = tune_noise_variance(
            noise.eigenvalues, noise.hidden_sq_norm + float(np.sum(w**2)),
            float(np.sum(residual**2)), len(residual), noise.alpha, old, tune_prior=noise.tune)
        self._set_noise(variance)
        return abs(math.log(float(self._terms.scale[0]) ** 2 / old)) < 1e-9

    def _refit_last_layer(self, phi, y, theta, alpha, tune: bool, noise=None):
        """The exact MAP of the last layer given its input features `phi` (a convex
        problem), by damped Newton steps; with `tune`, each step also moves the prior
        precision to the evidence maximiser at the current weights, so the two settle
        together at the MAP under the evidence-maximising precision (MacKay, 1992).
        With `noise` (a `_NoiseEvidence`) the Gaussian noise is moved the same way,
        and with all weights Bayesian and a tuned precision the step uses the
        network's precision `noise.alpha`.

        Returns the weights and the precision.
        """
        shape = self._last_shape
        w = theta.reshape(shape).copy()

        def objective(w, alpha):
            return self._terms.nll(phi @ w, y) + 0.5 * alpha * np.sum(w**2)

        steps = MAX_EVIDENCE_ROUNDS if tune or noise is not None else 50
        for _ in range(steps):
            f = phi @ w
            settled = True
            if noise is not None:
                settled = self._tune_noise(noise, w, y - f)
                if noise.tune and not self._last_layer_only:
                    settled = settled and abs(math.log(noise.alpha / alpha)) < 1e-9
                    alpha = noise.alpha
            ggn = self._last_layer_ggn(phi, f)
            if tune:
                new = tune_prior_precision(np.linalg.eigvalsh(ggn.ggn), float(np.sum(w**2)), alpha)
                settled, alpha = settled and abs(math.log(new / alpha)) < 1e-9, new
            grad = (phi.T @ self._terms.residual(f, y) + alpha * w).ravel()
            step = np.linalg.solve(ggn.ggn + alpha * np.eye(w.size), grad).reshape(shape)
            decrement = float(grad @ step.ravel())
            value = objective(w, alpha)
            if decrement <= 1e-13 * (1.0 + abs(value)) and settled:
                return w.ravel(), alpha
            t = 1.0
            while objective(w - t * step, alpha) > value - 1e-4 * t * decrement and t > 1e-10:
                t *= 0.5
            w = w - t * step
        what = "".join([" and prior precision" if tune else "", " and noise" if noise else ""])
        warnings.warn(
            f"The last layer's MAP{what} did not settle in {steps} Newton steps (prior "
            f"precision {alpha:.6g})", stacklevel=4)
        return w.ravel(), alpha

    def _fit_posterior(self, x, y, alpha):
        params = self._functional.get_params().numpy()
        theta = params[self._net.slice].astype(np.float64)
        tune = self.prior_precision == PriorPrecisionMethod.MARGLIK
        noise = (self._network_evidence(x, alpha, tune)
                 if self._tunes_noise(self.likelihood, self._net.n_outputs) else None)
        phi = (self._features(x) if self.refine_map or self._last_layer_only or noise is not None
               else None)
        last = slice(theta.size - self._last_shape[0] * self._last_shape[1], theta.size)
        if self.refine_map:
            # With only the last layer Bayesian, the precision is tuned jointly with its
            # MAP, so the fixed point maximises the evidence of the refitted model.
            theta[last], alpha = self._refit_last_layer(
                phi, y, theta[last], alpha, tune and self._last_layer_only, noise)
            params[self._net.slice] = theta
            self._functional.set_params(tf.constant(params, tf.float32))
        elif noise is not None:  # at the trained weights, as laplace-torch does
            w = theta[last].reshape(self._last_shape)
            self._tune_noise(noise, w, y - phi @ w)
            alpha = noise.alpha
        if noise is not None:
            self._store_noise()
        curvature, log_lik = self._curvature(x, y, theta, phi)
        if tune:
            alpha = tune_prior_precision(curvature.eigenvalues(), float(theta @ theta), alpha)
        self.theta_map_, self.prior_precision_ = theta, float(alpha)
        self.curvature_, self.log_likelihood_, self.n_data_ = curvature, float(log_lik), len(x)

    # -- the posterior ------------------------------------------------------------------

    def log_marginal_likelihood(self, prior_precision=None) -> float:
        """The Laplace log marginal likelihood at the MAP, for `prior_precision`
        (default: the fitted one)."""
        alpha = self.prior_precision_ if prior_precision is None else float(prior_precision)
        lam = self.curvature_.eigenvalues()
        theta = self.theta_map_
        return float(self.log_likelihood_ - 0.5 * alpha * theta @ theta
                     + 0.5 * lam.size * math.log(alpha) - 0.5 * np.sum(np.log(lam + alpha)))

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
        for _, f, acts, jz in self._blocks(np.asarray(x, np.float32), self.theta_map_,
                                            n_params=self._net.n_params):
            means.append(f)
            covs.append(self.curvature_.output_cov(acts, jz, self.prior_precision_))
        mean, cov = np.concatenate(means), np.concatenate(covs)
        if include_noise:
            if type(self.likelihood) is not lik.Gaussian:
                raise ValueError(f"include_noise needs a Gaussian likelihood, not {self.likelihood!r}")
            cov = cov + np.diag(self._terms.scale**2 * np.ones(mean.shape[-1]))
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
