"""tfbnn.inference.variational: mean-field VI behind the estimators, its options, and
what it does (not) show in a data gap."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import tfbnn
from tfbnn import likelihoods
from tfbnn.datasets import gap_data
from tfbnn.demo import gap_ratio
from tfbnn.inference import INFERENCE, FitSettings
from tfbnn.inference.variational import VariationalInference
from tfbnn.layers.posterior import variational_layers
from tfbnn.training.stream import Stream


def test_vi_is_registered():
    assert INFERENCE.get("vi") is VariationalInference


@pytest.mark.parametrize("options, message", [
    ({"estimator": "reinforce"}, r"Unknown estimator='reinforce'; expected one of \["),
    ({"posterior_scale_init": 0.0}, "posterior_scale_init must be a positive finite number"),
    ({"posterior_scale_init": "wide"}, "posterior_scale_init must be a number, got 'wide'"),
    ({"decay_fraction": 1.5}, r"decay_fraction must be in \[0, 1\], got 1.5"),
    ({"decay_fraction": "end"}, "decay_fraction must be a number, got 'end'"),
])
def test_bad_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        VariationalInference(**options)


@pytest.mark.xfail(strict=True, reason=(
    "Mean-field Gaussian VI does not widen its uncertainty between clusters of data "
    "(Foong et al., 2019, 'In-Between' Uncertainty in Bayesian Neural Networks): with "
    "(50, 50) units, 200 points and 400 epochs the gap ratio was 1.12 (seed 0) and 0.81 "
    "(seed 1), against > 1.5 for ensembles, SWAG and MC dropout on the same data"))
def test_epistemic_variance_is_larger_in_the_gap():
    x, y = gap_data()
    model = tfbnn.BayesianRegressor(hidden_units=(50, 50), inference="vi", epochs=400,
                                    inference_options={"jit_compile": False},
                                    random_state=0).fit(x, y)
    assert model.score(x, y) > 0.9  # the fit itself is good
    assert gap_ratio(model, x) > 1.5


# -- the estimator's defaults reach the mean-field optimum ------------------------------


def linear_problem(n, d, noise, seed):
    """Correlated features on different scales and a linear target with Gaussian noise."""
    rng = np.random.default_rng(seed)
    mixing = np.eye(d) + 0.5 * rng.normal(size=(d, d)) / np.sqrt(d)
    X = rng.normal(size=(n, d)) @ mixing * rng.uniform(0.5, 3.0, d) + rng.normal(size=d)
    y = X @ rng.normal(size=d) + 2.0 + noise * rng.normal(size=n)
    return X, y


def mean_field_optimum(X, y, noise):
    """Means and sds of the mean-field optimum of Bayesian linear regression, in the
    standardised space the estimator trains in (where the Normal(0, 1) prior acts).

    The exact posterior is `N(m, S)` with `S^-1 = A'A / s^2 + I` and `m = S A'y / s^2`
    (Bishop 2006, eq. 3.53-3.54); the factorised Gaussian closest to it in
    KL[q || p] has means `m` and variances `1 / diag(S^-1)` (Bishop 2006, sec. 10.1.2).
    """
    xs = (X - X.mean(0)) / X.std(0)
    pooled = y.std()  # a fixed noise scale keeps one pooled target scale
    ys, s = (y - y.mean()) / pooled, noise / pooled
    design = np.c_[xs, np.ones(len(xs))]  # the kernel, then the bias
    precision = design.T @ design / s**2 + np.eye(design.shape[1])
    return np.linalg.solve(precision, design.T @ ys / s**2), 1 / np.sqrt(np.diag(precision))


def fitted_posterior(model):
    (layer,) = variational_layers(model.inference_.model)
    kernel, bias = (np.asarray(layer.posterior_params(name)) for name in ("kernel", "bias"))
    # A fixed-noise Gaussian has one network output: the mean.
    return np.r_[kernel[0, :, 0], bias[0, :1]], np.r_[kernel[1, :, 0], bias[1, :1]]


def check_reaches_optimum(n, d, noise, seed=0):
    X, y = linear_problem(n, d, noise, seed)
    # As a user would: only a linear network and a known noise scale are set.
    model = tfbnn.BayesianRegressor(hidden_units=(), likelihood=likelihoods.Gaussian(noise),
                                    random_state=seed).fit(X, y)
    loc, scale = fitted_posterior(model)
    best_loc, best_scale = mean_field_optimum(X, y, noise)
    z = np.abs(loc - best_loc) / best_scale
    ratio = scale / best_scale
    assert z.max() < 0.2, f"means {z.round(2)} posterior sds from the optimum"
    assert np.all(np.abs(ratio - 1) < 0.2), f"sds {ratio.round(3)} x the optimum"


@pytest.mark.parametrize("n, d, noise", [(50, 3, 0.5), (500, 5, 1.0)])
def test_default_vi_reaches_the_mean_field_optimum(n, d, noise):
    check_reaches_optimum(n, d, noise)


@pytest.mark.slow
@pytest.mark.parametrize("n, d, noise", [(5000, 10, 0.5), (200, 20, 2.0), (20, 3, 3.0)])
def test_default_vi_reaches_the_mean_field_optimum_at_more_sizes(n, d, noise):
    check_reaches_optimum(n, d, noise, seed=1)


def test_auto_epochs_give_vi_its_minimum_steps():
    X, y = linear_problem(40, 2, 0.5, 0)
    history = tfbnn.BayesianRegressor(hidden_units=(), random_state=0).fit(X, y).history_
    steps_per_epoch = 2  # 40 rows in batches of 32
    assert len(history["loss"]) == VariationalInference.MIN_AUTO_STEPS // steps_per_epoch
    other = tfbnn.BayesianRegressor(hidden_units=(), inference="mc_dropout", random_state=0)
    assert len(other.fit(X, y).history_["loss"]) == 400


def test_the_default_optimizers_learning_rate_decays_at_the_end():
    x = np.zeros((100, 2), np.float32)
    settings = FitSettings(epochs=10, batch_size=32, learning_rate=0.01,
                           validation_fraction=0.2)
    decayed = VariationalInference(decay_fraction=0.5).decaying(settings, x).optimizer
    schedule = keras.optimizers.schedules.deserialize(decayed.get_config()["learning_rate"])
    # 80 training rows in 3 batches: 30 steps, the last 15 decaying to 1% of the rate.
    np.testing.assert_allclose([float(schedule(t)) for t in (0, 15, 30)], [0.01, 0.01, 1e-4],
                               rtol=1e-4)
    for own in ("sgd", keras.optimizers.SGD(0.1)):
        own_settings = FitSettings(optimizer=own)
        assert VariationalInference().decaying(own_settings, x) is own_settings
    assert VariationalInference(decay_fraction=0).decaying(settings, x) is settings
    # A stream: a step per batch of its own, 4 batches a pass, so 40 steps.
    stream = Stream([(x[:10], np.zeros((10, 1), np.float32))] * 4)
    streamed = VariationalInference(decay_fraction=0.5).decaying(
        FitSettings(epochs=10, batch_size=32, learning_rate=0.01), stream).optimizer
    schedule = keras.optimizers.schedules.deserialize(streamed.get_config()["learning_rate"])
    np.testing.assert_allclose([float(schedule(t)) for t in (0, 20, 40)], [0.01, 0.01, 1e-4],
                               rtol=1e-4)


def test_decay_fraction_is_saved_with_the_model(tmp_path):
    X, y = linear_problem(40, 2, 0.5, 0)
    model = tfbnn.BayesianRegressor(hidden_units=(), epochs=2, random_state=0,
                                    inference_options={"decay_fraction": 0.5}).fit(X, y)
    model.save(tmp_path / "m")
    loaded = tfbnn.load(tmp_path / "m")
    assert loaded.inference_.decay_fraction == 0.5
    np.testing.assert_allclose(loaded.predict(X), model.predict(X), rtol=1e-5)
