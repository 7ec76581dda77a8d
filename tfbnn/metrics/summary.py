"""`evaluate`: every metric that applies to a predictive, at once."""

from __future__ import annotations

from tfbnn.metrics.running import RunningEvaluation
from tfbnn.predictive import Predictive
from tfbnn.validation import check_level


def evaluate(model_or_predictive, X=None, y=None, *, level: float = 0.95) -> dict:
    """Every metric that applies, as a dict of floats.

    For a data set scored in parts, `RunningEvaluation` gives the same dict.

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
    return RunningEvaluation(level).add(y, predictive).scores()
