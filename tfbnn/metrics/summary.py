"""`evaluate`: every metric that applies to a predictive, at once."""

from __future__ import annotations

import numpy as np

from tfbnn.metrics.classification import (
    accuracy,
    brier_score,
    expected_calibration_error,
    maximum_calibration_error,
)
from tfbnn.metrics.inputs import predictive_targets
from tfbnn.metrics.regression import (
    calibration_error,
    coverage,
    interval_width,
    mae,
    miscalibration_area,
    rmse,
    sharpness,
)
from tfbnn.metrics.scores import crps, interval_score, nll
from tfbnn.predictive import Predictive
from tfbnn.validation import check_level


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
    level = check_level(level)
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
    y = predictive_targets(y, predictive)
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
