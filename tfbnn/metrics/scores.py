"""Proper scoring rules: the negative log predictive density, the CRPS and the interval score.

#### References

Gneiting, T. and Raftery, A. E. (2007). Strictly proper scoring rules,
prediction, and estimation. JASA 102(477).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from tfbnn.metrics.inputs import (
    bounds,
    check_rows,
    match_targets,
    mean_std,
    predictive_targets,
    probs_and_index,
    require_regression,
)
from tfbnn.predictive import Predictive
from tfbnn.validation import check_level, finite_array


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
            check_rows(labels, y_pred.probs.shape[0])
            return float(-np.mean(y_pred.log_prob(labels)))
        return float(-np.mean(y_pred.log_prob(predictive_targets(y_true, y_pred))))
    if isinstance(y_pred, tuple):
        mean, std = mean_std(y_pred, "nll")
        logpdf = stats.norm.logpdf(match_targets(y_true, mean), mean, std)
        return float(-np.mean(logpdf.reshape(len(logpdf), -1).sum(axis=1)))
    probs, index = probs_and_index(y_true, y_pred)
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
    mean, std = mean_std((mean, std), "crps_gaussian")
    z = (match_targets(y_true, mean) - mean) / std
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
    samples = finite_array("samples", samples)
    s = samples.shape[0]
    if s < 2 or samples.ndim < 2:
        raise ValueError(f"samples must have shape (S, B[, d]) with S >= 2, got {samples.shape}")
    y = match_targets(y_true, samples[0], "samples")
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
            unbiased energy form (`predictive_crps`; one draw per posterior draw, so
            the estimate is noisier for few draws), or a Gaussian `(mean, std)`
            tuple, scored in closed form (`crps_gaussian`).
    """
    if isinstance(require_regression(y_pred, "crps"), Predictive):
        return float(np.mean(predictive_crps(y_true, y_pred)))
    mean, std = mean_std(y_pred, "crps")
    return float(np.mean(crps_gaussian(y_true, mean, std)))


def predictive_crps(y_true, predictive: Predictive, rng=None) -> np.ndarray:
    """`crps_samples` of a regression `Predictive` at each target, a block of inputs at a time.

    The draws are `predictive.draw(rng)` (its `samples` for `rng=None`); with one
    generator passed to the consecutive parts of a data set, they are the draws of
    the whole, so the scores are too.

    Args:
        y_true: targets, shaped as the predictive's mean.
        predictive: a regression `Predictive`.
        rng: a `numpy.random.Generator` (or a seed); None uses the predictive's `seed`.
    """
    y = predictive_targets(y_true, require_regression(predictive, "crps"))
    rng = np.random.default_rng(predictive.seed if rng is None else rng)
    return np.concatenate([crps_samples(y[rows], predictive.draw(rng, rows))
                           for rows in predictive.row_blocks()])


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
    alpha = 1.0 - check_level(level)
    lower, upper = bounds(y_pred, level, "interval_score")
    y = match_targets(y_true, lower, "the interval")
    below = np.maximum(lower - y, 0.0)
    above = np.maximum(y - upper, 0.0)
    return float(np.mean(upper - lower + 2.0 / alpha * (below + above)))
