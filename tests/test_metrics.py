"""Every metric against an independent value: closed forms, scipy, sklearn or a hand count."""

import numpy as np
import pytest
from scipy import integrate, special, stats
from sklearn import metrics as skm

from tfbnn import metrics
from tfbnn.likelihoods import (
    Bernoulli,
    Categorical,
    Gaussian,
    HeteroscedasticGaussian,
    Poisson,
    StudentT,
)
from tfbnn.predictive import Predictive

RNG = np.random.default_rng(20240601)


def gaussian_predictive(locs, noise, **kwargs):
    """A Predictive whose draws are `Normal(locs[s], noise)`; `locs` is `(S, B)`."""
    return Predictive(Gaussian(scale=noise), np.asarray(locs)[..., None], squeeze=True, **kwargs)


@pytest.fixture(scope="module")
def regression():
    locs = RNG.normal(size=(3, 40))
    y = locs.mean(axis=0) + RNG.normal(size=40)
    return gaussian_predictive(locs, 0.7), locs, y


@pytest.fixture(scope="module")
def classification():
    logits = RNG.normal(size=(4, 60, 3)) * 2
    predictive = Predictive(Categorical(3), logits)
    labels = RNG.integers(0, 3, size=60)
    return predictive, special.softmax(logits, axis=-1).mean(axis=0), labels


# -- regression -------------------------------------------------------------------


def test_rmse_and_mae_match_sklearn_on_the_predictive_mean(regression):
    predictive, locs, y = regression
    mean = locs.mean(axis=0)
    assert metrics.rmse(y, predictive) == pytest.approx(skm.root_mean_squared_error(y, mean))
    assert metrics.mae(y, predictive) == pytest.approx(skm.mean_absolute_error(y, mean))
    assert metrics.rmse(y, mean) == pytest.approx(np.sqrt(np.mean((y - mean) ** 2)))


def test_rmse_uses_user_units():
    z = RNG.normal(size=(1, 10))
    predictive = gaussian_predictive(z, 1.0, shift=5.0, scale=2.0)
    y = RNG.normal(size=10)
    assert metrics.rmse(y, predictive) == pytest.approx(
        np.sqrt(np.mean((y - (5 + 2 * z[0])) ** 2)), rel=1e-6)
    # The density picks up the Jacobian of y = 5 + 2 z.
    assert metrics.nll(y, predictive) == pytest.approx(
        -stats.norm.logpdf(y, 5 + 2 * z[0], 2.0).mean(), rel=1e-5)


def test_nll_of_a_mixture_is_the_log_mean_of_component_densities(regression):
    predictive, locs, y = regression
    density = stats.norm.pdf(y[None], locs, 0.7).mean(axis=0)
    assert metrics.nll(y, predictive) == pytest.approx(-np.mean(np.log(density)), rel=1e-5)


def test_nll_does_not_assume_a_gaussian():
    locs = RNG.normal(size=(1, 30))
    predictive = Predictive(StudentT(df=3.0, scale=0.5), locs[..., None], squeeze=True)
    y = RNG.normal(size=30)
    expected = -np.mean(stats.t.logpdf(y, 3.0, locs[0], 0.5))
    assert metrics.nll(y, predictive) == pytest.approx(expected, rel=1e-5)


def test_nll_gaussian_tuple_matches_scipy():
    mean, std, y = RNG.normal(size=20), RNG.uniform(0.5, 2, 20), RNG.normal(size=20)
    assert metrics.nll(y, (mean, std)) == pytest.approx(-stats.norm.logpdf(y, mean, std).mean())


def test_nll_of_several_targets_is_joint_per_example():
    locs = RNG.normal(size=(1, 15, 2))
    predictive = Predictive(Gaussian(scale=0.5), locs)
    y = RNG.normal(size=(15, 2))
    expected = -np.mean(stats.norm.logpdf(y, locs[0], 0.5).sum(axis=1))
    assert metrics.nll(y, predictive) == pytest.approx(expected, rel=1e-5)


def test_one_dimensional_targets_fit_an_unsqueezed_predictive():
    locs = RNG.normal(size=(1, 12, 1))
    predictive = Predictive(Gaussian(scale=0.5), locs, squeeze=False)  # mean is (12, 1)
    y = RNG.normal(size=12)
    assert metrics.nll(y, predictive) == pytest.approx(
        -stats.norm.logpdf(y, locs[0, :, 0], 0.5).mean(), rel=1e-5)
    assert metrics.calibration_error(y, predictive) == pytest.approx(
        metrics.calibration_error(y, (locs[0, :, 0], np.full(12, 0.5))), abs=1e-6)


@pytest.mark.parametrize("y_shape", [(20,), (20, 1)])
def test_every_regression_metric_is_the_same_for_squeezed_and_column_predictives(y_shape):
    params = RNG.normal(size=(5, 20, 2)).astype("float32")
    kwargs = {"shift": 3.0, "scale": 2.0, "seed": 0}  # the seed: the same samples for the CRPS
    flat = Predictive(HeteroscedasticGaussian(), params, **kwargs)  # (20,) by default
    column = Predictive(HeteroscedasticGaussian(), params, squeeze=False, **kwargs)
    assert flat.mean.shape == (20,) and column.mean.shape == (20, 1)
    y = (3.0 + 2.0 * RNG.normal(size=20)).reshape(y_shape)
    expected = metrics.evaluate(column, y=y.reshape(20, 1), level=0.9)
    got = metrics.evaluate(flat, y=y, level=0.9)
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-9), name


def crps_by_integration(y, mean, std):
    cdf = stats.norm(mean, std).cdf
    below, _ = integrate.quad(lambda x: cdf(x) ** 2, -np.inf, y)
    above, _ = integrate.quad(lambda x: (cdf(x) - 1.0) ** 2, y, np.inf)
    return below + above


@pytest.mark.parametrize("y, mean, std", [(0.3, 0.0, 1.0), (-2.0, 1.0, 0.5), (4.0, 3.5, 3.0)])
def test_gaussian_crps_matches_numerical_integration(y, mean, std):
    closed = metrics.crps_gaussian(np.array([y]), np.array([mean]), np.array([std]))[0]
    assert closed == pytest.approx(crps_by_integration(y, mean, std), rel=1e-6)


def test_sample_crps_matches_the_pairwise_definition():
    samples = RNG.normal(size=(7, 3))
    y = RNG.normal(size=3)
    expected = []
    for b in range(3):
        x = samples[:, b]
        pairs = np.abs(x[:, None] - x[None, :]).sum() / (7 * 6)
        expected.append(np.mean(np.abs(x - y[b])) - pairs / 2)
    np.testing.assert_allclose(metrics.crps_samples(y, samples), expected)


def test_sample_crps_is_unbiased_even_with_two_draws():
    # Many independent two-draw estimates of the CRPS of N(0, 1) at y = 0.4.
    samples = RNG.normal(size=(2, 200_000))
    y = np.full(200_000, 0.4)
    estimates = metrics.crps_samples(y, samples)
    closed = metrics.crps_gaussian([0.4], [0.0], [1.0])[0]
    tolerance = 4 * estimates.std() / np.sqrt(estimates.size)
    assert abs(estimates.mean() - closed) < tolerance


def test_predictive_crps_approaches_the_closed_form_with_many_draws():
    b, s = 20, 4000
    loc = RNG.normal(size=b)
    predictive = gaussian_predictive(np.broadcast_to(loc, (s, b)), 0.8, seed=3)
    y = loc + RNG.normal(size=b)
    closed = metrics.crps(y, (loc, np.full(b, 0.8)))
    # Per-target estimate error is about 0.8 * 0.6 / sqrt(S); averaged over 20 targets.
    assert metrics.crps(y, predictive) == pytest.approx(closed, abs=0.01)


def test_coverage_and_width_use_the_predictive_interval():
    loc = RNG.normal(size=200)
    predictive = gaussian_predictive(loc[None], 1.5)
    y = loc + RNG.normal(scale=1.5, size=200)
    lower, upper = stats.norm.interval(0.8, loc, 1.5)
    inside = np.mean((y >= lower) & (y <= upper))
    assert metrics.coverage(y, predictive, level=0.8) == pytest.approx(inside, abs=1 / 200)
    assert metrics.interval_width(y, predictive, 0.8) == pytest.approx(
        2 * 1.5 * stats.norm.ppf(0.9), rel=1e-4)


def test_interval_metrics_by_hand():
    y = np.array([0.0, 2.0, -3.0, 1.0])
    lower = np.array([-1.0, -1.0, -1.0, 1.0])
    upper = np.array([1.0, 1.0, 1.0, 1.5])
    assert metrics.coverage(y, (lower, upper)) == 0.5
    assert metrics.interval_width(y, (lower, upper)) == pytest.approx((2 + 2 + 2 + 0.5) / 4)
    # alpha = 0.2: penalties 2 / 0.2 * 1 (above by 1) and 2 / 0.2 * 2 (below by 2).
    assert metrics.interval_score(y, (lower, upper), level=0.8) == pytest.approx(
        (2 + (2 + 10) + (2 + 20) + 0.5) / 4)


def test_calibration_curve_counts_pit_values_by_hand():
    u = np.array([0.05, 0.3, 0.31, 0.7, 0.95])
    mean, std = np.zeros(5), np.ones(5)
    y = stats.norm.ppf(u)
    expected, observed = metrics.calibration_curve(y, (mean, std), levels=[0.1, 0.5, 0.9])
    np.testing.assert_allclose(expected, [0.1, 0.5, 0.9])
    np.testing.assert_allclose(observed, [1 / 5, 3 / 5, 4 / 5])
    assert metrics.calibration_error(y, (mean, std), levels=[0.1, 0.5, 0.9]) == pytest.approx(
        (0.1 + 0.1 + 0.1) / 3)


def test_miscalibration_area_of_an_overconfident_gaussian():
    # Truth N(0, 1), predictive N(0, s): observed(p) = Phi(s * Phi^-1(p)).
    s, n = 0.4, 20_000
    y = RNG.normal(size=n)
    area, _ = integrate.quad(lambda p: abs(stats.norm.cdf(s * stats.norm.ppf(p)) - p), 0, 1)
    levels = np.linspace(0.001, 0.999, 999)
    assert metrics.miscalibration_area(y, (np.zeros(n), np.full(n, s)), levels) == pytest.approx(
        area, abs=0.01)
    grid = np.linspace(0.01, 0.99, 99)  # the documented default levels
    mean_abs = np.mean(np.abs(stats.norm.cdf(s * stats.norm.ppf(grid)) - grid))
    assert metrics.calibration_error(y, (np.zeros(n), np.full(n, s))) == pytest.approx(
        mean_abs, abs=0.01)


def test_calibrated_predictive_has_small_calibration_error():
    loc = RNG.normal(size=3000)
    predictive = gaussian_predictive(loc[None], 1.0)
    y = loc + RNG.normal(size=3000)
    assert metrics.calibration_error(y, predictive) < 0.02
    assert metrics.miscalibration_area(y, predictive) < 0.02


def test_coverage_curve_matches_coverage_at_each_level():
    loc = RNG.normal(size=300)
    predictive = gaussian_predictive(loc[None], 0.6)
    y = loc + RNG.normal(size=300)
    levels, observed = metrics.coverage_curve(y, predictive, levels=[0.5, 0.9])
    direct = [metrics.coverage(y, predictive, level) for level in levels]
    np.testing.assert_allclose(observed, direct, atol=1 / 300)


def test_coverage_curve_of_a_discrete_predictive_uses_its_intervals():
    predictive = Predictive(Poisson(), np.log(np.full((1, 500, 1), 4.0)), squeeze=True)
    y = RNG.poisson(4.0, size=500)
    lower, upper = stats.poisson.ppf(0.05, 4.0), stats.poisson.ppf(0.95, 4.0)
    _, observed = metrics.coverage_curve(y, predictive, levels=[0.9])
    assert observed[0] == pytest.approx(np.mean((y >= lower) & (y <= upper)))


def test_sharpness_is_root_mean_total_variance(regression):
    predictive, locs, _ = regression
    var = 0.7**2 + locs.var(axis=0)
    assert metrics.sharpness(predictive) == pytest.approx(np.sqrt(var.mean()), rel=1e-5)
    assert metrics.sharpness(np.array([3.0, 4.0])) == pytest.approx(np.sqrt(12.5))


# -- classification ---------------------------------------------------------------


def test_classification_metrics_match_sklearn(classification):
    predictive, probs, labels = classification
    assert metrics.accuracy(labels, predictive) == pytest.approx(
        skm.accuracy_score(labels, probs.argmax(axis=1)))
    assert metrics.accuracy(labels, probs.argmax(axis=1)) == metrics.accuracy(labels, probs)
    assert metrics.nll(labels, predictive) == pytest.approx(
        skm.log_loss(labels, probs, labels=[0, 1, 2]), rel=1e-5)
    assert metrics.nll(labels, probs) == pytest.approx(skm.log_loss(labels, probs), rel=1e-9)
    assert metrics.brier_score(labels, predictive) == pytest.approx(
        skm.brier_score_loss(labels, probs, labels=[0, 1, 2]), rel=1e-5)


def test_string_class_labels_are_mapped_through_classes():
    logits = RNG.normal(size=(2, 30, 1))
    predictive = Predictive(Bernoulli(), logits, classes=np.array(["no", "yes"]))
    p1 = special.expit(logits[..., 0]).mean(axis=0)
    labels = np.where(RNG.uniform(size=30) < p1, "yes", "no")
    assert metrics.accuracy(labels, predictive) == pytest.approx(
        np.mean((p1 > 0.5) == (labels == "yes")))
    # Binary Brier here sums both classes: twice sklearn's positive-class score.
    assert metrics.brier_score(labels, predictive) == pytest.approx(
        2 * skm.brier_score_loss((labels == "yes").astype(int), p1), rel=1e-5)


def test_ece_and_mce_by_hand():
    probs = np.array([[0.95, 0.05], [0.9, 0.1], [0.15, 0.85], [0.4, 0.6], [0.45, 0.55]])
    labels = np.array([0, 1, 1, 0, 1])
    # Confidences 0.95, 0.9, 0.85, 0.6, 0.55 -> uniform 5 bins (lo, hi]:
    # (0.4, 0.6]: {0.6 wrong, 0.55 right} acc 0.5, conf 0.575;
    # (0.8, 1.0]: {0.95 right, 0.9 wrong, 0.85 right} acc 2/3, conf 0.9.
    ece = 2 / 5 * abs(0.5 - 0.575) + 3 / 5 * abs(2 / 3 - 0.9)
    assert metrics.expected_calibration_error(labels, probs, n_bins=5) == pytest.approx(ece)
    assert metrics.maximum_calibration_error(labels, probs, n_bins=5) == pytest.approx(
        0.9 - 2 / 3)
    # Equal mass, 2 bins of sorted confidences: {0.55, 0.6, 0.85} and {0.9, 0.95}.
    ece_q = 3 / 5 * abs(2 / 3 - (0.55 + 0.6 + 0.85) / 3) + 2 / 5 * abs(0.5 - 0.925)
    assert metrics.expected_calibration_error(
        labels, probs, n_bins=2, strategy="quantile") == pytest.approx(ece_q)


def test_equal_mass_bins_hold_equal_counts(classification):
    predictive, _, labels = classification
    bins = metrics.reliability_bins(labels, predictive, n_bins=6, strategy="quantile")
    assert bins["count"].tolist() == [10] * 6
    assert np.all(np.diff(bins["confidence"]) >= 0)
    uniform = metrics.reliability_bins(labels, predictive, n_bins=6)
    assert uniform["count"].sum() == 60
    np.testing.assert_allclose(uniform["edges"], np.linspace(0, 1, 7))


def test_ood_auroc_matches_mann_whitney():
    inside, outside = RNG.normal(size=50), RNG.normal(0.8, 1.0, size=70)
    u = stats.mannwhitneyu(outside, inside).statistic
    assert metrics.ood_auroc(inside, outside) == pytest.approx(u / (50 * 70))


def test_ood_auroc_from_predictives():
    confident = Predictive(Categorical(3), np.tile([[[8.0, 0.0, 0.0]]], (4, 20, 1)))
    vague = Predictive(Categorical(3), RNG.normal(scale=0.3, size=(4, 20, 3)))
    assert metrics.ood_auroc(confident, vague) == 1.0
    assert metrics.ood_auroc(confident, vague, measure="mutual_information") > 0.5
    narrow = gaussian_predictive(RNG.normal(size=(5, 10)) * 0.01, 0.5)
    wide = gaussian_predictive(RNG.normal(size=(5, 10)) * 3.0, 0.5)
    assert metrics.ood_auroc(narrow, wide) == 1.0
    assert metrics.ood_auroc(narrow, wide, measure="epistemic_std") == 1.0


# -- evaluate ---------------------------------------------------------------------


def test_evaluate_regression_collects_every_metric(regression):
    predictive, _, y = regression
    result = metrics.evaluate(predictive, y=y, level=0.9)
    assert set(result) == {"rmse", "mae", "nll", "crps", "coverage", "interval_width",
                           "interval_score", "calibration_error", "miscalibration_area",
                           "sharpness", "level"}
    assert result["coverage"] == metrics.coverage(y, predictive, 0.9)
    assert result["nll"] == metrics.nll(y, predictive)
    assert all(isinstance(v, float) for v in result.values())


def test_evaluate_classification_through_a_model(classification):
    predictive, _, labels = classification

    class Model:
        def predict_distribution(self, X):
            assert X.shape == (60, 2)
            return predictive

    result = metrics.evaluate(Model(), np.zeros((60, 2)), labels)
    assert set(result) == {"accuracy", "nll", "brier_score", "ece", "mce", "mean_entropy",
                           "mean_mutual_information"}
    assert result["ece"] == metrics.expected_calibration_error(labels, predictive)
    assert result["accuracy"] == metrics.accuracy(labels, predictive)
    assert result["mean_entropy"] == pytest.approx(np.mean(predictive.entropy))
    assert result["mean_mutual_information"] == pytest.approx(
        np.mean(predictive.entropy - predictive.expected_entropy))


# -- errors -----------------------------------------------------------------------


def test_errors_name_the_problem(regression, classification):
    predictive, locs, y = regression
    cls_predictive, probs, labels = classification
    with pytest.raises(ValueError, match="y_true has 39 examples but the predictive has 40"):
        metrics.nll(y[:-1], predictive)
    with pytest.raises(ValueError, match="y_true has 3 examples but y_pred has 4"):
        metrics.rmse(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="y_true contains NaN"):
        metrics.crps(np.full(40, np.nan), predictive)
    with pytest.raises(ValueError, match="the predictive mean contains NaN"):
        metrics.rmse(y[:2], gaussian_predictive(np.array([[0.0, np.nan]]), 1.0))
    with pytest.raises(ValueError, match="y_pred contains NaN"):
        metrics.mae(np.zeros(2), np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="level must be strictly between 0 and 1"):
        metrics.coverage(y, predictive, level=1.0)
    with pytest.raises(ValueError, match="level must be strictly between 0 and 1"):
        metrics.interval_score(y, (y - 1, y + 1), level=0.0)
    with pytest.raises(ValueError, match=r"Unknown strategy='equal'; expected one of"):
        metrics.expected_calibration_error(labels, probs, strategy="equal")
    with pytest.raises(ValueError, match="n_bins must be an integer >= 1"):
        metrics.maximum_calibration_error(labels, probs, n_bins=0)
    with pytest.raises(ValueError, match="Unknown class label 7"):
        metrics.accuracy(np.full(60, 7), cls_predictive)
    with pytest.raises(ValueError, match="rmse is a regression metric"):
        metrics.rmse(labels, cls_predictive)
    with pytest.raises(ValueError, match="needs a classification predictive"):
        metrics.brier_score(y, predictive)
    with pytest.raises(ValueError, match="must be non-negative and sum to 1"):
        metrics.brier_score([0, 1], np.array([[0.5, 0.6], [0.5, 0.5]]))
    with pytest.raises(ValueError, match=r"shape \(B, K\)"):
        metrics.nll([0, 1], np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match=r"takes a Predictive or a \(mean, std\) tuple"):
        metrics.crps(y, locs[0])
    with pytest.raises(ValueError, match="std must be positive"):
        metrics.crps(y, (y, np.zeros(40)))
    with pytest.raises(ValueError, match="lower exceeds upper"):
        metrics.coverage(y, (y + 1, y - 1))
    with pytest.raises(ValueError, match=r"levels must be probabilities in \[0, 1\]"):
        metrics.calibration_error(y, predictive, levels=[0.5, 1.5])
    with pytest.raises(ValueError, match="samples must have shape"):
        metrics.crps_samples(y, y[None])
    with pytest.raises(ValueError, match="measure='entropy' does not apply to a regression"):
        metrics.ood_auroc(predictive, predictive, measure="entropy")
    with pytest.raises(ValueError, match="Unknown measure='variance'"):
        metrics.ood_auroc(predictive, predictive, measure="variance")
    with pytest.raises(ValueError, match="X is only used with a model"):
        metrics.evaluate(predictive, np.zeros((40, 1)), y)
    with pytest.raises(ValueError, match="evaluate needs the targets y"):
        metrics.evaluate(predictive)
    with pytest.raises(ValueError, match="evaluate needs X"):
        metrics.evaluate(type("M", (), {"predict_distribution": None})(), y=y)


@pytest.mark.parametrize("metric", [metrics.accuracy, metrics.brier_score,
                                    metrics.expected_calibration_error])
def test_classification_metrics_refuse_no_examples(metric):
    with pytest.raises(ValueError, match="y_true holds no examples"):
        metric([], np.zeros((0, 2)))
