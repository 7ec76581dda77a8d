"""The one predictive summary every posterior method returns.

A `Predictive` is built from `S` posterior draws of the likelihood's parameters at
`B` inputs, `params` of shape `(S, B, k)`. The predictive distribution is the
equal mixture `p(y | x) = (1/S) sum_s p(y | theta_s(x))`; everything below is a
property of that mixture, computed exactly from the components (no extra sampling
except for `samples`):

* `mean`, `var = aleatoric_var + epistemic_var` (law of total variance:
  the mean of the component variances plus the variance of the component means);
* `cdf`, `quantile`, `interval` of the mixture (bisection on the mixture CDF);
* `log_prob(y)`: `logsumexp_s log p(y | theta_s) - log S`, per example;
* for classification: `probs`, `entropy` (total), `expected_entropy` (aleatoric)
  and `mutual_information` (epistemic).

Regression outputs are mapped back to the user's units through `y = shift + scale * z`
(the estimators train on standardised targets).
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import tensorflow as tf

from tfbnn.validation import check_level, check_option, check_probability


class Predictive:
    """Posterior predictive distribution at a batch of inputs.

    Args:
        likelihood: the `tfbnn.likelihoods.Likelihood` that maps `params` to distributions.
        params: `(S, B, k)` likelihood parameters, one slice per posterior draw.
        shift, scale: affine map from the model's target units to the user's
            (regression only): `y = shift + scale * z`; scalars, `(d,)`, or `(B, d)`
            for a map of its own at each input.
        squeeze: `"auto"` (the default) returns `(B,)` rather than `(B, 1)` when the
            parameters stand for one target dimension, `(B, d)` for `d > 1`; True or
            False to decide (the estimators return the shape of the `y` they were
            fitted on).
        classes: class labels for classification (default `0..K-1`).
        seed: seeds `samples`.
    """

    def __init__(self, likelihood, params, *, shift=0.0, scale=1.0, squeeze="auto",
                 classes=None, seed=None):
        params = tf.cast(params, tf.float32)  # also half-precision outputs (mixed precision)
        if params.shape.rank != 3:
            raise ValueError(f"params must have shape (S, B, k), got {tuple(params.shape)}")
        self.likelihood = likelihood
        self.params = params
        self.n_draws = int(params.shape[0])
        self._shift = np.asarray(shift, np.float64)
        self._scale = np.asarray(scale, np.float64)
        self._seed = seed
        self._dist = likelihood.distribution(params)
        self.is_classification = bool(likelihood.is_classification)
        if check_option("squeeze", squeeze, ["auto", True, False]) == "auto":
            squeeze = not self.is_classification and self._dist.batch_shape[-1] == 1
        self._squeeze = bool(squeeze)
        if self.is_classification:
            probs = likelihood.class_probs(params).numpy().astype(np.float64)
            self._component_probs = probs  # (S, B, K)
            self.classes = np.arange(probs.shape[-1]) if classes is None else np.asarray(classes)

    # -- the constructor's arguments --------------------------------------------------

    @property
    def shift(self) -> np.ndarray:
        """The `shift` of the map `y = shift + scale * z` to the user's units."""
        return self._shift

    @property
    def scale(self) -> np.ndarray:
        """The `scale` of the map `y = shift + scale * z` to the user's units."""
        return self._scale

    @property
    def squeeze(self) -> bool:
        """Whether a single target comes back as `(B,)` rather than `(B, 1)` (what
        `squeeze="auto"` resolved to)."""
        return self._squeeze

    @property
    def seed(self):
        """The seed of `samples`."""
        return self._seed

    # -- helpers ------------------------------------------------------------------

    def _out(self, array):
        array = np.asarray(array)
        if self._squeeze and array.ndim >= 1 and array.shape[-1] == 1:
            return array[..., 0]
        return array

    def _to_model_units(self, y):
        y = np.asarray(y, np.float64)
        n_targets = self._dist.batch_shape[-1]
        if y.ndim == 1:
            if n_targets != 1:
                raise ValueError(f"y must have shape (n, {n_targets}), got {y.shape}")
            y = y[:, None]
        if y.shape != tuple(self._dist.batch_shape[1:]):
            raise ValueError(
                f"y has shape {y.shape}; this predictive is for {tuple(self._dist.batch_shape[1:])}"
            )
        return (y - self._shift) / self._scale

    def _require_regression(self, what):
        if self.is_classification:
            raise AttributeError(f"{what} is defined for regression predictives only")

    def _require_classification(self, what):
        if not self.is_classification:
            raise AttributeError(f"{what} is defined for classification predictives only")

    # -- regression moments ---------------------------------------------------------

    @cached_property
    def _component_mean(self):
        return self._dist.mean().numpy().astype(np.float64)  # (S, B, d)

    @cached_property
    def _component_var(self):
        return self._dist.variance().numpy().astype(np.float64)  # (S, B, d)

    @cached_property
    def _dist64(self):
        # CDFs in float64: in float32 the upper tail saturates at 1 - 3e-8.
        return self.likelihood.distribution(tf.cast(self.params, tf.float64))

    @property
    def mean(self) -> np.ndarray:
        """Predictive mean, `(B, d)` or `(B,)` for one target.

        For classification it is the class probabilities, `probs`.
        """
        if self.is_classification:
            return self.probs
        return self._out(self._shift + self._scale * self._component_mean.mean(axis=0))

    @property
    def aleatoric_var(self) -> np.ndarray:
        """Mean over draws of the likelihood's variance: noise in the data."""
        self._require_regression("aleatoric_var")
        return self._out(self._scale**2 * self._component_var.mean(axis=0))

    @property
    def epistemic_var(self) -> np.ndarray:
        """Variance over draws of the likelihood's mean: what the model does not know."""
        self._require_regression("epistemic_var")
        return self._out(self._scale**2 * self._component_mean.var(axis=0))

    @property
    def var(self) -> np.ndarray:
        """Total predictive variance, `aleatoric_var + epistemic_var`."""
        return self.aleatoric_var + self.epistemic_var

    @property
    def std(self) -> np.ndarray:
        """Total predictive standard deviation."""
        return np.sqrt(self.var)

    # -- the mixture's distribution function ----------------------------------------

    def cdf(self, y) -> np.ndarray:
        """Predictive CDF at `y` (user units), `(B, d)` (`(B,)` squeezed); the PIT values
        when `y` is the truth."""
        self._require_regression("cdf")
        z = tf.constant(self._to_model_units(y), tf.float64)
        return self._out(tf.reduce_mean(self._dist64.cdf(z[tf.newaxis]), axis=0).numpy())

    def quantile(self, q) -> np.ndarray:
        """The `q`-quantile of the predictive mixture, `(B, d)` (`(B,)` squeezed), in user
        units."""
        self._require_regression("quantile")
        z = self._mixture_quantile(check_probability("q", q))
        return self._out(self._shift + self._scale * z)

    def interval(self, level: float = 0.95):
        """Central predictive interval `(lower, upper)` holding `level` of the mass."""
        tail = (1.0 - check_level(level)) / 2.0
        return self.quantile(tail), self.quantile(1.0 - tail)

    def _mixture_quantile(self, q, iterations: int = 60):
        dist = self._dist64
        # The mixture quantile lies between the smallest and largest component
        # quantiles; where a family has no quantile function, use wide moments.
        try:
            comp_q = dist.quantile(tf.constant(q, dist.dtype)).numpy().astype(np.float64)
            lo, hi = comp_q.min(axis=0), comp_q.max(axis=0)
        except NotImplementedError:
            mean, sd = self._component_mean, np.sqrt(self._component_var)
            lo, hi = (mean - 20 * sd).min(axis=0), (mean + 20 * sd).max(axis=0)
        lo, hi = lo - 1e-6, hi + 1e-6
        for _ in range(iterations):
            mid = 0.5 * (lo + hi)
            below = tf.reduce_mean(dist.cdf(tf.constant(mid, dist.dtype)[tf.newaxis]), axis=0)
            below = below.numpy() < q
            lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
        if self.likelihood.is_discrete:
            return np.ceil(hi - 1e-6)
        return 0.5 * (lo + hi)

    # -- draws and densities ----------------------------------------------------------

    @property
    def samples(self) -> np.ndarray:
        """One draw of `y` per posterior draw, `(S, B, d)` (`(S, B)` squeezed) in user units
        (labels for classes)."""
        draws = self._dist.sample(seed=self._tf_seed()).numpy()
        if self.is_classification:
            if draws.ndim == 3:  # Bernoulli with one target
                draws = draws[..., 0]
            return self.classes[draws.astype(int)]
        return self._out(self._shift + self._scale * draws.astype(np.float64))

    def _tf_seed(self):
        rng = np.random.default_rng(self._seed)
        return tf.constant(rng.integers(0, 2**31 - 1, size=2), tf.int32)

    def log_prob(self, y) -> np.ndarray:
        """Log predictive density of `y` at each input, `(B,)`, in user units.

        For classification `y` holds class labels (as in `classes`).
        """
        if self.is_classification:
            index = self.class_index(y)
            log_p = np.log(np.maximum(
                np.take_along_axis(self._component_probs, index[None, :, None], -1)[..., 0],
                1e-300))
            jacobian = 0.0
        else:
            z = tf.constant(self._to_model_units(y), tf.float32)
            log_p = self.likelihood.log_prob(z[tf.newaxis], self.params).numpy()
            jacobian = np.sum(np.log(np.broadcast_to(self._scale, z.shape)), axis=-1)
        log_p = np.asarray(log_p, np.float64)
        peak = log_p.max(axis=0)
        log_mean = peak + np.log(np.mean(np.exp(log_p - peak), axis=0))
        return log_mean - jacobian

    # -- classification -------------------------------------------------------------

    def class_index(self, y) -> np.ndarray:
        """The column of each label of `y` in `probs`, `(B,)` (labels as in `classes`)."""
        return label_index(y, self.classes)

    @property
    def probs(self) -> np.ndarray:
        """Posterior-averaged class probabilities, `(B, K)`."""
        self._require_classification("probs")
        return self._component_probs.mean(axis=0)

    @property
    def predicted_class(self) -> np.ndarray:
        """The most probable label at each input (argmax of `probs`), from `classes`."""
        self._require_classification("predicted_class")
        return self.classes[self.probs.argmax(axis=-1)]

    @property
    def entropy(self) -> np.ndarray:
        """Entropy of the averaged probabilities (total uncertainty), nats."""
        return _entropy(self.probs)

    @property
    def expected_entropy(self) -> np.ndarray:
        """Average entropy of each draw's probabilities (aleatoric uncertainty), nats."""
        self._require_classification("expected_entropy")
        return _entropy(self._component_probs).mean(axis=0)

    @property
    def mutual_information(self) -> np.ndarray:
        """`entropy - expected_entropy` (epistemic uncertainty; BALD), nats, >= 0."""
        return np.maximum(self.entropy - self.expected_entropy, 0.0)

    def __repr__(self) -> str:
        kind = "classification" if self.is_classification else "regression"
        _, b, k = self.params.shape
        return f"Predictive({kind}, draws={self.n_draws}, inputs={b}, params={k})"


def label_index(labels, classes) -> np.ndarray:
    """The position of each of `labels` in `classes`, `(n,)`; a ValueError names an unknown one."""
    lookup = {label: i for i, label in enumerate(np.asarray(classes).tolist())}
    try:
        return np.array([lookup[label] for label in np.asarray(labels).reshape(-1).tolist()],
                        dtype=int)
    except KeyError as err:
        raise ValueError(f"Unknown class label {err.args[0]!r}; known: {list(lookup)}") from None


def _entropy(probs):
    probs = np.clip(probs, 1e-300, 1.0)
    return -np.sum(probs * np.log(probs), axis=-1)
