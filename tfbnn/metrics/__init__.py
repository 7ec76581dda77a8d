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

from tfbnn.metrics.classification import (
    BinStrategy,
    accuracy,
    brier_score,
    expected_calibration_error,
    maximum_calibration_error,
    reliability_bins,
)
from tfbnn.metrics.regression import (
    calibration_curve,
    calibration_error,
    coverage,
    coverage_curve,
    interval_width,
    mae,
    miscalibration_area,
    pit_values,
    rmse,
    sharpness,
)
from tfbnn.metrics.running import RunningEvaluation
from tfbnn.metrics.scores import crps, crps_gaussian, crps_samples, interval_score, nll
from tfbnn.metrics.summary import evaluate
from tfbnn.metrics.uncertainty import UncertaintyMeasure, ood_auroc

__all__ = [
    "BinStrategy",
    "RunningEvaluation",
    "UncertaintyMeasure",
    "accuracy",
    "brier_score",
    "calibration_curve",
    "calibration_error",
    "coverage",
    "coverage_curve",
    "crps",
    "crps_gaussian",
    "crps_samples",
    "evaluate",
    "expected_calibration_error",
    "interval_score",
    "interval_width",
    "mae",
    "maximum_calibration_error",
    "miscalibration_area",
    "nll",
    "ood_auroc",
    "pit_values",
    "reliability_bins",
    "rmse",
    "sharpness",
]
