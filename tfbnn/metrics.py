"""Metrics of predictive quality: pure functions with `y_true` first.

Every metric takes the truth and a prediction. The prediction is a
`tfbnn.predictive.Predictive` or, where that makes sense, plain arrays:

* point metrics (`rmse`, `mae`) take the predictive or a point prediction;
* distributional metrics (`nll`, `crps`, `calibration_error`, ...) take the
  predictive or an explicit Gaussian `(mean, std)` tuple; the PIT-based ones
  (`pit_values`, `calibration_curve`, `calibration_error`,
  `miscalibration_area`, `coverage_curve`) also take any object with a `cdf(y)`
  method, such as a recalibrated predictive from
  `tfbnn.calibration.QuantileRecalibrator.transform`;
* interval metrics (`coverage`, `interval_width`, `interval_score`) take the
  predictive or any object with `interval(level)` (its central interval at
  `level`), or an explicit `(lower, upper)` tuple, e.g. the output of
  `tfbnn.calibration.ConformalRegressor.interval`;
* classification metrics take the predictive or class probabilities `(B, K)`,
  with labels `0..K-1`.

Regression metrics with several targets `(B, d)` average over every entry, except
`nll`, which is the joint negative log density of each example's `d` targets.
Every metric returns a Python float.

#### References

Gneiting, T. and Raftery, A. E. (2007). Strictly proper scoring rules,
prediction, and estimation. JASA 102(477).

Kuleshov, V., Fenner, N. and Ermon, S. (2018). Accurate uncertainties for deep
learning using calibrated regression. ICML.

Guo, C., Pleiss, G., Sun, Y. and Weinberger, K. Q. (2017). On calibration of
modern neural networks. ICML.
"""

from __future__ import annotations

import enum

import numpy as np
from scipy import stats

from tfbnn._options import check_option
from tfbnn.predictive import Predictive


class BinStrategy(enum.StrEnum):
    """How confidences are binned for the classification calibration errors."""

    UNIFORM = "uniform"
    """Equal-width bins on [0, 1]."""
    QUANTILE = "quantile"
    """Equal-mass bins: each holds the same number of examples (up to one)."""


class UncertaintyMeasure(enum.StrEnum):
    """Which uncertainty of a predictive `ood_auroc` ranks inputs by."""

    ENTROPY = "entropy"
    """Total predictive entropy (classification)."""
    MUTUAL_INFORMATION = "mutual_information"
    """Mutual information between label and weights: epistemic (classification)."""
    STD = "std"
    """Total predictive standard deviation (regression)."""
    EPISTEMIC_STD = "epistemic_std"
    """Standard deviation of the posterior draws' means (regression)."""


# -- input handling ---------------------------------------------------------------


def _finite(name, values, allow_scalar=False) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numeric, got {type(values).__name__}") from None
    if array.ndim == 0 and not allow_scalar:
        raise ValueError(f"{name} must be an array with one entry per example, got a scalar")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def _check_level(level) -> float:
    level = float(level)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be strictly between 0 and 1, got {level!r}")
    return level


def _match(y_true, target, name="y_pred"):
    """`y_true` as an array of `target`'s shape; errors name both lengths."""
    y = _finite("y_true", y_true)
    target = np.asarray(target)
    if y.shape[0] != target.shape[0]:
        raise ValueError(
            f"y_true has {y.shape[0]} examples but {name} has {target.shape[0]}")
    if y.shape != target.shape:
        if y.size != target.size:
            raise ValueError(f"y_true has shape {y.shape} but {name} has shape {target.shape}")
        y = y.reshape(target.shape)  # (B,) against (B, 1) and back
    return y


def _regression(y_pred, metric):
    if getattr(y_pred, "is_classification", False):
        raise ValueError(f"{metric} is a regression metric; got a classification predictive")
    return y_pred


def _point(y_pred, metric) -> np.ndarray:
    if isinstance(_regression(y_pred, metric), Predictive):
        return _finite("the predictive mean", y_pred.mean)  # NaN after a diverged fit
    return _finite("y_pred", y_pred)


def _pair(y_pred, names, metric):
    """The two arrays of an explicit `(a, b)` tuple, checked and broadcast."""
    if not isinstance(y_pred, tuple) or len(y_pred) != 2:
        raise ValueError(
            f"{metric} takes a Predictive or a ({names[0]}, {names[1]}) tuple, "
            f"got {type(y_pred).__name__}")
    a, b = (_finite(name, v, allow_scalar=True) for name, v in zip(names, y_pred, strict=True))
    try:
        a, b = np.broadcast_arrays(a, b)  # a scalar std (or bound) applies to every example
    except ValueError:
        raise ValueError(
            f"{names[0]} has shape {a.shape} but {names[1]} has shape {b.shape}") from None
    if a.ndim == 0:
        raise ValueError(f"{names[0]} and {names[1]} are both scalars; expected arrays")
    return a, b


def _mean_std(y_pred, metric):
    if isinstance(_regression(y_pred, metric), Predictive):
        return (_finite("the predictive mean", y_pred.mean),
                _finite("the predictive std", y_pred.std))
    mean, std = _pair(y_pred, ("mean", "std"), metric)
    if np.any(std <= 0):
        raise ValueError("std must be positive")
    return mean, std


def _bounds(y_pred, level, metric):
    if not isinstance(y_pred, tuple) and hasattr(_regression(y_pred, metric), "interval"):
        lower, upper = y_pred.interval(_check_level(level))
        return np.asarray(lower, np.float64), np.asarray(upper, np.float64)
    lower, upper = _pair(y_pred, ("lower", "upper"), metric)
    if np.any(lower > upper):
        raise ValueError("lower exceeds upper for some examples; expected (lower, upper)")
    return lower, upper


def _predictive_y(y_true, predictive):
    """`y_true` in the shape the predictive expects (its mean's shape)."""
    return _match(y_true, predictive.mean, "the predictive")


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
    if isinstance(_regression(y_pred, "pit_values"), Predictive):
        return np.asarray(y_pred.cdf(_predictive_y(y_true, y_pred)), np.float64)
    if not isinstance(y_pred, tuple) and hasattr(y_pred, "cdf"):
        return np.asarray(y_pred.cdf(_finite("y_true", y_true)), np.float64)
    mean, std = _mean_std(y_pred, "pit_values")
    return stats.norm.cdf(_match(y_true, mean), mean, std)


# -- regression -------------------------------------------------------------------


def rmse(y_true, y_pred) -> float:
    """Root mean squared error of the predictive mean (or of a point prediction).

    >>> rmse([1.0, 2.0, 3.0], [1.0, 2.0, 5.0])  # sqrt(4 / 3)
    1.1547005383792515
    """
    pred = _point(y_pred, "rmse")
    return float(np.sqrt(np.mean((_match(y_true, pred) - pred) ** 2)))


def mae(y_true, y_pred) -> float:
    """Mean absolute error of the predictive mean (or of a point prediction)."""
    pred = _point(y_pred, "mae")
    return float(np.mean(np.abs(_match(y_true, pred) - pred)))


def nll(y_true, y_pred) -> float:
    """Mean negative log predictive density (regression) or probability (classification).

    Args:
        y_true: targets, or class labels for classification.
        y_pred: a `Predictive` (uses its exact mixture `log_prob`, whatever the
            likelihood), a Gaussian `(mean, std)` tuple, or class probabilities
            `(B, K)` for labels `0..K-1`.
    """
    if isinstance(y_pred, Predictive):
        if y_pred.is_classification:
            labels = np.asarray(y_true).reshape(-1)
            _check_rows(labels, y_pred.probs.shape[0])
            return float(-np.mean(y_pred.log_prob(labels)))
        return float(-np.mean(y_pred.log_prob(_predictive_y(y_true, y_pred))))
    if isinstance(y_pred, tuple):
        mean, std = _mean_std(y_pred, "nll")
        logpdf = stats.norm.logpdf(_match(y_true, mean), mean, std)
        return float(-np.mean(logpdf.reshape(len(logpdf), -1).sum(axis=1)))
    probs, index = _probs_and_index(y_true, y_pred)
    chosen = probs[np.arange(len(index)), index]
    return float(-np.mean(np.log(np.maximum(chosen, 1e-300))))


def crps_gaussian(y_true, mean, std) -> np.ndarray:
    """Closed-form CRPS of `Normal(mean, std)` at each target (no averaging).

    #### Mathematical details

    With `z = (y - mean) / std`:
    `CRPS = std * (z (2 Phi(z) - 1) + 2 phi(z) - 1 / sqrt(pi))`.

    >>> crps_gaussian([0.0], [0.0], [1.0]).round(4)  # (sqrt(2) - 1) / sqrt(pi)
    array([0.2337])
    """
    mean, std = _mean_std((mean, std), "crps_gaussian")
    z = (_match(y_true, mean) - mean) / std
    return std * (z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / np.sqrt(np.pi))


def crps_samples(y_true, samples) -> np.ndarray:
    """Unbiased sample estimate of the CRPS at each target (no averaging).

    #### Mathematical details

    The energy form `CRPS(F, y) = E|X - y| - E|X - X'| / 2`, with the second
    expectation estimated over distinct pairs, `1 / (S (S - 1))` times the sum
    over `i != j` of `|x_i - x_j|`, which is unbiased for any `S >= 2`. The pair
    sum is computed in `O(S log S)` from the sorted draws:
    `sum_{i<j} (x_(j) - x_(i)) = sum_k (2k - S - 1) x_(k)`.

    Args:
        y_true: targets, `(B,)` or `(B, d)`.
        samples: `(S, B)` or `(S, B, d)` draws from the predictive.
    """
    samples = _finite("samples", samples)
    s = samples.shape[0]
    if s < 2 or samples.ndim < 2:
        raise ValueError(f"samples must have shape (S, B[, d]) with S >= 2, got {samples.shape}")
    y = _match(y_true, samples[0], "samples")
    spread = np.mean(np.abs(samples - y[None]), axis=0)
    ranks = 2.0 * np.arange(1, s + 1) - s - 1
    ranks = ranks.reshape((s,) + (1,) * (samples.ndim - 1))
    pair_sum = np.sum(ranks * np.sort(samples, axis=0), axis=0)  # sum over i < j
    return spread - pair_sum / (s * (s - 1))


def crps(y_true, y_pred) -> float:
    """Mean continuous ranked probability score (lower is better; same units as y).

    Args:
        y_true: targets, `(B,)` or `(B, d)`.
        y_pred: a regression `Predictive`, scored from its `samples` with the
            unbiased energy form (`crps_samples`; one draw per posterior draw, so
            the estimate is noisier for few draws), or a Gaussian `(mean, std)`
            tuple, scored in closed form (`crps_gaussian`).
    """
    if isinstance(_regression(y_pred, "crps"), Predictive):
        samples = np.asarray(y_pred.samples, np.float64)
        return float(np.mean(crps_samples(_predictive_y(y_true, y_pred), samples)))
    mean, std = _mean_std(y_pred, "crps")
    return float(np.mean(crps_gaussian(y_true, mean, std)))


def coverage(y_true, y_pred, level: float = 0.95) -> float:
    """Prediction interval coverage probability (PICP): the fraction of targets inside.

    Args:
        y_true: targets.
        y_pred: a regression `Predictive` (its central interval at `level`) or a
            `(lower, upper)` tuple (then `level` is not used).
        level: nominal level of the predictive's central interval, in (0, 1).
    """
    lower, upper = _bounds(y_pred, level, "coverage")
    y = _match(y_true, lower, "the interval")
    return float(np.mean((y >= lower) & (y <= upper)))


def interval_width(y_true, y_pred, level: float = 0.95) -> float:
    """Mean width of the central interval (`y_true` is only checked, for one signature)."""
    lower, upper = _bounds(y_pred, level, "interval_width")
    _match(y_true, lower, "the interval")
    return float(np.mean(upper - lower))


def interval_score(y_true, y_pred, level: float = 0.95) -> float:
    """Mean interval score of a central `level` interval (Gneiting & Raftery 2007, eq. 43).

    #### Mathematical details

    With `alpha = 1 - level`: `(u - l) + (2 / alpha) (l - y) 1{y < l}
    + (2 / alpha) (y - u) 1{y > u}`. Proper for the `alpha/2` and `1 - alpha/2`
    quantiles; lower is better.

    >>> interval_score([0.0, 3.0], ([-1.0, -1.0], [1.0, 1.0]), level=0.5)  # (2 + 2 + 4 * 2) / 2
    6.0

    Args:
        y_true: targets.
        y_pred: a regression `Predictive` or a `(lower, upper)` tuple.
        level: the interval's nominal level, used by the penalty in both cases.
    """
    alpha = 1.0 - _check_level(level)
    lower, upper = _bounds(y_pred, level, "interval_score")
    y = _match(y_true, lower, "the interval")
    below = np.maximum(lower - y, 0.0)
    above = np.maximum(y - upper, 0.0)
    return float(np.mean(upper - lower + 2.0 / alpha * (below + above)))


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
    pit = pit_values(y_true, y_pred).reshape(-1)
    observed = np.mean(pit[None, :] <= expected[:, None], axis=1)
    return expected, observed


def _levels(levels):
    levels = _DEFAULT_LEVELS if levels is None else _finite("levels", levels).reshape(-1)
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
    levels = np.sort(_finite("levels", levels).reshape(-1))
    for level in levels:
        _check_level(level)
    if isinstance(y_pred, Predictive) and y_pred.likelihood.is_discrete:
        return levels, np.array([coverage(y_true, y_pred, level) for level in levels])
    pit = pit_values(y_true, y_pred).reshape(-1)
    inside = np.abs(pit[None, :] - 0.5) <= levels[:, None] / 2
    return levels, inside.mean(axis=1)


def calibration_error(y_true, y_pred, levels=None) -> float:
    """Quantile calibration error: mean |observed - expected| over a grid of levels.

    Args:
        y_true: targets.
        y_pred: a regression `Predictive` or a Gaussian `(mean, std)` tuple.
        levels: probabilities in [0, 1] (default 0.01, 0.02, ..., 0.99).
    """
    expected, observed = calibration_curve(y_true, y_pred, levels)
    return float(np.mean(np.abs(observed - expected)))


def miscalibration_area(y_true, y_pred, levels=None) -> float:
    """Area between the calibration curve and the diagonal on [0, 1] (trapezoid rule).

    The curve is anchored at (0, 0) and (1, 1). 0 is perfect; 0.5 is the worst.
    """
    expected, observed = calibration_curve(y_true, y_pred, levels)
    expected = np.concatenate([[0.0], expected, [1.0]])
    observed = np.concatenate([[0.0], observed, [1.0]])
    return float(np.trapezoid(np.abs(observed - expected), expected))


def sharpness(y_pred) -> float:
    """Root mean predictive variance, `sqrt(mean(var))`: smaller is sharper.

    Args:
        y_pred: a regression `Predictive` or an array of predictive standard deviations.
    """
    if isinstance(_regression(y_pred, "sharpness"), Predictive):
        var = np.asarray(y_pred.var)
    else:
        std = _finite("std", y_pred)
        if np.any(std < 0):
            raise ValueError("std must be non-negative")
        var = std**2
    return float(np.sqrt(np.mean(var)))


# -- classification ---------------------------------------------------------------


def _check_rows(labels, n):
    if labels.shape[0] != n:
        raise ValueError(f"y_true has {labels.shape[0]} examples but y_pred has {n}")


def _class_probs(y_pred) -> np.ndarray:
    """Validated class probabilities from an array `(B, K)`."""
    probs = _finite("y_pred", y_pred)
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise ValueError(f"class probabilities must have shape (B, K), got {probs.shape}")
    if np.any(probs < 0) or not np.allclose(probs.sum(axis=1), 1.0, atol=1e-4):
        raise ValueError("class probabilities must be non-negative and sum to 1 per row")
    return probs


def _probs_and_index(y_true, y_pred):
    """Class probabilities `(B, K)` and the true labels' column indices `(B,)`."""
    if isinstance(y_pred, Predictive):
        if not y_pred.is_classification:
            raise ValueError("a classification metric needs a classification predictive")
        probs, classes = y_pred.probs, y_pred.classes
    else:
        probs = _class_probs(y_pred)
        classes = np.arange(probs.shape[1])
    labels = np.asarray(y_true).reshape(-1)
    _check_rows(labels, probs.shape[0])
    if labels.dtype.kind == "f" and np.any(np.isnan(labels)):
        raise ValueError("y_true contains NaN values")
    lookup = {label: i for i, label in enumerate(np.asarray(classes).tolist())}
    try:
        index = np.array([lookup[label] for label in labels.tolist()], dtype=int)
    except KeyError as err:
        raise ValueError(
            f"Unknown class label {err.args[0]!r} in y_true; known: {list(lookup)}") from None
    return probs, index


def accuracy(y_true, y_pred) -> float:
    """Fraction of correct labels.

    Args:
        y_true: class labels.
        y_pred: a classification `Predictive`, probabilities `(B, K)`, or predicted
            labels `(B,)`.
    """
    if not isinstance(y_pred, Predictive) and np.ndim(y_pred) == 1:
        labels, predicted = np.asarray(y_true).reshape(-1), np.asarray(y_pred)
        _check_rows(labels, predicted.shape[0])
        return float(np.mean(labels == predicted))
    probs, index = _probs_and_index(y_true, y_pred)
    return float(np.mean(probs.argmax(axis=1) == index))


def brier_score(y_true, y_pred) -> float:
    """Multi-class Brier score, `mean_i sum_k (p_ik - 1{y_i = k})^2`, in [0, 2].

    For two classes this is twice scikit-learn's binary `brier_score_loss`.

    >>> brier_score([0, 1], [[0.8, 0.2], [0.5, 0.5]])  # (0.08 + 0.5) / 2
    0.29
    """
    probs, index = _probs_and_index(y_true, y_pred)
    onehot = np.zeros_like(probs)
    onehot[np.arange(len(index)), index] = 1.0
    return float(np.mean(np.sum((probs - onehot) ** 2, axis=1)))


def reliability_bins(y_true, y_pred, n_bins: int = 10, strategy: str = "uniform"):
    """Bins examples by confidence (the top class probability), as in a reliability diagram.

    Args:
        y_true: class labels.
        y_pred: a classification `Predictive` or probabilities `(B, K)`.
        n_bins: number of bins, >= 1.
        strategy: `"uniform"` (equal-width bins on [0, 1], each `(lo, hi]`) or
            `"quantile"` (equal-mass: sorted confidences split into `n_bins`
            groups of equal size, up to one).

    Returns:
        A dict of arrays over the non-empty bins: `confidence` (mean top
        probability), `accuracy`, `count`, `bin` (the bin's index); and `edges`,
        bin `i` spanning `edges[i]` to `edges[i + 1]` (for `"quantile"`, the
        smallest confidence of each bin followed by the largest overall).
    """
    strategy = check_option("strategy", strategy, [s.value for s in BinStrategy])
    if isinstance(n_bins, bool) or int(n_bins) != n_bins or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    n_bins = int(n_bins)
    probs, index = _probs_and_index(y_true, y_pred)
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == index).astype(np.float64)
    if strategy == BinStrategy.UNIFORM:
        edges = np.linspace(0.0, 1.0, n_bins + 1)
        bin_of = np.searchsorted(edges[1:-1], confidence, side="left")
    else:
        groups = np.array_split(np.argsort(confidence, kind="stable"), n_bins)
        bin_of = np.empty(len(confidence), dtype=int)
        for b, members in enumerate(groups):
            bin_of[members] = b
        starts = [confidence[members].min() for members in groups if len(members)]
        edges = np.array(starts + [confidence.max()])
    count = np.bincount(bin_of, minlength=n_bins)
    keep = count > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(bin_of, confidence, n_bins) / count
        mean_acc = np.bincount(bin_of, correct, n_bins) / count
    return {"confidence": mean_conf[keep], "accuracy": mean_acc[keep],
            "count": count[keep], "bin": np.flatnonzero(keep), "edges": edges}


def expected_calibration_error(y_true, y_pred, n_bins: int = 10,
                               strategy: str = "uniform") -> float:
    """ECE: `sum_b (n_b / n) |accuracy_b - confidence_b|` (Guo et al. 2017).

    Args:
        y_true: class labels.
        y_pred: a classification `Predictive` or probabilities `(B, K)`.
        n_bins: number of confidence bins.
        strategy: `"uniform"` or `"quantile"` bins (see `reliability_bins`).
    """
    bins = reliability_bins(y_true, y_pred, n_bins, strategy)
    weights = bins["count"] / bins["count"].sum()
    return float(np.sum(weights * np.abs(bins["accuracy"] - bins["confidence"])))


def maximum_calibration_error(y_true, y_pred, n_bins: int = 10,
                              strategy: str = "uniform") -> float:
    """MCE: the largest `|accuracy_b - confidence_b|` over non-empty bins."""
    bins = reliability_bins(y_true, y_pred, n_bins, strategy)
    return float(np.max(np.abs(bins["accuracy"] - bins["confidence"])))


def _uncertainty(values, measure, name):
    if not isinstance(values, Predictive):
        return _finite(name, values).reshape(-1)
    if measure is None:
        measure = "entropy" if values.is_classification else "std"
    measure = check_option("measure", measure, [m.value for m in UncertaintyMeasure])
    if values.is_classification != (measure in ("entropy", "mutual_information")):
        kind = "classification" if values.is_classification else "regression"
        raise ValueError(f"measure={measure!r} does not apply to a {kind} predictive")
    if measure == UncertaintyMeasure.EPISTEMIC_STD:
        return np.sqrt(np.asarray(values.epistemic_var)).reshape(len(values.mean), -1).mean(1)
    result = np.asarray(getattr(values, measure))
    return result.reshape(len(result), -1).mean(axis=1)


def ood_auroc(uncertainty_in, uncertainty_out, measure: str | None = None) -> float:
    """AUROC of separating out-of-distribution inputs from in-distribution ones by uncertainty.

    Out-of-distribution inputs are the positive class and higher uncertainty
    should mean "more likely OOD": 0.5 is chance, 1.0 perfect separation.

    Args:
        uncertainty_in: uncertainties on in-distribution inputs, `(n_in,)`, or a
            `Predictive` on those inputs.
        uncertainty_out: the same on out-of-distribution inputs.
        measure: for predictives, `"entropy"` (default for classification),
            `"mutual_information"`, `"std"` (default for regression) or
            `"epistemic_std"`; averaged over targets when there are several.
    """
    from sklearn.metrics import roc_auc_score

    scores_in = _uncertainty(uncertainty_in, measure, "uncertainty_in")
    scores_out = _uncertainty(uncertainty_out, measure, "uncertainty_out")
    if scores_in.size == 0 or scores_out.size == 0:
        raise ValueError("ood_auroc needs at least one in- and one out-of-distribution input")
    labels = np.concatenate([np.zeros(scores_in.size), np.ones(scores_out.size)])
    return float(roc_auc_score(labels, np.concatenate([scores_in, scores_out])))


# -- everything at once -----------------------------------------------------------


def evaluate(model_or_predictive, X=None, y=None, *, level: float = 0.95) -> dict:
    """Every metric that applies, as a dict of floats.

    Args:
        model_or_predictive: a `Predictive`, or a model with
            `predict_distribution(X)` returning one.
        X: inputs, for a model only.
        y: targets (regression) or labels (classification).
        level: nominal level of the interval metrics.

    Returns:
        Regression: `rmse`, `mae`, `nll`, `crps`, `coverage`, `interval_width`,
        `interval_score`, `calibration_error`, `miscalibration_area`,
        `sharpness` and `level`. Classification: `accuracy`, `nll`,
        `brier_score`, `ece`, `mce`, `mean_entropy`, `mean_mutual_information`.
    """
    level = _check_level(level)
    if y is None:
        raise ValueError("evaluate needs the targets y")
    if isinstance(model_or_predictive, Predictive):
        if X is not None:
            raise ValueError("X is only used with a model; got a Predictive and X")
        predictive = model_or_predictive
    elif hasattr(model_or_predictive, "predict_distribution"):
        if X is None:
            raise ValueError("evaluate needs X to predict with a model")
        predictive = model_or_predictive.predict_distribution(X)
    else:
        raise TypeError(
            "evaluate takes a Predictive or a model with predict_distribution(X), "
            f"got {type(model_or_predictive).__name__}")
    if predictive.is_classification:
        return {
            "accuracy": accuracy(y, predictive),
            "nll": nll(y, predictive),
            "brier_score": brier_score(y, predictive),
            "ece": expected_calibration_error(y, predictive),
            "mce": maximum_calibration_error(y, predictive),
            "mean_entropy": float(np.mean(predictive.entropy)),
            "mean_mutual_information": float(np.mean(predictive.mutual_information)),
        }
    y = _predictive_y(y, predictive)
    bounds = tuple(np.asarray(b) for b in predictive.interval(level))  # computed once
    return {
        "rmse": rmse(y, predictive),
        "mae": mae(y, predictive),
        "nll": nll(y, predictive),
        "crps": crps(y, predictive),
        "coverage": coverage(y, bounds),
        "interval_width": interval_width(y, bounds),
        "interval_score": interval_score(y, bounds, level),
        "calibration_error": calibration_error(y, predictive),
        "miscalibration_area": miscalibration_area(y, predictive),
        "sharpness": sharpness(predictive),
        "level": level,
    }
