"""The calibration methods an estimator's `calibrate` accepts, and the calibrator of each."""

from __future__ import annotations

import enum

from tfbnn.calibration.base import Calibrator
from tfbnn.calibration.calibrators import (
    ConformalMethod,
    ConformalRegressor,
    QuantileRecalibrator,
    TemperatureScaling,
)
from tfbnn.validation import check_option


class CalibrationMethod(enum.StrEnum):
    """How an estimator's `calibrate` recalibrates it on held-out data (see `make_calibrator`)."""

    QUANTILE = "quantile"
    """Regression: isotonic recalibration of the predictive CDF (`QuantileRecalibrator`);
    recalibrates `cdf`, `quantile` and `interval`."""
    CONFORMAL = "conformal"
    """Regression: split-conformal intervals `mean -/+ s` of one width (`ConformalRegressor`)."""
    CONFORMAL_NORMALIZED = "conformal_normalized"
    """Regression: split-conformal intervals `mean -/+ s * std` that follow the model's std."""
    TEMPERATURE = "temperature"
    """Classification: temperature scaling of the class probabilities (`TemperatureScaling`)."""


#: The methods that calibrate a regressor (the first is the default) and a classifier.
REGRESSION_CALIBRATION = (CalibrationMethod.QUANTILE, CalibrationMethod.CONFORMAL,
                          CalibrationMethod.CONFORMAL_NORMALIZED)
CLASSIFICATION_CALIBRATION = (CalibrationMethod.TEMPERATURE,)

def make_calibrator(method: str) -> Calibrator:
    """A new, unfitted calibrator for a `CalibrationMethod` name."""
    method = check_option("method", method, [m.value for m in CalibrationMethod])
    if method == CalibrationMethod.QUANTILE:
        return QuantileRecalibrator()
    if method == CalibrationMethod.TEMPERATURE:
        return TemperatureScaling()
    return ConformalRegressor(
        ConformalMethod.ABSOLUTE if method == CalibrationMethod.CONFORMAL
        else ConformalMethod.NORMALIZED)


def calibration_method(calibrator: Calibrator) -> str:
    """The `CalibrationMethod` name that `make_calibrator` turns into such a calibrator."""
    if isinstance(calibrator, ConformalRegressor):
        return (CalibrationMethod.CONFORMAL if calibrator.method == ConformalMethod.ABSOLUTE
                else CalibrationMethod.CONFORMAL_NORMALIZED).value
    if isinstance(calibrator, TemperatureScaling):
        return CalibrationMethod.TEMPERATURE.value
    return CalibrationMethod.QUANTILE.value
