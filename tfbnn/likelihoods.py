"""Likelihoods: how a network's raw outputs become a distribution over targets.

A likelihood is stateless configuration. Anything it learns (a homoscedastic noise
scale) lives in the Keras model as a `tfbnn.layers.LearnedScale` layer that the
likelihood asks to be appended, so `model.fit`, saving and every posterior method
see it as an ordinary weight.

Shapes: for `d` target dimensions the network emits `params` of shape
`(..., likelihood.n_params(d))`; `distribution(params)` has batch shape `(..., d)`
(`(...)` for `Categorical`), and `log_prob(y, params)` sums over the target
dimensions, giving one value per example. Targets are `(..., B, d)`, or `(..., B)`
for one target dimension (class labels with or without a column); shapes that
cannot be meant together raise a ValueError naming both (see `tfbnn.shapes`).
Half-precision parameters (mixed precision) are computed in float32.

Curvature methods (the Laplace approximation) also need each likelihood's maths in
the network outputs `f` (before any head), in float64 NumPy: `output_nll`,
`output_residual` and `output_hessian_sqrt`. The likelihoods with a closed-form,
positive semi-definite output Hessian implement them (`has_output_hessian`); the
others refuse.

#### Mathematical details

With `Lambda(f) = d^2 (-log p(y | f)) / df^2`, the generalised Gauss-Newton
matrix of a network with output Jacobian `J_n` is `sum_n J_n^T Lambda(f_n) J_n`
(Martens, 2020). Here `Lambda` is `diag(1 / sigma^2)` for Gaussian noise,
`diag(exp(f))` for Poisson log rates, `diag(p (1 - p))` for Bernoulli logits and
`diag(p) - p p^T` for Categorical logits, none depending on `y`.

#### References

Martens, J. (2020). New insights and perspectives on the natural gradient
method. *JMLR*, 21(146).
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from scipy.special import gammaln, log_softmax, softmax

from tfbnn.layers.heads import LearnedScale, raw_for_scale
from tfbnn.registry import ConfigObject, Registry
from tfbnn.shapes import with_target_axis
from tfbnn.validation import check_int, check_non_negative, check_positive

tfd = tfp.distributions

LIKELIHOODS = Registry("likelihood")


class Likelihood(ConfigObject):
    """Base class. Subclasses implement `n_network_outputs`, `distribution`, `get_config`."""

    #: Targets are class labels (integers 0..K-1, or 0/1).
    is_classification = False
    #: Targets are integers (quantiles are rounded up to the support).
    is_discrete = False
    #: Whether `output_nll`, `output_residual` and `output_hessian_sqrt` exist: a
    #: closed-form, positive semi-definite Hessian of `-log p(y | f)` in the outputs `f`.
    has_output_hessian = False

    def n_network_outputs(self, n_targets: int) -> int:
        """Width of the last Dense layer for `n_targets` target dimensions."""
        raise NotImplementedError

    def output_layers(self, n_targets: int) -> list:
        """Keras layers appended after the last Dense layer (e.g. a learned noise scale)."""
        return []

    def n_params(self, n_targets: int) -> int:
        """Width of `params` as the model finally emits it."""
        return self.n_network_outputs(n_targets)

    def distribution(self, params) -> tfd.Distribution:
        raise NotImplementedError

    def noise_variables(self, model) -> list:
        """The weights of `model` that hold this likelihood's learned noise (none here).

        Samplers give them their own prior (see `noise_scale`), curvature methods tune them.
        """
        return []

    def n_targets(self, n_params: int) -> int:
        """The number of target dimensions `d` that `params` of width `n_params` stand for
        (the inverse of `n_params`)."""
        return n_params

    def log_prob(self, y, params) -> tf.Tensor:
        """Log-likelihood of each example, summed over target dimensions.

        Args:
            y: targets `(..., B, d)`; with one target dimension also `(..., B)`
                (class labels: `(..., B)` or `(..., B, 1)`).
            params: `(..., B, k)` likelihood parameters, `k = n_params(d)`; leading
                sample axes broadcast against those of `y`, which may leave them out.
                Half-precision parameters (mixed precision) are computed in float32.

        Returns:
            `(..., B)`: one log-likelihood per example (and sample).

        Raises:
            ValueError: if the static shapes of `y` and `params` cannot be meant
                together (another target width, another number of examples); the
                message names both shapes.
        """
        params = tf.convert_to_tensor(params)
        if params.dtype in (tf.float16, tf.bfloat16):
            params = tf.cast(params, tf.float32)
        y = tf.convert_to_tensor(y)
        width = self.n_targets(params.shape[-1]) if params.shape.rank else None
        return self._log_prob(with_target_axis(y, params.shape, width), params)

    def _log_prob(self, y, params) -> tf.Tensor:
        """`log_prob` of targets already of shape `(..., B, d)`."""
        dist = self.distribution(params)
        return tf.reduce_sum(dist.log_prob(tf.cast(y, dist.dtype)), axis=-1)

    # -- the maths in the network outputs, for curvature methods (float64 NumPy)

    def output_nll(self, f, y, noise_scale=None) -> np.ndarray:
        """`-log p(y_n | f_n)` with all constants, one value per example, `(N,)`.

        Args:
            f: `(N, k)` network outputs (before any head), float64.
            y: `(N, d)` targets.
            noise_scale: the noise standard deviation per output for likelihoods with
                additive noise (None: the likelihood's own); ignored by the others.
        """
        raise self._no_output_hessian()

    def output_residual(self, f, y, noise_scale=None) -> np.ndarray:
        """The gradient `d(-log p(y | f)) / df`, `(N, k)`."""
        raise self._no_output_hessian()

    def output_hessian_sqrt(self, f, noise_scale=None) -> np.ndarray:
        """`L` of shape `(N, k, c)` with `L L^T = d^2(-log p(y | f)) / df^2` (free of `y`)."""
        raise self._no_output_hessian()

    def _no_output_hessian(self):
        return NotImplementedError(
            f"{self!r} has no closed-form, positive semi-definite output Hessian; the "
            f"likelihoods with one are {output_hessian_names()}")


def output_hessian_names() -> list[str]:
    """The registered likelihood names that curvature methods (Laplace) support."""
    return [name for name in LIKELIHOODS.names() if LIKELIHOODS.get(name).has_output_hessian]


def _diag_sqrt(values):
    """`(N, k, k)` diagonal square roots of a diagonal output Hessian given as `(N, k)`."""
    n, k = values.shape
    out = np.zeros((n, k, k))
    idx = np.arange(k)
    out[:, idx, idx] = np.sqrt(values)
    return out


def _all_layers(model):
    """Every layer inside `model`, nested models' layers included."""
    for layer in getattr(model, "layers", []):
        yield layer
        yield from _all_layers(layer)


def _half(n_params, likelihood) -> int:
    """`d` of `2 d` location and scale parameters; a ValueError for an odd width."""
    if n_params is not None and n_params % 2:
        raise ValueError(
            f"{likelihood!r} takes a location and a scale per target dimension (an even "
            f"number of parameters), got {n_params}")
    return None if n_params is None else n_params // 2


def _split_loc_scale(params, min_scale):
    """Splits `(..., 2d)` into a location and a positive scale `softplus(raw) + min_scale`."""
    loc, raw = tf.split(params, 2, axis=-1)
    return loc, tf.math.softplus(raw) + tf.constant(min_scale, params.dtype)


class _LocationScale(Likelihood):
    """Shared parameter handling of the Gaussian and Student-t likelihoods."""

    def __init__(self, scale: float = 1.0, trainable: bool = False, min_scale: float = 1e-6):
        self.scale = check_positive("scale", scale)
        self.trainable = bool(trainable)
        self.min_scale = check_non_negative("min_scale", min_scale)
        if self.min_scale >= self.scale:
            raise ValueError(f"min_scale must be below scale={self.scale!r}, got {min_scale!r}")

    def n_network_outputs(self, n_targets):
        return n_targets

    def n_params(self, n_targets):
        return 2 * n_targets if self.trainable else n_targets

    def n_targets(self, n_params):
        return _half(n_params, self) if self.trainable else n_params

    def output_layers(self, n_targets):
        if not self.trainable:
            return []
        return [LearnedScale(initial_scale=self.scale, min_scale=self.min_scale)]

    def noise_variables(self, model) -> list:
        """The raw scales of the model's `LearnedScale` heads, if the scale is learned."""
        if not self.trainable:
            return []
        return [layer.raw_scale for layer in _all_layers(model) if isinstance(layer, LearnedScale)]

    def noise_scale(self, raw):
        """The noise standard deviation `softplus(raw) + min_scale` a raw noise weight
        stands for (in the weight's dtype)."""
        raw = tf.convert_to_tensor(raw)
        return tf.math.softplus(raw) + tf.constant(self.min_scale, raw.dtype)

    def noise_raw(self, scale) -> np.ndarray:
        """The raw noise weight standing for the noise standard deviation `scale` (float64):
        the inverse of `noise_scale`."""
        return raw_for_scale(scale, self.min_scale)

    def _loc_scale(self, params):
        if self.trainable:
            return _split_loc_scale(params, self.min_scale)
        return params, tf.fill(tf.shape(params), tf.cast(self.scale, params.dtype))

    def get_config(self):
        return {"scale": self.scale, "trainable": self.trainable, "min_scale": self.min_scale}


@LIKELIHOODS.register("gaussian")
@keras.saving.register_keras_serializable(package="tfbnn")
class Gaussian(_LocationScale):
    """`Normal(model(x), scale)`: a fixed noise scale, or one learned with the network.

    Args:
        scale: the noise standard deviation (the initial value when `trainable`),
            in the units the model is trained in (standardised units inside the
            estimators).
        trainable: learn one homoscedastic noise scale per target dimension.
        min_scale: a floor on the learned scale, for numerical safety.
    """

    has_output_hessian = True

    def distribution(self, params):
        loc, scale = self._loc_scale(params)
        return tfd.Normal(loc, scale)

    def _noise(self, noise_scale):
        return np.asarray(self.scale if noise_scale is None else noise_scale, np.float64)

    def output_nll(self, f, y, noise_scale=None):
        scale = self._noise(noise_scale)
        z = (f - y) / scale
        return np.sum(0.5 * z**2 + np.log(scale) + 0.5 * math.log(2 * math.pi), axis=-1)

    def output_residual(self, f, y, noise_scale=None):
        return (f - y) / self._noise(noise_scale) ** 2

    def output_hessian_sqrt(self, f, noise_scale=None):
        return _diag_sqrt(np.broadcast_to(1.0 / self._noise(noise_scale) ** 2, f.shape))


@LIKELIHOODS.register("student_t")
@keras.saving.register_keras_serializable(package="tfbnn")
class StudentT(_LocationScale):
    """Student-t noise with `df` degrees of freedom: robust to outlying targets."""

    def __init__(self, df: float = 4.0, scale: float = 1.0, trainable: bool = False,
                 min_scale: float = 1e-6):
        super().__init__(scale=scale, trainable=trainable, min_scale=min_scale)
        self.df = check_positive("df", df)

    def distribution(self, params):
        loc, scale = self._loc_scale(params)
        return tfd.StudentT(tf.cast(self.df, params.dtype), loc, scale)

    def get_config(self):
        return {"df": self.df, **super().get_config()}


@LIKELIHOODS.register("heteroscedastic")
@keras.saving.register_keras_serializable(package="tfbnn")
class HeteroscedasticGaussian(Likelihood):
    """Gaussian whose noise scale the network predicts per input (`2 * d` outputs)."""

    def __init__(self, min_scale: float = 1e-6):
        self.min_scale = check_non_negative("min_scale", min_scale)

    def n_network_outputs(self, n_targets):
        return 2 * n_targets

    def n_targets(self, n_params):
        return _half(n_params, self)

    def distribution(self, params):
        return tfd.Normal(*_split_loc_scale(params, self.min_scale))

    def get_config(self):
        return {"min_scale": self.min_scale}


@LIKELIHOODS.register("poisson")
@keras.saving.register_keras_serializable(package="tfbnn")
class Poisson(Likelihood):
    """Counts with rate `exp(model(x))`."""

    is_discrete = True
    has_output_hessian = True

    def n_network_outputs(self, n_targets):
        return n_targets

    def distribution(self, params):
        return tfd.Poisson(log_rate=params)

    def output_nll(self, f, y, noise_scale=None):
        return np.sum(np.exp(f) - y * f + gammaln(y + 1.0), axis=-1)

    def output_residual(self, f, y, noise_scale=None):
        return np.exp(f) - y

    def output_hessian_sqrt(self, f, noise_scale=None):
        return _diag_sqrt(np.exp(f))


@LIKELIHOODS.register("bernoulli")
@keras.saving.register_keras_serializable(package="tfbnn")
class Bernoulli(Likelihood):
    """Binary targets (0/1) with probability `sigmoid(model(x))`."""

    is_classification = True
    is_discrete = True
    has_output_hessian = True

    def n_network_outputs(self, n_targets):
        return n_targets

    def distribution(self, params):
        return tfd.Bernoulli(logits=params, dtype=params.dtype)

    def class_probs(self, params):
        """`(..., 2)` probabilities of class 0 and class 1 (single binary target)."""
        p1 = tf.math.sigmoid(params[..., :1])
        return tf.concat([1.0 - p1, p1], axis=-1)

    def output_nll(self, f, y, noise_scale=None):
        return np.sum(np.logaddexp(0.0, f) - y * f, axis=-1)

    def output_residual(self, f, y, noise_scale=None):
        return 1.0 / (1.0 + np.exp(-f)) - y

    def output_hessian_sqrt(self, f, noise_scale=None):
        p = 1.0 / (1.0 + np.exp(-f))
        return _diag_sqrt(p * (1.0 - p))


@LIKELIHOODS.register("categorical")
@keras.saving.register_keras_serializable(package="tfbnn")
class Categorical(Likelihood):
    """One label out of `n_classes`, with probabilities `softmax(model(x))`.

    Its output Hessian `diag(p) - p p^T` has the square root
    `L = (I - p 1^T) diag(sqrt(p))`.
    """

    is_classification = True
    is_discrete = True
    has_output_hessian = True

    def __init__(self, n_classes: int):
        self.n_classes = check_int("n_classes", n_classes, minimum=2)

    def n_network_outputs(self, n_targets):
        if n_targets != 1:
            raise ValueError(f"Categorical takes one label column, got {n_targets} target columns")
        return self.n_classes

    def distribution(self, params):
        return tfd.Categorical(logits=params)

    def n_targets(self, n_params):
        return 1  # one label column

    def _log_prob(self, y, params):
        return self.distribution(params).log_prob(tf.cast(y[..., 0], tf.int32))

    def class_probs(self, params):
        return tf.math.softmax(params, axis=-1)

    def output_nll(self, f, y, noise_scale=None):
        labels = np.asarray(y).reshape(-1).astype(int)
        return -log_softmax(f, axis=-1)[np.arange(len(f)), labels]

    def output_residual(self, f, y, noise_scale=None):
        labels = np.asarray(y).reshape(-1).astype(int)
        r = softmax(f, axis=-1)
        r[np.arange(len(f)), labels] -= 1.0
        return r

    def output_hessian_sqrt(self, f, noise_scale=None):
        p = softmax(f, axis=-1)
        k = p.shape[-1]
        return (np.eye(k)[None] - p[:, :, None]) * np.sqrt(p)[:, None, :]

    def get_config(self):
        return {"n_classes": self.n_classes}


#: What each name means when it is not a class's defaults: the regressors' Gaussian and
#: Student-t learn their noise scale.
_NAME_DEFAULTS = {"gaussian": {"trainable": True}, "student_t": {"trainable": True}}


def names(*, classification: bool | None = None) -> list[str]:
    """The registered likelihood names, optionally only those for (not for) classification."""
    return [name for name in LIKELIHOODS.names()
            if classification is None or LIKELIHOODS.get(name).is_classification == classification]


def get(likelihood, **kwargs) -> Likelihood:
    """Returns a Likelihood from an instance, a registered name, or a config dict.

    A name means what the estimators mean by it, `kwargs` overriding:

    * "gaussian": `Gaussian(trainable=True)`, a learned homoscedastic noise scale;
    * "student_t": `StudentT(trainable=True)`, likewise;
    * "heteroscedastic": `HeteroscedasticGaussian()`, a noise scale per input;
    * "poisson": `Poisson()`; "bernoulli": `Bernoulli()`;
    * "categorical": `Categorical(n_classes)`, which needs `n_classes`.

    The classes constructed directly keep their own defaults (`Gaussian()` has the
    fixed noise scale 1).
    """
    if isinstance(likelihood, Likelihood):
        return likelihood
    if isinstance(likelihood, str):
        cls = LIKELIHOODS.get(likelihood)
        return cls(**{**_NAME_DEFAULTS.get(likelihood, {}), **kwargs})
    if isinstance(likelihood, dict):
        return keras.saving.deserialize_keras_object(likelihood)
    raise TypeError(
        f"likelihood must be a tfbnn Likelihood or one of {LIKELIHOODS.names()}, "
        f"got {type(likelihood).__name__}"
    )


@keras.saving.register_keras_serializable(package="tfbnn")
class NegativeLogLikelihood(keras.losses.Loss):
    """A Keras loss: mean negative log-likelihood of `y_true` under `likelihood(y_pred)`.

    Use it with `model.compile(loss=...)`; the variational layers add their
    (weighted) KL divergence as layer losses, so Keras minimises the negative ELBO.
    `y_true` may be 1-D for one target dimension; the loss is the mean over the
    batch's examples, in float32 also under a mixed-precision policy.
    """

    def __init__(self, likelihood, name="negative_log_likelihood", **kwargs):
        super().__init__(name=name, **kwargs)
        self.likelihood = get(likelihood)

    def call(self, y_true, y_pred):
        return -self.likelihood.log_prob(y_true, y_pred)

    def get_config(self):
        return {
            **super().get_config(),
            "likelihood": keras.saving.serialize_keras_object(self.likelihood),
        }
