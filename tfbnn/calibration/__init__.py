"""Recalibration and conformal intervals, fitted on held-out data.

Each calibrator follows one small contract (`Calibrator`): `fit(y_pred, y)` on a
calibration set (returns `self`), the methods it recalibrates, and
`get_config()` / `from_config()` whose fitted state is plain floats and lists,
so it round-trips through JSON (the estimators save it inside the model folder
with `serialize_calibrator`; nothing is pickled). Calibrators are registered by
class name in `CALIBRATORS`.

* `QuantileRecalibrator`: isotonic recalibration of the predictive CDF
  (Kuleshov et al. 2018); recalibrated `cdf`, `quantile` and `interval`.
* `ConformalRegressor`: split-conformal intervals with finite-sample marginal
  coverage (Vovk et al. 2005; Lei et al. 2018).
* `TemperatureScaling`: one temperature for a classifier's probabilities (Guo et al. 2017).

`CalibratedPredictive` is a predictive seen through a fitted calibrator: a
`Predictive` whose calibrated parts come from the calibrator. Regression inputs
are a `tfbnn.predictive.Predictive` or a Gaussian `(mean, std)` tuple;
classification inputs a `Predictive` or probabilities.

#### References

Kuleshov, V., Fenner, N. and Ermon, S. (2018). Accurate uncertainties for deep
learning using calibrated regression. ICML.

Vovk, V., Gammerman, A. and Shafer, G. (2005). Algorithmic learning in a random
world. Springer.

Lei, J., G'Sell, M., Rinaldo, A., Tibshirani, R. J. and Wasserman, L. (2018).
Distribution-free predictive inference for regression. JASA 113(523).

Guo, C., Pleiss, G., Sun, Y. and Weinberger, K. Q. (2017). On calibration of
modern neural networks. ICML.
"""

from tfbnn.calibration.base import (
    CALIBRATORS,
    CalibratedPredictive,
    Calibrator,
    deserialize_calibrator,
    serialize_calibrator,
)
from tfbnn.calibration.calibrators import (
    ConformalMethod,
    ConformalRegressor,
    QuantileRecalibrator,
    TemperatureScaling,
)
from tfbnn.calibration.methods import (
    CLASSIFICATION_CALIBRATION,
    REGRESSION_CALIBRATION,
    CalibrationMethod,
    calibration_method,
    make_calibrator,
)

__all__ = [
    "CALIBRATORS",
    "CLASSIFICATION_CALIBRATION",
    "REGRESSION_CALIBRATION",
    "CalibratedPredictive",
    "CalibrationMethod",
    "Calibrator",
    "ConformalMethod",
    "ConformalRegressor",
    "QuantileRecalibrator",
    "TemperatureScaling",
    "calibration_method",
    "deserialize_calibrator",
    "make_calibrator",
    "serialize_calibrator",
]
