"""The calibrator contract, their registry, and the predictive seen through a calibrator."""

from __future__ import annotations

import numpy as np
from sklearn.exceptions import NotFittedError

from tfbnn.likelihoods import Gaussian
from tfbnn.metrics.inputs import mean_std
from tfbnn.predictive import Predictive
from tfbnn.registry import Registry

#: Calibrators by class name: what `deserialize_calibrator` can rebuild.
CALIBRATORS = Registry("calibrator")


class Calibrator:
    """What every calibrator shares.

    Subclasses set `calibrates` (the parts of a predictive they change, among
    `"cdf"`, `"quantile"`, `"interval"` and `"probs"`) and `fitted_attribute`
    (None until `fit`), and implement `fit`, `get_config` and `from_config`.
    """

    calibrates: frozenset[str] = frozenset()
    fitted_attribute: str = ""

    @property
    def is_fitted(self) -> bool:
        """Whether `fit` (or `from_config` with fitted values) has run."""
        return getattr(self, self.fitted_attribute) is not None

    def check_fitted(self) -> None:
        """A `NotFittedError` unless the calibrator is fitted."""
        if not self.is_fitted:
            raise NotFittedError(f"This {type(self).__name__} is not fitted yet; call fit first")

    def calibrated(self, predictive) -> CalibratedPredictive:
        """`predictive` seen through this calibrator (see `CalibratedPredictive`)."""
        self.check_fitted()
        return CalibratedPredictive(predictive, self)

    @classmethod
    def check_fitted_values(cls, valid: bool) -> None:
        """For `from_config`: a ValueError unless the saved fitted values are `valid`."""
        if not valid:
            raise ValueError(f"the {cls.__name__} config holds invalid fitted values")


def serialize_calibrator(calibrator: Calibrator) -> dict:
    """`{"class": name, "config": get_config()}`, plain JSON."""
    return {"class": type(calibrator).__name__, "config": calibrator.get_config()}


def deserialize_calibrator(entry) -> Calibrator:
    """Rebuilds what `serialize_calibrator` wrote; a ValueError says what is wrong with it."""
    if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
        raise ValueError("a calibrator entry must be {'class': ..., 'config': {...}}")
    return CALIBRATORS.get(entry.get("class")).from_config(entry["config"])


class CalibratedPredictive(Predictive):
    """A predictive seen through a fitted calibrator.

    It is a `Predictive` (so every metric and the command line accept it) whose
    parts named in `calibrator.calibrates` come from the calibrator, the rest
    from the model's own predictive (`base`):

    * `QuantileRecalibrator`: recalibrated `cdf`, `quantile` and `interval`;
    * `ConformalRegressor`: the conformal `interval`; the CDF is the model's;
    * `TemperatureScaling`: temperature-scaled `probs` (and so `predicted_class`,
      `entropy` and `log_prob`); the `mutual_information` is the model's, as the
      per-draw spread is not rescaled, and `expected_entropy` is the difference.

    The moments (`mean`, `std`, `aleatoric_var`, `epistemic_var`), a regression
    `log_prob` and `samples` are always the model's own.

    Args:
        base: the model's uncalibrated `Predictive`, or a Gaussian `(mean, std)`
            tuple (then the model is `Normal(mean, std)` at each input).
        calibrator: a fitted `Calibrator`.
    """

    def __init__(self, base, calibrator: Calibrator):
        model = base if isinstance(base, Predictive) else _gaussian_predictive(base)
        super().__init__(model.likelihood, model.params, shift=model.shift, scale=model.scale,
                         squeeze=model.squeeze, seed=model.seed, chunk_rows=model.chunk_rows,
                         classes=model.classes if model.is_classification else None)
        self.base = base
        self.calibrator = calibrator

    def cdf(self, y) -> np.ndarray:
        if "cdf" in self.calibrator.calibrates:
            return self.calibrator.cdf(self.base, y)
        return super().cdf(y)

    def quantile(self, q) -> np.ndarray:
        if "quantile" in self.calibrator.calibrates:
            return self.calibrator.quantile(self.base, q)
        return super().quantile(q)

    def interval(self, level: float = 0.95):
        if "interval" in self.calibrator.calibrates:
            return self.calibrator.interval(self.base, level)
        return super().interval(level)

    @property
    def probs(self) -> np.ndarray:
        if "probs" in self.calibrator.calibrates:
            return self.calibrator.transform(self.base)
        return super().probs

    @property
    def mutual_information(self) -> np.ndarray:
        if self.is_classification:
            return self.base.mutual_information
        return super().mutual_information  # raises: defined for classification only

    @property
    def expected_entropy(self) -> np.ndarray:
        return np.maximum(self.entropy - self.mutual_information, 0.0)

    def log_prob(self, y) -> np.ndarray:
        if "probs" not in self.calibrator.calibrates:
            return super().log_prob(y)
        index = self.class_index(y)
        return np.log(np.maximum(self.probs[np.arange(len(index)), index], 1e-300))

    def __repr__(self) -> str:
        return f"CalibratedPredictive({self.base!r}, {type(self.calibrator).__name__})"


def _gaussian_predictive(y_pred) -> Predictive:
    """`Normal(mean, std)` at each input as a one-draw `Predictive`: `y = mean + std * z`."""
    mean, std = mean_std(y_pred, "CalibratedPredictive")
    column = mean.ndim == 1
    if column:
        mean, std = mean[:, None], std[:, None]
    return Predictive(Gaussian(scale=1.0), np.zeros((1, *mean.shape)), shift=mean, scale=std,
                      squeeze=column)
