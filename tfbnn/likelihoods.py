"""Likelihoods: how a network's raw outputs become a distribution over targets.

A likelihood is stateless configuration. Anything it learns (a homoscedastic noise
scale) lives in the Keras model as a `tfbnn.layers.LearnedScale` layer that the
likelihood asks to be appended, so `model.fit`, saving and every posterior method
see it as an ordinary weight.

Shapes: for `d` target dimensions the network emits `params` of shape
`(..., likelihood.n_params(d))`; `distribution(params)` has batch shape `(..., d)`
(`(...)` for `Categorical`), and `log_prob(y, params)` sums over the target
dimensions, giving one value per example.
"""

from __future__ import annotations

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from tfbnn._options import ConfigObject, Registry
from tfbnn._options import check_positive as _positive

tfd = tfp.distributions

LIKELIHOODS = Registry("likelihood")


class Likelihood(ConfigObject):
    """Base class. Subclasses implement `n_network_outputs`, `distribution`, `get_config`."""

    #: Targets are class labels (integers 0..K-1, or 0/1).
    is_classification = False
    #: Targets are integers (quantiles are rounded up to the support).
    is_discrete = False

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

    def log_prob(self, y, params) -> tf.Tensor:
        """Log-likelihood of each example, summed over target dimensions."""
        dist = self.distribution(params)
        y = tf.cast(y, dist.dtype)
        return tf.reduce_sum(dist.log_prob(y), axis=-1)


def _all_layers(model):
    """Every layer inside `model`, nested models' layers included."""
    for layer in getattr(model, "layers", []):
        yield layer
        yield from _all_layers(layer)


def _split_loc_scale(params, min_scale):
    """Splits `(..., 2d)` into a location and a positive scale `softplus(raw) + min_scale`."""
    loc, raw = tf.split(params, 2, axis=-1)
    return loc, tf.math.softplus(raw) + tf.cast(min_scale, params.dtype)


class _LocationScale(Likelihood):
    """Shared parameter handling of the Gaussian and Student-t likelihoods."""

    def __init__(self, scale: float = 1.0, trainable: bool = False, min_scale: float = 1e-6):
        self.scale = _positive("scale", scale)
        self.trainable = bool(trainable)
        self.min_scale = float(min_scale)
        if self.min_scale < 0 or self.min_scale >= self.scale:
            raise ValueError(f"min_scale must be in [0, scale), got {min_scale!r}")

    def n_network_outputs(self, n_targets):
        return n_targets

    def n_params(self, n_targets):
        return 2 * n_targets if self.trainable else n_targets

    def output_layers(self, n_targets):
        if not self.trainable:
            return []
        from tfbnn.layers.heads import LearnedScale

        return [LearnedScale(initial_scale=self.scale, min_scale=self.min_scale)]

    def noise_variables(self, model) -> list:
        """The raw scales of the model's `LearnedScale` heads, if the scale is learned."""
        if not self.trainable:
            return []
        from tfbnn.layers.heads import LearnedScale

        return [layer.raw_scale for layer in _all_layers(model) if isinstance(layer, LearnedScale)]

    def noise_scale(self, raw):
        """The noise standard deviation a raw noise weight stands for."""
        return tf.math.softplus(raw) + tf.cast(self.min_scale, raw.dtype)

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

    def distribution(self, params):
        loc, scale = self._loc_scale(params)
        return tfd.Normal(loc, scale)


@LIKELIHOODS.register("student_t")
@keras.saving.register_keras_serializable(package="tfbnn")
class StudentT(_LocationScale):
    """Student-t noise with `df` degrees of freedom: robust to outlying targets."""

    def __init__(self, df: float = 4.0, scale: float = 1.0, trainable: bool = False,
                 min_scale: float = 1e-6):
        super().__init__(scale=scale, trainable=trainable, min_scale=min_scale)
        self.df = _positive("df", df)

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
        self.min_scale = float(min_scale)
        if self.min_scale < 0:
            raise ValueError(f"min_scale must be >= 0, got {min_scale!r}")

    def n_network_outputs(self, n_targets):
        return 2 * n_targets

    def distribution(self, params):
        return tfd.Normal(*_split_loc_scale(params, self.min_scale))

    def get_config(self):
        return {"min_scale": self.min_scale}


@LIKELIHOODS.register("poisson")
@keras.saving.register_keras_serializable(package="tfbnn")
class Poisson(Likelihood):
    """Counts with rate `exp(model(x))`."""

    is_discrete = True

    def n_network_outputs(self, n_targets):
        return n_targets

    def distribution(self, params):
        return tfd.Poisson(log_rate=params)


@LIKELIHOODS.register("bernoulli")
@keras.saving.register_keras_serializable(package="tfbnn")
class Bernoulli(Likelihood):
    """Binary targets (0/1) with probability `sigmoid(model(x))`."""

    is_classification = True
    is_discrete = True

    def n_network_outputs(self, n_targets):
        return n_targets

    def distribution(self, params):
        return tfd.Bernoulli(logits=params, dtype=params.dtype)

    def class_probs(self, params):
        """`(..., 2)` probabilities of class 0 and class 1 (single binary target)."""
        p1 = tf.math.sigmoid(params[..., :1])
        return tf.concat([1.0 - p1, p1], axis=-1)


@LIKELIHOODS.register("categorical")
@keras.saving.register_keras_serializable(package="tfbnn")
class Categorical(Likelihood):
    """One label out of `n_classes`, with probabilities `softmax(model(x))`."""

    is_classification = True
    is_discrete = True

    def __init__(self, n_classes: int):
        if isinstance(n_classes, bool) or int(n_classes) != n_classes or n_classes < 2:
            raise ValueError(f"n_classes must be an integer >= 2, got {n_classes!r}")
        self.n_classes = int(n_classes)

    def n_network_outputs(self, n_targets):
        if n_targets != 1:
            raise ValueError(f"Categorical takes one label column, got {n_targets} target columns")
        return self.n_classes

    def distribution(self, params):
        return tfd.Categorical(logits=params)

    def log_prob(self, y, params):
        params = tf.convert_to_tensor(params)
        y = tf.cast(y, tf.int32)
        if y.shape.rank == params.shape.rank:  # a trailing label column of width 1
            y = y[..., 0]
        return self.distribution(params).log_prob(y)  # broadcasts, e.g. (1, B) against (S, B)

    def class_probs(self, params):
        return tf.math.softmax(params, axis=-1)

    def get_config(self):
        return {"n_classes": self.n_classes}


def get(likelihood, **kwargs) -> Likelihood:
    """Returns a Likelihood from an instance, a registered name (with `kwargs`), or a config dict."""
    if isinstance(likelihood, Likelihood):
        return likelihood
    if isinstance(likelihood, str):
        return LIKELIHOODS.get(likelihood)(**kwargs)
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
