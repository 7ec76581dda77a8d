"""Recalibration and conformal intervals: they must fix what they claim to fix."""

import json
import math
import warnings

import numpy as np
import pytest
from scipy import special, stats
from sklearn.exceptions import NotFittedError

from tfbnn import metrics
from tfbnn.calibration import (
    CALIBRATORS,
    CalibrationMethod,
    ConformalRegressor,
    QuantileRecalibrator,
    TemperatureScaling,
    calibration_method,
    deserialize_calibrator,
    make_calibrator,
    serialize_calibrator,
)
from tfbnn.likelihoods import Bernoulli, Categorical, Gaussian
from tfbnn.predictive import Predictive


def overconfident(rng, n):
    """Truth `sin(2x) + N(0, 1)`; the model knows the mean but claims sd 0.3."""
    x = rng.uniform(-2, 2, n)
    mean = np.sin(2 * x)
    predictive = Predictive(Gaussian(scale=0.3), mean[None, :, None], squeeze=True)
    return predictive, mean + rng.normal(size=n)


def json_round_trip(obj):
    return type(obj).from_config(json.loads(json.dumps(obj.get_config())))


# -- quantile recalibration -------------------------------------------------------


def test_quantile_recalibration_fixes_an_overconfident_predictive():
    rng = np.random.default_rng(0)
    cal, y_cal = overconfident(rng, 2000)
    test, y_test = overconfident(rng, 2000)
    before = metrics.coverage(y_test, test, level=0.9)
    assert before < 0.5  # 2 Phi(1.645 * 0.3) - 1 = 0.38

    recalibrator = QuantileRecalibrator().fit(cal, y_cal)
    lower, upper = recalibrator.interval(test, 0.9)
    assert metrics.coverage(y_test, (lower, upper)) == pytest.approx(0.9, abs=0.03)

    recalibrated = recalibrator.transform(test)
    np.testing.assert_allclose(recalibrated.interval(0.9), (lower, upper))
    error_before = metrics.calibration_error(y_test, test)
    error_after = metrics.calibration_error(y_test, recalibrated)
    assert error_after < 0.03 < 0.1 < error_before


def test_recalibration_map_is_the_empirical_cdf_of_the_pit_values():
    rng = np.random.default_rng(1)
    mean, std = np.zeros(500), np.full(500, 0.5)
    y = rng.normal(size=500)
    recalibrator = QuantileRecalibrator().fit((mean, std), y)
    pit = stats.norm.cdf(y, 0, 0.5)
    grid = np.linspace(0, 1, 201)
    empirical = np.mean(pit[None] <= grid[:, None], axis=1)
    # Isotonic regression through the ECDF points, interpolated: within one step.
    assert np.max(np.abs(recalibrator.calibration_map(grid) - empirical)) <= 1 / 500 + 1e-12
    # The inverse is the generalised inverse inf{p : R(p) >= q}.
    q = np.linspace(0.001, 0.999, 97)
    p = recalibrator.inverse_map(q)
    np.testing.assert_allclose(recalibrator.calibration_map(p), q, atol=1e-9)
    assert np.all(recalibrator.calibration_map(p - 1e-9) <= q + 1e-9)
    # So the recalibrated 0.9-quantile of a constant predictive is the 450th of 500 targets.
    assert recalibrator.quantile((mean, std), 0.9)[0] == pytest.approx(np.sort(y)[449])


def test_recalibrated_cdf_and_quantile_are_inverse():
    rng = np.random.default_rng(2)
    cal, y_cal = overconfident(rng, 400)
    recalibrator = QuantileRecalibrator().fit(cal, y_cal)
    q75 = recalibrator.quantile(cal, 0.75)
    np.testing.assert_allclose(recalibrator.cdf(cal, q75), 0.75, atol=2e-3)


def test_quantile_recalibrator_round_trips_through_json():
    rng = np.random.default_rng(3)
    cal, y_cal = overconfident(rng, 300)
    recalibrator = QuantileRecalibrator().fit(cal, y_cal)
    restored = json_round_trip(recalibrator)
    np.testing.assert_array_equal(restored.interval(cal, 0.8), recalibrator.interval(cal, 0.8))
    assert json_round_trip(QuantileRecalibrator()).pit_knots_ is None


def test_quantile_recalibrator_errors():
    with pytest.raises(NotFittedError, match="QuantileRecalibrator is not fitted"):
        QuantileRecalibrator().interval((np.zeros(3), np.ones(3)), 0.9)
    recalibrator = QuantileRecalibrator().fit((np.zeros(5), np.ones(5)), np.arange(5.0))
    with pytest.raises(ValueError, match="level must be strictly between 0 and 1"):
        recalibrator.interval((np.zeros(3), np.ones(3)), 1.5)
    with pytest.raises(ValueError, match="q must be strictly between 0 and 1"):
        recalibrator.quantile((np.zeros(3), np.ones(3)), 0.0)
    with pytest.raises(ValueError, match="y_true has 4 examples but y_pred has 5"):
        QuantileRecalibrator().fit((np.zeros(5), np.ones(5)), np.zeros(4))
    with pytest.raises(ValueError, match="y_true contains NaN"):
        QuantileRecalibrator().fit((np.zeros(2), np.ones(2)), np.array([0.0, np.nan]))


# -- split conformal --------------------------------------------------------------


@pytest.mark.parametrize("method", ["absolute", "normalized"])
def test_split_conformal_coverage_lies_within_the_finite_sample_bounds(method):
    rng = np.random.default_rng(4)
    n, m, reps, level = 50, 100, 1000, 0.9
    coverages = np.empty(reps)
    for r in range(reps):
        # Heteroscedastic truth; the model's std is right up to a constant factor.
        x = rng.uniform(0, 1, n + m)
        sd = 0.2 + x
        y = np.sin(3 * x) + sd * rng.standard_t(5, size=n + m)
        mean, std = np.sin(3 * x), 0.5 * sd
        cal = mean[:n] if method == "absolute" else (mean[:n], std[:n])
        test = mean[n:] if method == "absolute" else (mean[n:], std[n:])
        conformal = ConformalRegressor(method).fit(cal, y[:n])
        coverages[r] = metrics.coverage(y[n:], conformal.interval(test, level))
    # Exact expectation for continuous scores: ceil((n + 1) level) / (n + 1).
    expected = math.ceil((n + 1) * level) / (n + 1)
    assert level <= expected <= level + 1 / (n + 1)
    tolerance = 4 * coverages.std() / np.sqrt(reps)
    assert level - tolerance <= coverages.mean() <= level + 1 / (n + 1) + tolerance
    assert coverages.mean() == pytest.approx(expected, abs=tolerance)


def test_normalized_intervals_follow_the_predictive_std():
    rng = np.random.default_rng(5)
    loc = rng.normal(size=200)
    noise = np.where(np.arange(200) % 2 == 0, 0.3, 3.0)
    predictive = Predictive(Gaussian(scale=1.0), loc[None, :, None], squeeze=True)
    heteroscedastic = (loc, noise)
    y = loc + noise * rng.normal(size=200)
    conformal = ConformalRegressor("normalized").fit(heteroscedastic, y)
    lower, upper = conformal.interval(heteroscedastic, 0.8)
    np.testing.assert_allclose((upper - lower)[1::2] / (upper - lower)[::2], 10.0)
    # From a Predictive: its std is 1 everywhere, so widths are constant.
    conformal = ConformalRegressor("normalized").fit(predictive, y)
    lower, upper = conformal.interval(predictive, 0.8)
    assert np.ptp(upper - lower) == pytest.approx(0.0, abs=1e-5)
    k = math.ceil(201 * 0.8)
    assert (upper - lower)[0] / 2 == pytest.approx(np.sort(np.abs(y - loc))[k - 1], rel=1e-5)


def test_conformal_per_target_columns_and_json():
    rng = np.random.default_rng(6)
    mean = rng.normal(size=(30, 2))
    y = mean + rng.normal(size=(30, 2)) * [1.0, 5.0]
    conformal = ConformalRegressor().fit(mean, y)
    s_hat = conformal.score_quantile(0.9)
    k = math.ceil(31 * 0.9)
    np.testing.assert_allclose(s_hat, np.sort(np.abs(y - mean), axis=0)[k - 1])
    restored = json_round_trip(conformal)
    np.testing.assert_array_equal(restored.interval(mean, 0.9), conformal.interval(mean, 0.9))


@pytest.mark.parametrize("make", [QuantileRecalibrator, ConformalRegressor])
def test_calibrators_take_squeezed_and_column_predictives_alike(make):
    rng = np.random.default_rng(7)
    mean = rng.normal(size=(1, 50, 1)).astype("float32")
    y = mean[0, :, 0] + rng.normal(size=50)
    flat = Predictive(Gaussian(scale=0.5), mean)  # one target: (50,) by default
    column = Predictive(Gaussian(scale=0.5), mean, squeeze=False)
    lower, upper = make().fit(flat, y).interval(flat, 0.8)
    expected = make().fit(column, y[:, None]).interval(column, 0.8)
    assert lower.shape == upper.shape == (50,)
    np.testing.assert_allclose(lower, expected[0].reshape(50), rtol=1e-6)
    np.testing.assert_allclose(upper, expected[1].reshape(50), rtol=1e-6)


def test_conformal_quantile_index_is_not_fooled_by_rounding():
    # (19 + 1) * 0.95 is 19.000000000000004 in floating point: k must be 19, not 20.
    conformal = ConformalRegressor().fit(np.zeros(19), np.arange(1.0, 20.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert conformal.score_quantile(0.95) == 19.0


def test_conformal_errors_and_too_small_calibration_sets():
    conformal = ConformalRegressor().fit(np.zeros(5), np.arange(5.0))
    with pytest.warns(UserWarning, match="too few for level=0.9"):
        lower, upper = conformal.interval(np.zeros(2), 0.9)
    assert np.all(np.isinf(lower)) and np.all(np.isinf(upper))
    with pytest.raises(ValueError, match=r"Unknown method='relative'; expected one of"):
        ConformalRegressor("relative")
    with pytest.raises(ValueError, match="method='normalized' needs a Predictive"):
        ConformalRegressor("normalized").fit(np.zeros(5), np.zeros(5))
    with pytest.raises(NotFittedError, match="ConformalRegressor is not fitted"):
        ConformalRegressor().interval(np.zeros(2))
    with pytest.raises(ValueError, match="level must be strictly between 0 and 1"):
        conformal.interval(np.zeros(2), level=0)


# -- temperature scaling ----------------------------------------------------------


def overconfident_classifier(rng, n, sharpen=3.0):
    true_logits = rng.normal(size=(n, 4)) * 1.5
    probs = special.softmax(true_logits, axis=1)
    labels = (rng.uniform(size=(n, 1)) > probs.cumsum(axis=1)).sum(axis=1)
    return Predictive(Categorical(4), sharpen * true_logits[None]), true_logits, labels


def test_temperature_scaling_lowers_the_ece_of_an_overconfident_classifier():
    rng = np.random.default_rng(7)
    cal, _, y_cal = overconfident_classifier(rng, 3000)
    test, _, y_test = overconfident_classifier(rng, 3000)
    scaling = TemperatureScaling().fit(cal, y_cal)
    assert scaling.temperature_ == pytest.approx(3.0, rel=0.1)
    probs = scaling.transform(test)
    ece_before = metrics.expected_calibration_error(y_test, test)
    ece_after = metrics.expected_calibration_error(y_test, probs)
    assert ece_after < 0.05 < 0.1 < ece_before
    assert metrics.nll(y_test, probs) < metrics.nll(y_test, test)
    np.testing.assert_array_equal(probs.argmax(axis=1), test.probs.argmax(axis=1))


def test_temperature_scaling_minimises_the_nll_from_logits_or_probabilities():
    rng = np.random.default_rng(8)
    _, logits, labels = overconfident_classifier(rng, 500, sharpen=1.0)
    logits = 2.0 * logits
    from_logits = TemperatureScaling().fit(logits, labels, from_logits=True)
    from_probs = TemperatureScaling().fit(special.softmax(logits, axis=1), labels)
    assert from_logits.temperature_ == pytest.approx(from_probs.temperature_, rel=1e-4)

    def nll(t):
        return -np.mean(special.log_softmax(logits / t, axis=1)[np.arange(500), labels])

    t_hat = from_logits.temperature_
    assert nll(t_hat) <= min(nll(t_hat * 0.98), nll(t_hat * 1.02))
    np.testing.assert_allclose(from_logits.transform(logits, from_logits=True).sum(axis=1), 1.0)


def test_temperature_scaling_with_binary_labels_and_json():
    rng = np.random.default_rng(9)
    logit = rng.normal(size=400) * 2
    labels = np.where(rng.uniform(size=400) < special.expit(logit), "b", "a")
    predictive = Predictive(Bernoulli(), (4 * logit)[None, :, None], classes=np.array(["a", "b"]))
    scaling = TemperatureScaling().fit(predictive, labels)
    assert scaling.temperature_ == pytest.approx(4.0, rel=0.3)
    restored = json_round_trip(scaling)
    np.testing.assert_array_equal(restored.transform(predictive), scaling.transform(predictive))


def test_temperature_scaling_errors():
    with pytest.raises(NotFittedError, match="TemperatureScaling is not fitted"):
        TemperatureScaling().transform(np.full((2, 2), 0.5))
    regression = Predictive(Gaussian(), np.zeros((1, 3, 1)))
    with pytest.raises(ValueError, match="needs a classification predictive"):
        TemperatureScaling().fit(regression, np.zeros(3))
    with pytest.raises(ValueError, match="must be non-negative and sum to 1"):
        TemperatureScaling().fit(np.array([[2.0, -1.0]]), [0])
    with pytest.raises(ValueError, match=r"logits must have shape \(B, K\)"):
        TemperatureScaling().fit(np.zeros(3), [0, 1, 0], from_logits=True)
    with pytest.raises(ValueError, match="Unknown class label 5"):
        TemperatureScaling().fit(np.full((2, 2), 0.5), [0, 5])


# -- the calibrated predictive and the registry -------------------------------------------


def test_a_recalibrated_gaussian_tuple_is_a_predictive_with_its_moments():
    rng = np.random.default_rng(10)
    mean, std = rng.normal(size=300), np.full(300, 0.3)
    y = mean + rng.normal(size=300)
    recalibrator = QuantileRecalibrator().fit((mean, std), y)
    recalibrated = recalibrator.transform((mean, std))
    assert isinstance(recalibrated, Predictive) and recalibrated.base[0] is mean
    # The calibrated parts are the recalibrator's own, the moments the Gaussian's.
    np.testing.assert_array_equal(recalibrated.interval(0.8), recalibrator.interval((mean, std), 0.8))
    np.testing.assert_array_equal(recalibrated.cdf(y), recalibrator.cdf((mean, std), y))
    np.testing.assert_allclose(recalibrated.mean, mean)
    np.testing.assert_allclose(recalibrated.std, std)
    np.testing.assert_allclose(recalibrated.log_prob(y), stats.norm.logpdf(y, mean, std), rtol=1e-5)
    assert metrics.calibration_error(y, recalibrated) < metrics.calibration_error(y, (mean, std))


def test_a_conformal_predictive_keeps_the_models_cdf():
    rng = np.random.default_rng(11)
    predictive, y = overconfident(rng, 200)
    conformal = ConformalRegressor().fit(predictive, y)
    calibrated = conformal.calibrated(predictive)
    np.testing.assert_array_equal(calibrated.interval(0.9), conformal.interval(predictive, 0.9))
    np.testing.assert_allclose(calibrated.cdf(y), predictive.cdf(y))
    np.testing.assert_allclose(calibrated.quantile(0.3), predictive.quantile(0.3))
    with pytest.raises(NotFittedError, match="ConformalRegressor is not fitted"):
        ConformalRegressor().calibrated(predictive)


def test_calibrators_serialize_by_name_and_methods_map_to_calibrators():
    rng = np.random.default_rng(12)
    predictive, y = overconfident(rng, 100)
    classifier, _, labels = overconfident_classifier(rng, 100)
    fitted = [QuantileRecalibrator().fit(predictive, y), ConformalRegressor().fit(predictive, y),
              TemperatureScaling().fit(classifier, labels)]
    for calibrator in fitted:
        entry = json.loads(json.dumps(serialize_calibrator(calibrator)))
        assert entry["class"] == type(calibrator).__name__
        restored = deserialize_calibrator(entry)
        assert type(restored) is type(calibrator) and restored.is_fitted
        assert restored.get_config() == calibrator.get_config()
    assert CALIBRATORS.names() == ["ConformalRegressor", "QuantileRecalibrator", "TemperatureScaling"]
    for method in CalibrationMethod:
        assert calibration_method(make_calibrator(method.value)) == method.value
    with pytest.raises(ValueError, match="Unknown method='isotonic'"):
        make_calibrator("isotonic")
    with pytest.raises(ValueError, match="Unknown calibrator='Platt'"):
        deserialize_calibrator({"class": "Platt", "config": {}})
