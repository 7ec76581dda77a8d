"""Regression metrics: point errors, intervals, PIT calibration and sharpness.

Point metrics (`rmse`, `mae`) take a `Predictive` or a point prediction; the
PIT-based ones (`pit_values`, `calibration_curve`, `calibration_error`,
`miscalibration_area`, `coverage_curve`) a `Predictive`, a Gaussian
`(mean, std)` tuple or any object with a `cdf(y)` method; the interval ones
(`coverage`, `interval_width`) a `Predictive`, anything with `interval(level)`,
or a `(lower, upper)` tuple. With several targets `(B, d)` they average over
every entry.

#### References

Kuleshov, V., Fenner, N. and Ermon, S. (2018). Accurate uncertainties for deep
learning using calibrated regression. ICML.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from tfbnn.metrics.inputs import (
    bounds,
    match_targets,
    mean_std,
    point,
    predictive_targets,
    require_regression,
)
from tfbnn.predictive import Predictive
from tfbnn.validation import check_level, finite_array


def pit_values(y_true, y_pred) -> np.ndarray:
    """Probability integral transform: the predictive CDF at the truth.

    Args:
        y_true: targets, `(B,)` or `(B, d)`.
        y_pred: a regression `Predictive`, a Gaussian `(mean, std)` tuple, or any
            object with a `cdf(y)` method (e.g. `QuantileRecalibrator.transform`'s
            recalibrated predictive).

    Returns:
        An array shaped like the predictions; uniform on [0, 1] when calibrated.
    """
    if isinstance(require_regression(y_pred, "pit_values"), Predictive):
        return np.asarray(y_pred.cdf(predictive_targets(y_true, y_pred)), np.float64)
    if not isinstance(y_pred, tuple) and hasattr(y_pred, "cdf"):
        return np.asarray(y_pred.cdf(finite_array("y_true", y_true)), np.float64)
    mean, std = mean_std(y_pred, "pit_values")
    return stats.norm.cdf(match_targets(y_true, mean), mean, std)


def rmse(y_true, y_pred) -> float:
    """Root mean squared error of the predictive mean (or of a point prediction).

    >>> rmse([1.0, 2.0, 3.0], [1.0, 2.0, 5.0])  # sqrt(4 / 3)
    1.1547005383792515
    """
    pred = point(y_pred, "rmse")
    return float(np.sqrt(np.mean((match_targets(y_true, pred) - pred) ** 2)))


def mae(y_true, y_pred) -> float:
    """Mean absolute error of the predictive mean (or of a point prediction)."""
    pred = point(y_pred, "mae")
    return float(np.mean(np.abs(match_targets(y_true, pred) - pred)))


def coverage(y_true, y_pred, level: float = 0.95) -> float:
    """Prediction interval coverage probability (PICP): the fraction of targets inside.

    Args:
        y_true: targets.
        y_pred: a regression `Predictive` (its central interval at `level`) or a
            `(lower, upper)` tuple (then `level` is not used).
        level: nominal level of the predictive's central interval, in (0, 1).
    """
    lower, upper = bounds(y_pred, level, "coverage")
    y = match_targets(y_true, lower, "the interval")
    return float(np.mean((y >= lower) & (y <= upper)))


def interval_width(y_true, y_pred, level: float = 0.95) -> float:
    """Mean width of the central interval (`y_true` is only checked, for one signature)."""
    lower, upper = bounds(y_pred, level, "interval_width")
    match_targets(y_true, lower, "the interval")
    return float(np.mean(upper - lower))


_DEFAULT_LEVELS = np.linspace(0.01, 0.99, 99)


def calibration_curve(y_true, y_pred, levels=None):
    """Expected against observed proportions of targets below each predictive quantile.

    A target lies below the `p`-quantile exactly when its PIT value is at most
    `p`, so the observed proportion at `p` is `mean(PIT <= p)` (Kuleshov et al.
    2018). A calibrated model lies on the diagonal.

    Args:
        y_true: targets.
        y_pred: a regression `Predictive` or a Gaussian `(mean, std)` tuple.
        levels: probabilities in [0, 1] (default 0.01, 0.02, ..., 0.99).

    Returns:
        `(expected, observed)`, two arrays of the levels' length.
    """
    expected = _levels(levels)
    return expected, _share_at_most(pit_values(y_true, y_pred).reshape(-1), expected)


def _share_at_most(values, thresholds):
    """The fraction of `values` at most each threshold (by sorting, so no array of
    thresholds x values is made)."""
    return np.searchsorted(np.sort(values), thresholds, side="right") / values.size


def _levels(levels):
    levels = _DEFAULT_LEVELS if levels is None else finite_array("levels", levels).reshape(-1)
    if levels.size == 0 or np.any((levels < 0) | (levels > 1)):
        raise ValueError(f"levels must be probabilities in [0, 1], got {levels!r}")
    return np.sort(levels)


def coverage_curve(y_true, y_pred, levels=None):
    """Empirical coverage of the central intervals at several nominal levels.

    For a continuous predictive, `y` lies in the central `l` interval exactly
    when `|PIT - 1/2| <= l / 2`, so one CDF evaluation serves every level; for a
    discrete likelihood (e.g. Poisson) each interval is computed.

    Args:
        y_true: targets.
        y_pred: a regression `Predictive` or a Gaussian `(mean, std)` tuple.
        levels: nominal levels in (0, 1) (default 0.05, 0.10, ..., 0.95).

    Returns:
        `(levels, observed)`.
    """
    if levels is None:
        levels = np.linspace(0.05, 0.95, 19)
    levels = np.sort(finite_array("levels", levels).reshape(-1))
    for level in levels:
        check_level(level)
    if isinstance(y_pred, Predictive) and y_pred.likelihood.is_discrete:
        return levels, np.array([coverage(y_true, y_pred, level) for level in levels])
    pit = pit_values(y_true, y_pred).reshape(-1)
    return levels, _share_at_most(np.abs(pit - 0.5), levels / 2)


def calibration_error(y_true, y_pred, levels=None) -> float:
    """Quantile calibration error: mean |observed - expected| over a grid of levels.

    Args:
        y_true: targets.
        y_pred: a regression `Predictive` or a Gaussian `(mean, std)` tuple.
        levels: probabilities in [0, 1] (default 0.01, 0.02, ..., 0.99).
    """
    return calibration_error_of_curve(*calibration_curve(y_true, y_pred, levels))


def calibration_error_of_curve(expected, observed) -> float:
    """`calibration_error` from a calibration curve (`calibration_curve`'s two arrays)."""
    return float(np.mean(np.abs(np.asarray(observed) - expected)))


def miscalibration_area(y_true, y_pred, levels=None) -> float:
    """Area between the calibration curve and the diagonal on [0, 1] (trapezoid rule).

    The curve is anchored at (0, 0) and (1, 1). 0 is perfect; 0.5 is the worst.
    """
    return miscalibration_area_of_curve(*calibration_curve(y_true, y_pred, levels))


def miscalibration_area_of_curve(expected, observed) -> float:
    """`miscalibration_area` from a calibration curve (`calibration_curve`'s two arrays)."""
    expected = np.concatenate([[0.0], expected, [1.0]])
    observed = np.concatenate([[0.0], observed, [1.0]])
    return float(np.trapezoid(np.abs(observed - expected), expected))


def sharpness(y_pred) -> float:
    """Root mean predictive variance, `sqrt(mean(var))`: smaller is sharper.

    Args:
        y_pred: a regression `Predictive` or an array of predictive standard deviations.
    """
    if isinstance(require_regression(y_pred, "sharpness"), Predictive):
        var = np.asarray(y_pred.var)
    else:
        std = finite_array("std", y_pred)
        if np.any(std < 0):
            raise ValueError("std must be non-negative")
        var = std**2
    return float(np.sqrt(np.mean(var)))
