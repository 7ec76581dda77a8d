"""Classification metrics: accuracy, the Brier score and calibration of the confidence.

Each takes class labels and a classification `Predictive` or probabilities
`(B, K)` (then labels are `0..K-1`).

#### References

Guo, C., Pleiss, G., Sun, Y. and Weinberger, K. Q. (2017). On calibration of
modern neural networks. ICML.
"""

from __future__ import annotations

import enum

import numpy as np

from tfbnn.metrics.inputs import check_rows, probs_and_index
from tfbnn.predictive import Predictive
from tfbnn.validation import check_int, check_option


class BinStrategy(enum.StrEnum):
    """How confidences are binned for the classification calibration errors."""

    UNIFORM = "uniform"
    """Equal-width bins on [0, 1]."""
    QUANTILE = "quantile"
    """Equal-mass bins: each holds the same number of examples (up to one)."""



def accuracy(y_true, y_pred) -> float:
    """Fraction of correct labels.

    Args:
        y_true: class labels.
        y_pred: a classification `Predictive`, probabilities `(B, K)`, or predicted
            labels `(B,)`.
    """
    if not isinstance(y_pred, Predictive) and np.ndim(y_pred) == 1:
        labels, predicted = np.asarray(y_true).reshape(-1), np.asarray(y_pred)
        check_rows(labels, predicted.shape[0])
        return float(np.mean(labels == predicted))
    probs, index = probs_and_index(y_true, y_pred)
    return float(np.mean(probs.argmax(axis=1) == index))


def brier_score(y_true, y_pred) -> float:
    """Multi-class Brier score, `mean_i sum_k (p_ik - 1{y_i = k})^2`, in [0, 2].

    For two classes this is twice scikit-learn's binary `brier_score_loss`.

    >>> brier_score([0, 1], [[0.8, 0.2], [0.5, 0.5]])  # (0.08 + 0.5) / 2
    0.29
    """
    probs, index = probs_and_index(y_true, y_pred)
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
    n_bins = check_int("n_bins", n_bins, minimum=1)
    probs, index = probs_and_index(y_true, y_pred)
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
    return expected_calibration_error_of_bins(reliability_bins(y_true, y_pred, n_bins, strategy))


def expected_calibration_error_of_bins(bins: dict) -> float:
    """The ECE of `reliability_bins` (its `count`, `accuracy` and `confidence`)."""
    weights = bins["count"] / bins["count"].sum()
    return float(np.sum(weights * np.abs(bins["accuracy"] - bins["confidence"])))


def maximum_calibration_error(y_true, y_pred, n_bins: int = 10,
                              strategy: str = "uniform") -> float:
    """MCE: the largest `|accuracy_b - confidence_b|` over non-empty bins."""
    return maximum_calibration_error_of_bins(reliability_bins(y_true, y_pred, n_bins, strategy))


def maximum_calibration_error_of_bins(bins: dict) -> float:
    """The MCE of `reliability_bins` (its `accuracy` and `confidence`)."""
    return float(np.max(np.abs(bins["accuracy"] - bins["confidence"])))
