"""The inputs every metric accepts, checked and put into one shape.

A metric takes the truth and a prediction; the prediction is a
`tfbnn.predictive.Predictive` or, where that makes sense, plain arrays or tuples.
These functions turn each accepted form into validated float arrays, with errors
that name the metric and the offending argument. `tfbnn.calibration` and
`tfbnn.plotting` accept the same forms through them.
"""

from __future__ import annotations

import numpy as np

from tfbnn.predictive import Predictive, label_index
from tfbnn.validation import check_level, finite_array

NO_EXAMPLES = "y_true holds no examples: a metric needs at least one"


def match_targets(y_true, target, name="y_pred") -> np.ndarray:
    """`y_true` as an array of `target`'s shape; errors name both lengths.

    `(B,)` targets against `(B, 1)` predictions (and back) are reshaped.
    """
    y = finite_array("y_true", y_true)
    if y.size == 0:
        raise ValueError(NO_EXAMPLES)
    target = np.asarray(target)
    if y.shape[0] != target.shape[0]:
        raise ValueError(
            f"y_true has {y.shape[0]} examples but {name} has {target.shape[0]}")
    if y.shape != target.shape:
        if y.size != target.size:
            raise ValueError(f"y_true has shape {y.shape} but {name} has shape {target.shape}")
        y = y.reshape(target.shape)
    return y


def predictive_targets(y_true, predictive) -> np.ndarray:
    """`y_true` in the shape a regression predictive expects (its mean's shape)."""
    return match_targets(y_true, predictive.mean, "the predictive")


def require_regression(y_pred, metric: str):
    """`y_pred`, unless it is a classification predictive (then a ValueError naming `metric`)."""
    if getattr(y_pred, "is_classification", False):
        raise ValueError(f"{metric} is a regression metric; got a classification predictive")
    return y_pred


def point(y_pred, metric: str) -> np.ndarray:
    """A point prediction: the predictive mean, or the array given."""
    if isinstance(require_regression(y_pred, metric), Predictive):
        return finite_array("the predictive mean", y_pred.mean)  # NaN after a diverged fit
    return finite_array("y_pred", y_pred)


def _pair(y_pred, names, metric):
    """The two arrays of an explicit `(a, b)` tuple, checked and broadcast."""
    if not isinstance(y_pred, tuple) or len(y_pred) != 2:
        raise ValueError(
            f"{metric} takes a Predictive or a ({names[0]}, {names[1]}) tuple, "
            f"got {type(y_pred).__name__}")
    a, b = (finite_array(name, v, allow_scalar=True)
            for name, v in zip(names, y_pred, strict=True))
    try:
        a, b = np.broadcast_arrays(a, b)  # a scalar std (or bound) applies to every example
    except ValueError:
        raise ValueError(
            f"{names[0]} has shape {a.shape} but {names[1]} has shape {b.shape}") from None
    if a.ndim == 0:
        raise ValueError(f"{names[0]} and {names[1]} are both scalars; expected arrays")
    return a, b


def mean_std(y_pred, metric: str):
    """`(mean, std)` of a regression predictive or of a Gaussian `(mean, std)` tuple."""
    if isinstance(require_regression(y_pred, metric), Predictive):
        return (finite_array("the predictive mean", y_pred.mean),
                finite_array("the predictive std", y_pred.std))
    mean, std = _pair(y_pred, ("mean", "std"), metric)
    if np.any(std <= 0):
        raise ValueError("std must be positive")
    return mean, std


def bounds(y_pred, level: float, metric: str):
    """`(lower, upper)`: the central `level` interval of anything with `interval(level)`,
    or an explicit `(lower, upper)` tuple (then `level` is not used)."""
    if not isinstance(y_pred, tuple) and hasattr(require_regression(y_pred, metric), "interval"):
        lower, upper = y_pred.interval(check_level(level))
        return np.asarray(lower, np.float64), np.asarray(upper, np.float64)
    lower, upper = _pair(y_pred, ("lower", "upper"), metric)
    if np.any(lower > upper):
        raise ValueError("lower exceeds upper for some examples; expected (lower, upper)")
    return lower, upper


def check_rows(labels: np.ndarray, n: int) -> None:
    """A ValueError unless there are `n` labels, one per prediction, and at least one."""
    if labels.shape[0] == 0:
        raise ValueError(NO_EXAMPLES)
    if labels.shape[0] != n:
        raise ValueError(f"y_true has {labels.shape[0]} examples but y_pred has {n}")


def class_probs(y_pred) -> np.ndarray:
    """Validated class probabilities from an array `(B, K)`: non-negative, rows summing to 1."""
    probs = finite_array("y_pred", y_pred)
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise ValueError(f"class probabilities must have shape (B, K), got {probs.shape}")
    if np.any(probs < 0) or not np.allclose(probs.sum(axis=1), 1.0, atol=1e-4):
        raise ValueError("class probabilities must be non-negative and sum to 1 per row")
    return probs


def probs_and_index(y_true, y_pred):
    """Class probabilities `(B, K)` and the true labels' column indices `(B,)`.

    `y_pred` is a classification `Predictive` (labels as in its `classes`) or
    probabilities `(B, K)` (labels `0..K-1`).
    """
    if isinstance(y_pred, Predictive):
        if not y_pred.is_classification:
            raise ValueError("a classification metric needs a classification predictive")
        probs, classes = y_pred.probs, y_pred.classes
    else:
        probs = class_probs(y_pred)
        classes = np.arange(probs.shape[1])
    labels = np.asarray(y_true).reshape(-1)
    check_rows(labels, probs.shape[0])
    if labels.dtype.kind == "f" and np.any(np.isnan(labels)):
        raise ValueError("y_true contains NaN values")
    return probs, label_index(labels, classes)
