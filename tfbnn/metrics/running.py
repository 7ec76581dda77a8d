"""`RunningEvaluation`: the metrics of `evaluate`, accumulated over the parts of a data set.

A data set too big for one `Predictive` is scored part by part (consecutive rows,
as `tfbnn evaluate` reads a large file); `scores()` gives what `evaluate` gives
for all the rows at once, up to rounding:

* the metrics that are means (the squared error under `rmse`, `mae`, `nll`,
  `crps`, `coverage`, `interval_width`, `interval_score`, the variance under
  `sharpness`; `accuracy`, `nll`, `brier_score` and the mean uncertainties) are
  kept as sums of each part's mean times its count;
* the observed proportions of the calibration curve are means too, so
  `calibration_error` and `miscalibration_area` come from the summed curve,
  exactly as from all rows;
* `ece` and `mce` come from the confidence bins, whose counts and sums are added
  bin by bin (the uniform bins have fixed edges, so every part's bins line up);
* the CRPS draws continue one random stream over the parts, seeded like the
  first part's predictive, so they are the draws of all rows at once.
"""

from __future__ import annotations

import numpy as np

from tfbnn.metrics.classification import (
    accuracy,
    brier_score,
    expected_calibration_error_of_bins,
    maximum_calibration_error_of_bins,
    reliability_bins,
)
from tfbnn.metrics.inputs import predictive_targets
from tfbnn.metrics.regression import (
    calibration_curve,
    calibration_error_of_curve,
    coverage,
    interval_width,
    mae,
    miscalibration_area_of_curve,
    rmse,
    sharpness,
)
from tfbnn.metrics.scores import interval_score, nll, predictive_crps
from tfbnn.predictive import Predictive
from tfbnn.validation import check_level


class RunningEvaluation:
    """Every metric `evaluate` gives, over parts of a data set added one at a time.

    Example:

    >>> running = RunningEvaluation(level=0.9)  # doctest: +SKIP
    >>> for X_part, y_part in parts:  # doctest: +SKIP
    ...     running.add(y_part, model.predict_distribution(X_part))
    >>> running.scores()["rmse"]  # doctest: +SKIP

    Args:
        level: nominal level of the interval metrics.
    """

    def __init__(self, level: float = 0.95):
        self.level = check_level(level)
        self.rows = 0
        self._sums: dict = {}
        self._counts: dict = {}
        self._is_classification = None
        self._rng = None
        self._expected = None

    def add(self, y, predictive: Predictive) -> RunningEvaluation:
        """Adds a part: its targets (or labels) and the `Predictive` at its inputs.

        Returns:
            `self`, so that calls chain.
        """
        if not isinstance(predictive, Predictive):
            raise TypeError(f"add takes a Predictive, got {type(predictive).__name__}")
        if self._is_classification is None:
            self._is_classification = predictive.is_classification
            self._rng = np.random.default_rng(predictive.seed)
        elif predictive.is_classification != self._is_classification:
            raise ValueError("every part must be of the same task: classification and "
                             "regression predictives were mixed")
        if self._is_classification:
            self._add_classification(y, predictive)
        else:
            self._add_regression(y, predictive)
        self.rows += predictive.n_inputs
        return self

    def _add_mean(self, name: str, value, count: int) -> None:
        """Adds a part's mean `value` (a float or an array) over `count` values."""
        self._sums[name] = self._sums.get(name, 0.0) + np.asarray(value, np.float64) * count
        self._counts[name] = self._counts.get(name, 0) + count

    def _mean(self, name: str):
        return self._sums[name] / self._counts[name]

    def _add_regression(self, y, predictive) -> None:
        y = predictive_targets(y, predictive)
        bounds = tuple(np.asarray(b) for b in predictive.interval(self.level))  # computed once
        self._expected, observed = calibration_curve(y, predictive)
        entries = y.size
        for name, value in [
                ("squared_error", rmse(y, predictive) ** 2),
                ("mae", mae(y, predictive)),
                ("crps", np.mean(predictive_crps(y, predictive, self._rng))),
                ("coverage", coverage(y, bounds)),
                ("interval_width", interval_width(y, bounds)),
                ("interval_score", interval_score(y, bounds, self.level)),
                ("observed", observed),
                ("variance", sharpness(predictive) ** 2)]:
            self._add_mean(name, value, entries)
        self._add_mean("nll", nll(y, predictive), len(y))

    def _add_classification(self, y, predictive) -> None:
        rows = predictive.n_inputs
        for name, value in [
                ("accuracy", accuracy(y, predictive)),
                ("nll", nll(y, predictive)),
                ("brier_score", brier_score(y, predictive)),
                ("mean_entropy", np.mean(predictive.entropy)),
                ("mean_mutual_information", np.mean(predictive.mutual_information))]:
            self._add_mean(name, value, rows)
        bins = reliability_bins(y, predictive)
        totals = np.zeros((3, len(bins["edges"]) - 1))  # count, confidence and hits per bin
        totals[:, bins["bin"]] = [bins["count"], bins["count"] * bins["confidence"],
                                  bins["count"] * bins["accuracy"]]
        self._sums["bins"] = self._sums.get("bins", 0.0) + totals

    def scores(self) -> dict:
        """The metrics over every row added so far (the dict `evaluate` returns)."""
        if self._is_classification is None:
            raise ValueError("no parts were added; call add(y, predictive) first")
        if self._is_classification:
            count, confidence, correct = self._sums["bins"]
            kept = count > 0
            bins = {"count": count[kept], "confidence": confidence[kept] / count[kept],
                    "accuracy": correct[kept] / count[kept]}
            return {
                "accuracy": float(self._mean("accuracy")),
                "nll": float(self._mean("nll")),
                "brier_score": float(self._mean("brier_score")),
                "ece": expected_calibration_error_of_bins(bins),
                "mce": maximum_calibration_error_of_bins(bins),
                "mean_entropy": float(self._mean("mean_entropy")),
                "mean_mutual_information": float(self._mean("mean_mutual_information")),
            }
        curve = (self._expected, self._mean("observed"))
        return {
            "rmse": float(np.sqrt(self._mean("squared_error"))),
            "mae": float(self._mean("mae")),
            "nll": float(self._mean("nll")),
            "crps": float(self._mean("crps")),
            "coverage": float(self._mean("coverage")),
            "interval_width": float(self._mean("interval_width")),
            "interval_score": float(self._mean("interval_score")),
            "calibration_error": calibration_error_of_curve(*curve),
            "miscalibration_area": miscalibration_area_of_curve(*curve),
            "sharpness": float(np.sqrt(self._mean("variance"))),
            "level": self.level,
        }
