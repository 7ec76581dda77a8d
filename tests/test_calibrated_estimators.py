"""`calibrate` on the estimators: recalibrated predictions, and saving with the calibrator.

The models are deliberately over-confident, so that calibration has something
to fix: a regressor whose Gaussian noise is fixed at 0.3 for targets with noise
sd 1, and a classifier with a very wide prior trained long on 60 noisy rows.
(A fixed noise of 0.05 is beyond quantile recalibration: its PIT values reach
0 and 1 in float64, about 20 predictive sds out, and no map of them can recover
the quantiles; conformal intervals still work there.)
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

import tfbnn
from tfbnn import metrics
from tfbnn.calibration import (
    CalibratedPredictive,
    ConformalRegressor,
    QuantileRecalibrator,
    TemperatureScaling,
)
from tfbnn.persistence import FORMAT_VERSION

N_TRAIN, N_CAL, N_TEST = 500, 1000, 2000
LEVEL = 0.9


def _split(X, y, n_train):
    cut = [n_train, n_train + N_CAL]
    return list(zip(np.split(X, cut), np.split(y, cut), strict=True))


@pytest.fixture(scope="module")
def regression():
    """`(train, calibration, test)` pairs `(X, y)`; the noise sd is 1."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, size=(N_TRAIN + N_CAL + N_TEST, 2))
    y = 2 * np.sin(X[:, 0]) + X[:, 1] + rng.normal(size=len(X))
    return _split(X, y, N_TRAIN)


@pytest.fixture(scope="module")
def regressor(regression):
    (X, y), _, _ = regression
    return tfbnn.BayesianRegressor(
        hidden_units=(8,), likelihood=tfbnn.likelihoods.Gaussian(scale=0.3), epochs=50,
        n_samples=20, random_state=0).fit(X, y)


@pytest.fixture(scope="module")
def classification():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60 + N_CAL + N_TEST, 8))
    p = 1 / (1 + np.exp(-(2 * X[:, 0] - X[:, 1])))
    y = np.where(rng.uniform(size=len(X)) < p, "b", "a")
    return _split(X, y, 60)


@pytest.fixture(scope="module")
def classifier(classification):
    (X, y), _, _ = classification
    return tfbnn.BayesianClassifier(
        hidden_units=(16,), prior=tfbnn.priors.Normal(scale=100.0), epochs=300,
        n_samples=20, random_state=0).fit(X, y)


# -- regression ------------------------------------------------------------------------


def test_quantile_recalibration_fixes_an_overconfident_regressor(regressor, regression):
    _, (X_cal, y_cal), (X, y) = regression
    base = regressor.predict_distribution(X, calibrated=False)
    assert metrics.coverage(y, base, LEVEL) < 0.5  # over-confident, as intended
    assert regressor.calibrate(X_cal, y_cal, method="quantile") is regressor
    assert isinstance(regressor.calibrator_, QuantileRecalibrator)
    calibrated = regressor.predict_distribution(X)
    assert isinstance(calibrated, CalibratedPredictive)
    assert tfbnn.estimators.CalibratedPredictive is CalibratedPredictive  # the old name
    assert abs(metrics.coverage(y, calibrated, LEVEL) - LEVEL) <= 0.03
    assert metrics.calibration_error(y, calibrated) < 0.5 * metrics.calibration_error(y, base)
    # The interval is the recalibrator's, and evaluate(model, X, y) uses it.
    lower, upper = calibrated.interval(LEVEL)
    np.testing.assert_allclose(lower, regressor.calibrator_.interval(base, LEVEL)[0])
    scores = metrics.evaluate(regressor, X, y, level=LEVEL)
    assert scores["coverage"] == metrics.coverage(y, (lower, upper))
    # Point predictions and the model's own std are unchanged.
    mean, std = regressor.predict(X, return_std=True)
    np.testing.assert_allclose(mean, base.mean)
    np.testing.assert_allclose(std, base.std)


@pytest.mark.parametrize("method", ["conformal", "conformal_normalized"])
def test_conformal_intervals_reach_their_level(regressor, regression, method):
    _, (X_cal, y_cal), (X, y) = regression
    regressor.calibrate(X_cal, y_cal, method=method)
    assert isinstance(regressor.calibrator_, ConformalRegressor)
    # On the calibration rows the guarantee is exact: at least ceil((n + 1) level) of n.
    assert metrics.coverage(y_cal, regressor.predict_distribution(X_cal), LEVEL) >= LEVEL
    # On new rows it holds in expectation; allow three standard errors of sampling.
    error = 3 * np.sqrt(LEVEL * (1 - LEVEL) * (1 / N_CAL + 1 / N_TEST))
    assert metrics.coverage(y, regressor.predict_distribution(X), LEVEL) >= LEVEL - error
    assert regressor.predict(X).shape == (N_TEST,)


def test_calibrate_rejects_wrong_methods_and_unfitted_models(regressor, classifier, regression):
    _, (X_cal, y_cal), _ = regression
    with pytest.raises(ValueError, match="method='temperature' does not calibrate a Bayesian"):
        regressor.calibrate(X_cal, y_cal, method="temperature")
    with pytest.raises(ValueError, match="Unknown method='isotonic'"):
        regressor.calibrate(X_cal, y_cal, method="isotonic")
    with pytest.raises(ValueError, match="method='quantile' does not calibrate"):
        classifier.calibrate(X_cal[:, :1].repeat(8, axis=1), np.resize(["a", "b"], N_CAL),
                             method="quantile")
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        regressor.calibrate(X_cal, y_cal[:-1])
    with pytest.raises(NotFittedError):
        tfbnn.BayesianRegressor().calibrate(X_cal, y_cal)


def test_refitting_drops_the_calibrator(regressor, regression):
    from sklearn.base import clone

    (X, y), (X_cal, y_cal), _ = regression
    model = clone(regressor).fit(X, y).calibrate(X_cal, y_cal)
    assert hasattr(model, "calibrator_")
    assert not hasattr(model.fit(X, y), "calibrator_")


# -- classification ---------------------------------------------------------------------


def test_temperature_scaling_lowers_the_ece_of_an_overconfident_classifier(
        classifier, classification):
    _, (X_cal, y_cal), (X, y) = classification
    base = classifier.predict_distribution(X, calibrated=False)
    classifier.calibrate(X_cal, y_cal)  # temperature is the classifier's default
    assert isinstance(classifier.calibrator_, TemperatureScaling)
    assert classifier.calibrator_.temperature_ > 1.2  # softens over-confident probabilities
    calibrated = classifier.predict_distribution(X)
    ece = metrics.expected_calibration_error
    assert ece(y, calibrated) < 0.7 * ece(y, base)
    assert metrics.nll(y, calibrated) < metrics.nll(y, base)
    probs = classifier.predict_proba(X)
    np.testing.assert_allclose(probs, classifier.calibrator_.transform(base))
    np.testing.assert_array_equal(classifier.predict(X), base.predicted_class)
    np.testing.assert_allclose(calibrated.mutual_information, base.mutual_information)
    assert metrics.evaluate(classifier, X, y)["ece"] == ece(y, calibrated)


# -- saving ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["quantile", "conformal_normalized"])
def test_save_load_keeps_the_regression_calibrator(regressor, regression, tmp_path, method):
    _, (X_cal, y_cal), (X, _) = regression
    regressor.calibrate(X_cal, y_cal, method=method)
    regressor.save(tmp_path / "model")
    config = json.loads((tmp_path / "model" / "tfbnn.json").read_text())
    assert config["format_version"] == FORMAT_VERSION
    assert config["state"]["calibrator_"]["class"] == type(regressor.calibrator_).__name__
    loaded = tfbnn.load(tmp_path / "model")
    assert loaded.calibrator_.get_config() == regressor.calibrator_.get_config()
    for got, expected in zip(loaded.predict_distribution(X).interval(LEVEL),
                             regressor.predict_distribution(X).interval(LEVEL), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_save_load_keeps_the_temperature(classifier, classification, tmp_path):
    _, (X_cal, y_cal), (X, _) = classification
    classifier.calibrate(X_cal, y_cal, method="temperature")
    classifier.save(tmp_path / "model")
    loaded = tfbnn.load(tmp_path / "model")
    assert loaded.calibrator_.temperature_ == classifier.calibrator_.temperature_
    np.testing.assert_allclose(loaded.predict_proba(X), classifier.predict_proba(X), rtol=1e-6)


def test_an_uncalibrated_model_saves_no_calibrator(regressor, tmp_path):
    model = tfbnn.BayesianRegressor(**regressor.get_params())
    model.__dict__.update({k: v for k, v in regressor.__dict__.items() if k != "calibrator_"})
    model.save(tmp_path / "model")
    config = json.loads((tmp_path / "model" / "tfbnn.json").read_text())
    assert config["format_version"] == FORMAT_VERSION and "calibrator_" not in config["state"]
    assert not hasattr(tfbnn.load(tmp_path / "model"), "calibrator_")


@pytest.mark.parametrize("entry, message", [
    ({"class": "IsotonicThing", "config": {}}, "Unknown calibrator='IsotonicThing'"),
    ({"class": "TemperatureScaling", "config": {"temperature": 2.0}}, "cannot calibrate"),
    ({"class": "TemperatureScaling", "config": {"temperature": -2.0}},
     "temperature must be a positive"),
    ({"class": "QuantileRecalibrator", "config": {}}, "holds no fitted values"),
    ({"class": "QuantileRecalibrator", "config": {"pit_knots": [0, 1], "freq_knots": [1]}},
     "invalid fitted values"),
    ({"class": "QuantileRecalibrator", "config": {"pit_knots": ["a"], "freq_knots": [0]}},
     "could not convert"),
    ({"class": "ConformalRegressor", "config": {"method": "wide", "scores": [1.0]}},
     "Unknown method"),
    ({"class": "ConformalRegressor", "config": {"method": "absolute", "scores": [-1.0]}},
     "invalid fitted values"),
    ("QuantileRecalibrator", "must be"),
])
def test_a_corrupt_calibrator_entry_is_a_model_file_error(
        regressor, regression, tmp_path_factory, entry, message):
    _, (X_cal, y_cal), _ = regression
    folder = tmp_path_factory.getbasetemp() / "calibrated_regressor"
    if not folder.exists():
        regressor.calibrate(X_cal, y_cal).save(folder)
    broken = tmp_path_factory.mktemp("broken") / "model"
    shutil.copytree(folder, broken)
    config = json.loads((broken / "tfbnn.json").read_text())
    config["state"]["calibrator_"] = entry
    (broken / "tfbnn.json").write_text(json.dumps(config))
    with pytest.raises(tfbnn.ModelFileError, match="invalid calibrator") as error:
        tfbnn.load(broken)
    assert message in str(error.value)
