"""The calibrators: quantile recalibration, split-conformal intervals, temperature scaling."""

from __future__ import annotations

import enum
import math
import warnings

import numpy as np
from scipy import optimize, special, stats
from sklearn.isotonic import IsotonicRegression

from tfbnn import metrics
from tfbnn.calibration.base import CALIBRATORS, CalibratedPredictive, Calibrator
from tfbnn.metrics.inputs import class_probs, match_targets, mean_std, probs_and_index
from tfbnn.predictive import Predictive
from tfbnn.validation import (
    check_level,
    check_option,
    check_positive,
    check_probability,
    finite_array,
)

# Keeps adjusted levels strictly inside (0, 1), where `Predictive.quantile` is
# defined. Over-confident models need extreme levels (predictive sd 0.3 against
# noise sd 1 puts the 95% point near level 1 - 2e-8), so the margin is tiny.
_LEVEL_EPS = 1e-12


def _quantile(y_pred, q):
    if isinstance(y_pred, Predictive):
        return np.asarray(y_pred.quantile(q))
    mean, std = mean_std(y_pred, "quantile")
    return stats.norm.ppf(q, mean, std)


@CALIBRATORS.register("QuantileRecalibrator")
class QuantileRecalibrator(Calibrator):
    """Isotonic recalibration of a regression predictive (Kuleshov et al. 2018).

    `fit` learns the map `R(p) = P(F(Y) <= p)` from the PIT values `F(y)` of
    held-out data (the empirical CDF of the PITs, made monotone by scikit-learn's
    `IsotonicRegression`). The recalibrated CDF is `R(F(y))`; the recalibrated
    `q`-quantile is `F^{-1}(R^{-1}(q))`, the predictive's own quantile at the
    adjusted level. One map is shared by all target dimensions.

    Example: a model that claims sd 0.3 for targets whose sd is 1.

    >>> rng = np.random.default_rng(0)
    >>> y = rng.normal(size=1000)
    >>> overconfident = (np.zeros(1000), np.full(1000, 0.3))
    >>> recal = QuantileRecalibrator().fit(overconfident, y)
    >>> lower, upper = recal.interval(overconfident, 0.9)
    >>> print(f"{lower[0]:.2f} {upper[0]:.2f}")  # N(0, 1) has -1.64 and 1.64
    -1.57 1.51
    """

    calibrates = frozenset({"cdf", "quantile", "interval"})
    fitted_attribute = "pit_knots_"

    def __init__(self):
        self.pit_knots_ = None
        self.freq_knots_ = None

    def fit(self, y_pred, y) -> QuantileRecalibrator:
        """Fits the calibration map on held-out predictions and targets.

        Args:
            y_pred: a regression `Predictive` or a Gaussian `(mean, std)` tuple.
            y: the held-out targets.
        """
        pit = metrics.pit_values(y, y_pred).reshape(-1)
        if pit.size < 2:
            raise ValueError(f"fit needs at least 2 calibration targets, got {pit.size}")
        observed = np.searchsorted(np.sort(pit), pit, side="right") / pit.size
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        iso.fit(pit, observed)
        x, fx = np.asarray(iso.X_thresholds_), np.asarray(iso.y_thresholds_)
        # Anchor the map at (0, 0) and (1, 1) so that it covers all of [0, 1].
        if x[0] > 0.0:
            x, fx = np.concatenate([[0.0], x]), np.concatenate([[0.0], fx])
        if x[-1] < 1.0:
            x, fx = np.concatenate([x, [1.0]]), np.concatenate([fx, [1.0]])
        self.pit_knots_ = x.tolist()
        self.freq_knots_ = np.maximum.accumulate(fx).tolist()
        return self

    def calibration_map(self, p) -> np.ndarray:
        """`R(p)`: the recalibrated probability of a predictive CDF value `p`."""
        self.check_fitted()
        return np.interp(np.asarray(p, np.float64), self.pit_knots_, self.freq_knots_)

    def inverse_map(self, q) -> np.ndarray:
        """`R^{-1}(q) = inf {p : R(p) >= q}` for the piecewise-linear map."""
        self.check_fitted()
        x, fx = np.asarray(self.pit_knots_), np.asarray(self.freq_knots_)
        q = np.asarray(q, np.float64)
        right = np.clip(np.searchsorted(fx, q, side="left"), 1, len(fx) - 1)
        left = right - 1
        rise = fx[right] - fx[left]
        # fx[left] < q <= fx[right] except at the clipped left end, where the
        # infimum is x[left]; there a flat first segment must not move it right.
        t = np.where(rise > 0, (q - fx[left]) / np.where(rise > 0, rise, 1.0), 0.0)
        return np.clip(x[left] + np.clip(t, 0.0, 1.0) * (x[right] - x[left]), 0.0, 1.0)

    def cdf(self, y_pred, y) -> np.ndarray:
        """Recalibrated predictive CDF at `y`, `R(F(y))`."""
        self.check_fitted()
        return self.calibration_map(metrics.pit_values(y, y_pred))

    def quantile(self, y_pred, q) -> np.ndarray:
        """Recalibrated `q`-quantile: the predictive's quantile at level `R^{-1}(q)`."""
        q = check_probability("q", q)
        level = float(np.clip(self.inverse_map(q), _LEVEL_EPS, 1.0 - _LEVEL_EPS))
        return _quantile(y_pred, level)

    def interval(self, y_pred, level: float = 0.95):
        """Recalibrated central interval `(lower, upper)` at `level`."""
        tail = (1.0 - check_level(level)) / 2.0
        return self.quantile(y_pred, tail), self.quantile(y_pred, 1.0 - tail)

    def transform(self, y_pred) -> CalibratedPredictive:
        """The recalibrated predictive: `y_pred` with this recalibrator's `cdf`, `quantile`
        and `interval` (see `CalibratedPredictive`)."""
        return self.calibrated(y_pred)

    def get_config(self) -> dict:
        return {"pit_knots": self.pit_knots_, "freq_knots": self.freq_knots_}

    @classmethod
    def from_config(cls, config: dict) -> QuantileRecalibrator:
        """Rebuilds a recalibrator; a ValueError if its knots are not a monotone map of [0, 1]."""
        obj = cls()
        if config.get("pit_knots") is not None:
            x = np.asarray([float(v) for v in config["pit_knots"]])
            fx = np.asarray([float(v) for v in config.get("freq_knots", ())])
            cls.check_fitted_values(
                x.shape == fx.shape and x.size >= 2
                and np.all(np.diff(x) >= 0) and np.all(np.diff(fx) >= 0)
                and np.all((x >= 0) & (x <= 1) & (fx >= 0) & (fx <= 1)))
            obj.pit_knots_, obj.freq_knots_ = x.tolist(), fx.tolist()
        return obj


class ConformalMethod(enum.StrEnum):
    """The nonconformity score of `ConformalRegressor`."""

    ABSOLUTE = "absolute"
    """`|y - mean|`: intervals of the same width everywhere."""
    NORMALIZED = "normalized"
    """`|y - mean| / std`: widths follow the model's own predictive std."""


@CALIBRATORS.register("ConformalRegressor")
class ConformalRegressor(Calibrator):
    """Split-conformal prediction intervals around a model's predictive mean.

    `fit` stores the nonconformity scores of a held-out calibration set; the
    interval at `level` is `mean -/+ s_hat` (`absolute`) or `mean -/+ s_hat * std`
    (`normalized`), where `s_hat` is the `k`-th smallest score with
    `k = ceil((n + 1) level)`, the finite-sample quantile
    `ceil((n + 1)(1 - alpha)) / n`. If calibration and test points are
    exchangeable, marginal coverage is then at least `level` (and, with no tied
    scores, below `level + 1 / (n + 1)`). When `k > n` the calibration set is
    too small for `level` and the interval is infinite (with a warning).
    Several targets `(B, d)` are calibrated column by column.

    Args:
        method: `"absolute"` or `"normalized"`.

    Example:

    >>> rng = np.random.default_rng(0)
    >>> conformal = ConformalRegressor().fit(np.zeros(1000), rng.normal(size=1000))
    >>> lower, upper = conformal.interval(np.zeros(2), level=0.9)
    >>> print(upper.round(2))
    [1.56 1.56]
    """

    calibrates = frozenset({"interval"})
    fitted_attribute = "scores_"

    def __init__(self, method: str = "absolute"):
        self.method = check_option("method", method, [m.value for m in ConformalMethod])
        self.scores_ = None

    def _mean_scale(self, y_pred):
        if isinstance(y_pred, Predictive) or isinstance(y_pred, tuple):
            mean, std = mean_std(y_pred, "ConformalRegressor")
        elif self.method == ConformalMethod.NORMALIZED:
            raise ValueError(
                "method='normalized' needs a Predictive or a (mean, std) tuple, got an array")
        else:
            mean, std = finite_array("y_pred", y_pred), None
        if self.method == ConformalMethod.ABSOLUTE:
            return mean, np.ones_like(mean)
        return mean, std

    def fit(self, y_pred, y) -> ConformalRegressor:
        """Stores the calibration scores.

        Args:
            y_pred: a regression `Predictive`, a `(mean, std)` tuple, or (for
                `"absolute"`) an array of predicted means.
            y: the held-out targets.
        """
        mean, scale = self._mean_scale(y_pred)
        scores = np.abs(match_targets(y, mean) - mean) / scale
        self.scores_ = np.sort(scores, axis=0).tolist()
        return self

    def score_quantile(self, level: float = 0.95):
        """`s_hat`: the `ceil((n + 1) level)`-th smallest calibration score (per target)."""
        self.check_fitted()
        level = check_level(level)
        scores = np.asarray(self.scores_, np.float64)
        n = scores.shape[0]
        k = math.ceil((n + 1) * level - 1e-9)  # tolerate (n + 1) * level landing at 95.000001
        if k > n:
            warnings.warn(
                f"{n} calibration points are too few for level={level}; "
                f"need at least {math.ceil(level / (1 - level))}. The interval is infinite.",
                stacklevel=3)
            return np.full(scores.shape[1:], np.inf)
        return scores[k - 1]

    def interval(self, y_pred, level: float = 0.95):
        """Conformal interval `(lower, upper)` with marginal coverage >= `level`."""
        s_hat = self.score_quantile(level)
        mean, scale = self._mean_scale(y_pred)
        half = s_hat * scale
        return mean - half, mean + half

    def get_config(self) -> dict:
        return {"method": self.method, "scores": self.scores_}

    @classmethod
    def from_config(cls, config: dict) -> ConformalRegressor:
        """Rebuilds a conformal regressor; a ValueError if its scores are not `(n[, d])`, >= 0."""
        obj = cls(method=config["method"])
        if config.get("scores") is not None:
            scores = np.asarray(config["scores"], np.float64)
            cls.check_fitted_values(scores.ndim in (1, 2) and scores.shape[0] >= 1 and np.all(scores >= 0))
            obj.scores_ = scores.tolist()
        return obj


@CALIBRATORS.register("TemperatureScaling")
class TemperatureScaling(Calibrator):
    """One temperature `T` that rescales a classifier's log probabilities (Guo et al. 2017).

    Calibrated probabilities are `softmax(logits / T)`. For a `Predictive` the
    logits are the log of its posterior-averaged probabilities, so the result is
    `p^(1/T) / sum_k p_k^(1/T)` of the averaged `p` (the per-draw spread, and so
    the mutual information, is not rescaled). `T > 1` softens over-confident
    predictions. `fit` minimises the held-out NLL over `log T` (bounded search,
    `T` in `[e^-5, e^5]`); the NLL is smooth and unimodal in `1 / T`.

    Example:

    >>> ts = TemperatureScaling().fit(predictive_cal, labels_cal)  # doctest: +SKIP
    >>> probs = ts.transform(predictive_test)  # doctest: +SKIP
    """

    calibrates = frozenset({"probs"})
    fitted_attribute = "temperature_"

    def __init__(self):
        self.temperature_ = None

    @staticmethod
    def _log_probs(y_pred, from_logits):
        if isinstance(y_pred, Predictive):
            if not y_pred.is_classification:
                raise ValueError("TemperatureScaling needs a classification predictive")
            return np.log(np.maximum(y_pred.probs, 1e-300))
        if from_logits:
            logits = finite_array("y_pred", y_pred)
            if logits.ndim != 2 or logits.shape[1] < 2:
                raise ValueError(f"logits must have shape (B, K), got {logits.shape}")
            return special.log_softmax(logits, axis=1)
        return np.log(np.maximum(class_probs(y_pred), 1e-300))

    def fit(self, y_pred, y, *, from_logits: bool = False) -> TemperatureScaling:
        """Fits the temperature on held-out predictions and labels.

        Args:
            y_pred: a classification `Predictive`, probabilities `(B, K)`, or
                logits `(B, K)` with `from_logits=True`.
            y: the held-out labels (as in the predictive's `classes`, else `0..K-1`).
            from_logits: whether an array `y_pred` holds logits.
        """
        log_p = self._log_probs(y_pred, from_logits)
        target = y_pred if isinstance(y_pred, Predictive) else np.exp(log_p)
        _, index = probs_and_index(y, target)
        rows = np.arange(len(index))

        def mean_nll(log_t):
            scaled = special.log_softmax(log_p / np.exp(log_t), axis=1)
            return -np.mean(scaled[rows, index])

        result = optimize.minimize_scalar(mean_nll, bounds=(-5.0, 5.0), method="bounded",
                                          options={"xatol": 1e-6})
        self.temperature_ = float(np.exp(result.x))
        return self

    def transform(self, y_pred, *, from_logits: bool = False) -> np.ndarray:
        """Temperature-scaled class probabilities `(B, K)`."""
        self.check_fitted()
        log_p = self._log_probs(y_pred, from_logits)
        return special.softmax(log_p / self.temperature_, axis=1)

    def get_config(self) -> dict:
        return {"temperature": self.temperature_}

    @classmethod
    def from_config(cls, config: dict) -> TemperatureScaling:
        """Rebuilds a temperature scaling; a ValueError unless the temperature is positive."""
        obj = cls()
        if config.get("temperature") is not None:
            obj.temperature_ = check_positive("temperature", config["temperature"])
        return obj
