"""Priors over network weights: small serialisable objects with TFP distributions inside.

Every prior exposes `to_distribution(shape, dtype)` (an elementwise distribution with
batch shape `shape`) and `kl_divergence(posterior, sample)`: the closed-form
KL[q || p] where TFP registers one, otherwise a one-sample Monte-Carlo estimate
`log q(w) - log p(w)` at the weights `w` that the forward pass used.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from tfbnn.registry import ConfigObject, Registry
from tfbnn.validation import check_finite, check_positive, check_probability

tfd = tfp.distributions

PRIORS = Registry("prior")

# Priors register under their own Keras package: `tfbnn.likelihoods.StudentT` is
# registered as "tfbnn>StudentT", and one name cannot deserialise to two classes.


class Prior(ConfigObject):
    """Base class: subclasses implement `_distribution(shape, dtype)` and `get_config`."""

    #: Whether `tfd.kl_divergence(Normal posterior, this prior)` exists in closed form.
    has_closed_form_kl = False

    def to_distribution(self, shape, dtype=tf.float32) -> tfd.Distribution:
        """The prior as a TFP distribution with batch shape `shape` (one entry per weight)."""
        dist = self._distribution(dtype)
        return tfd.BatchBroadcast(dist, to_shape=shape) if tuple(shape) else dist

    def kl_divergence(self, posterior: tfd.Distribution, sample=None) -> tf.Tensor:
        """KL[posterior || prior] summed over all weights.

        Uses the closed form when it exists; otherwise `log q(w) - log p(w)` at
        `sample` (the weights the forward pass used, so the estimate is unbiased
        and its gradient is the reparameterization gradient). If `sample` is None
        one fresh sample is drawn.
        """
        prior = self._distribution(posterior.dtype)
        if self.has_closed_form_kl:
            return tf.reduce_sum(tfd.kl_divergence(posterior, prior))
        if sample is None:
            sample = posterior.sample()
        return tf.reduce_sum(posterior.log_prob(sample) - prior.log_prob(sample))

    def normal_kl(self, loc, scale, sample=None) -> tf.Tensor:
        """`kl_divergence` of the elementwise posterior `Normal(loc, scale)`: what the
        variational layers call on every training step."""
        return self.kl_divergence(tfd.Normal(loc, scale), sample)

    def log_prob(self, weights) -> tf.Tensor:
        """Log prior density of `weights`, summed over all entries."""
        weights = tf.convert_to_tensor(weights)
        return tf.reduce_sum(self._distribution(weights.dtype).log_prob(weights))

    def _distribution(self, dtype) -> tfd.Distribution:
        raise NotImplementedError

    def get_config(self) -> dict:
        raise NotImplementedError


class _LocationScalePrior(Prior):
    """A prior of one TFP location-scale family (`family`) on every weight."""

    family = None

    def __init__(self, loc: float = 0.0, scale: float = 1.0):
        self.loc = check_finite("loc", loc)
        self.scale = check_positive("scale", scale)

    def _distribution(self, dtype):
        return self.family(tf.cast(self.loc, dtype), tf.cast(self.scale, dtype))

    def get_config(self):
        return {"loc": self.loc, "scale": self.scale}


@PRIORS.register("normal")
@keras.saving.register_keras_serializable(package="tfbnn.priors")
class Normal(_LocationScalePrior):
    """Independent Normal(loc, scale) on every weight: the classic `Normal(0, 1)` prior."""

    family = tfd.Normal
    has_closed_form_kl = True

    def normal_kl(self, loc, scale, sample=None):
        """The closed form, `log(s0 / s) + (s^2 + (m - m0)^2) / (2 s0^2) - 1/2` per
        entry, written with the prior's numbers folded into constants: a few
        elementwise ops and no division (each op, and its gradient, costs more than
        its arithmetic in a small network). `sample` is not needed."""
        half_precision = 0.5 / self.scale**2
        centred = loc if self.loc == 0 else loc - self.loc
        per_entry = half_precision * (tf.square(scale) + tf.square(centred)) - tf.math.log(scale)
        constant = math.log(self.scale) - 0.5
        return tf.reduce_sum(per_entry) + constant * float(math.prod(loc.shape))


@PRIORS.register("laplace")
@keras.saving.register_keras_serializable(package="tfbnn.priors")
class Laplace(_LocationScalePrior):
    """Independent Laplace(loc, scale) on every weight: a sparsity-favouring prior."""

    family = tfd.Laplace


@PRIORS.register("student_t")
@keras.saving.register_keras_serializable(package="tfbnn.priors")
class StudentT(Prior):
    """Independent Student-t(df, loc, scale) on every weight: heavy tails, robust shrinkage."""

    def __init__(self, df: float = 3.0, loc: float = 0.0, scale: float = 1.0):
        self.df = check_positive("df", df)
        self.loc = check_finite("loc", loc)
        self.scale = check_positive("scale", scale)

    def _distribution(self, dtype):
        return tfd.StudentT(
            tf.cast(self.df, dtype), tf.cast(self.loc, dtype), tf.cast(self.scale, dtype)
        )

    def get_config(self):
        return {"df": self.df, "loc": self.loc, "scale": self.scale}


@PRIORS.register("scale_mixture")
@keras.saving.register_keras_serializable(package="tfbnn.priors")
class ScaleMixture(Prior):
    """The two-component scale mixture of Bayes by Backprop.

    `pi * Normal(0, sigma1) + (1 - pi) * Normal(0, sigma2)` with a wide and a
    narrow component (Blundell et al., 2015, "Weight Uncertainty in Neural
    Networks", eq. 7).
    """

    def __init__(self, pi: float = 0.5, sigma1: float = 1.0, sigma2: float = math.exp(-6)):
        self.pi = check_probability("pi", pi)
        self.sigma1 = check_positive("sigma1", sigma1)
        self.sigma2 = check_positive("sigma2", sigma2)

    def _distribution(self, dtype):
        probs = tf.constant([self.pi, 1.0 - self.pi], dtype)
        return tfd.MixtureSameFamily(
            tfd.Categorical(probs=probs),
            tfd.Normal(tf.zeros([2], dtype), tf.constant([self.sigma1, self.sigma2], dtype)),
        )

    def get_config(self):
        return {"pi": self.pi, "sigma1": self.sigma1, "sigma2": self.sigma2}


def get(prior) -> Prior:
    """Returns a Prior from a Prior, a registered name, a config dict, or None (Normal(0, 1))."""
    if prior is None:
        return Normal()
    if isinstance(prior, Prior):
        return prior
    if isinstance(prior, str):
        return PRIORS.get(prior)()
    if isinstance(prior, dict):
        return keras.saving.deserialize_keras_object(prior)
    raise TypeError(
        f"prior must be a tfbnn Prior, one of {PRIORS.names()}, or None; got {type(prior).__name__}"
    )
