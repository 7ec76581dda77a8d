"""HMC / NUTS: exactness against the closed-form linear posterior, the MAP start, chain
groups, the mixing warning, and option validation.

Fits that share an architecture, likelihood and data shape share compiled programs
(the chain runner cache), so the linear-model tests reuse one trace. The default run
uses plain TensorFlow graphs (`jit_compile=False`); the XLA path runs in the slow
tests and in `benchmarks/bench_hmc.py`.
"""

import warnings

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import tfbnn
from tfbnn import likelihoods as lik
from tfbnn import models, priors
from tfbnn.inference import diagnostics as diag
from tfbnn.inference import get as get_inference
from tfbnn.inference import hmc, mcmc
from tfbnn.inference.base import FitSettings
from tfbnn.inference.hmc import HamiltonianMonteCarlo
from tfbnn.inference.mcmc import LogPosterior

NOISE = 0.5
LINEAR = FitSettings(hidden_units=(), prior=priors.Normal(0.0, 1.0), seed=0)


@pytest.fixture(scope="module")
def linear_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 3)).astype(np.float32)
    y = (x @ np.array([0.8, -0.5, 0.3]) + 0.2 + NOISE * rng.normal(size=30)).astype(np.float32)
    return x, y[:, None]


def closed_form_posterior(x, y, noise, prior_scale=1.0):
    """Mean and covariance of `[w, b]` for `y = x w + b + N(0, noise^2)`, `N(0, s^2)` prior."""
    phi = np.hstack([x, np.ones((len(x), 1))]).astype(np.float64)
    precision = np.eye(phi.shape[1]) / prior_scale**2 + phi.T @ phi / noise**2
    cov = np.linalg.inv(precision)
    return cov @ phi.T @ y[:, 0].astype(np.float64) / noise**2, cov


@pytest.mark.parametrize("options", [
    # Plain graphs in the default run: XLA's compile of NUTS dwarfs these tiny runs.
    {"jit_compile": False},  # on 2 or more cores: two groups of two chains
    {"jit_compile": False, "threads": 1},  # one batch of four
    {"jit_compile": False, "warmup_tree_depth": 1},  # a shallow warm-up
    pytest.param({}, marks=pytest.mark.slow),
    pytest.param({"kernel": "hmc", "num_leapfrog_steps": 3}, marks=pytest.mark.slow),
    pytest.param({"mass_matrix": "identity", "num_warmup": 300, "num_samples": 500,
                  "thin": 2}, marks=pytest.mark.slow),
])
def test_matches_closed_form_linear_posterior(linear_data, options):
    x, y = linear_data
    options = {"n_chains": 4, "num_warmup": 150, "num_samples": 200, **options}
    method = HamiltonianMonteCarlo(**options)
    method.fit(x, y, lik.Gaussian(scale=NOISE), LINEAR)
    mean, cov = closed_form_posterior(x, y, NOISE)
    draws = method.draws_.reshape(-1, 4).astype(np.float64)  # kernel (3, 1), then bias
    sd = np.sqrt(np.diag(cov))
    # Monte-Carlo standard errors from effective sample sizes (capped at the number of
    # draws: antithetic HMC chains can exceed it for the mean but not for the
    # variance): of the mean sd / sqrt(ESS), of the variance about
    # var * sqrt(2 / ESS of the squared deviations) for Gaussian draws.
    ess = np.minimum(diag.effective_sample_size(method.draws_), len(draws))
    squares = (method.draws_ - mean) ** 2
    ess_var = np.minimum(diag.effective_sample_size(squares), len(draws))
    z_mean = (draws.mean(0) - mean) / (sd / np.sqrt(ess))
    assert np.all(np.abs(z_mean) < 4.5), z_mean
    z_var = (draws.var(0) - sd**2) / (sd**2 * np.sqrt(2.0 / ess_var))
    assert np.all(np.abs(z_var) < 4.5), z_var
    corr = np.corrcoef(draws.T)
    exact_corr = cov / np.outer(sd, sd)
    assert np.max(np.abs(corr - exact_corr)) < 4.5 / np.sqrt(ess.min())
    d = method.diagnostics_
    assert d["rhat_params_max"] < diag.RHAT_THRESHOLD and d["n_divergences"] == 0
    assert 0.5 < d["acceptance_rate"] <= 1.0


def test_map_start_is_keras_adam_on_the_per_example_negative_log_posterior(linear_data):
    x, y = (tf.constant(v) for v in linear_data)
    likelihood = lik.Gaussian(trainable=True)
    model = models.network(3, 1, likelihood, LINEAR, seed=0, name="linear")
    lp = LogPosterior(model, likelihood, priors.Normal())
    start = tf.constant(lp.initial_state(2, "map", seed=0))
    theta, m, v = start, tf.zeros_like(start), tf.zeros_like(start)
    for t in range(1, 16):  # Adam by hand: Kingma & Ba's update, Keras' epsilon
        with tf.GradientTape() as tape:
            tape.watch(theta)
            loss = -tf.reduce_sum(lp(theta, x, y)) / len(linear_data[0])
        grad = tape.gradient(loss, theta)
        m, v = 0.9 * m + 0.1 * grad, 0.999 * v + 0.001 * grad**2
        rate = mcmc.MAP_LEARNING_RATE * np.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        theta = theta - rate * m / (tf.sqrt(v) + 1e-7)
    found = mcmc.map_estimate(lp, start, x, y, 15).numpy()
    np.testing.assert_allclose(found, theta.numpy(), rtol=1e-4, atol=1e-6)
    assert np.abs(found - start.numpy()).max() > 0.05  # it moved


def test_chain_groups_run_side_by_side_and_repeat_exactly(linear_data, monkeypatch):
    x, y = linear_data
    calls = []

    def recording(fns):
        calls.append(len(fns))
        return run_concurrently(fns)

    run_concurrently = hmc.run_concurrently
    monkeypatch.setattr(hmc, "run_concurrently", recording)
    fits = []
    for _ in range(2):
        method = HamiltonianMonteCarlo(n_chains=4, num_warmup=60, num_samples=20,
                                       max_tree_depth=3, threads=2, jit_compile=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", diag.ConvergenceWarning)  # a short run
            method.fit(x, y, lik.Gaussian(scale=NOISE), LINEAR)
        fits.append(method)
    # Every warm-up and sampling call ran the two groups of two chains together.
    assert calls and set(calls) == {2}
    assert fits[0].draws_.shape == (20, 4, 4)
    np.testing.assert_array_equal(fits[0].draws_, fits[1].draws_)
    # The groups are independent chains: they do not start or end in one place.
    assert not np.allclose(fits[0].draws_[-1, :2], fits[0].draws_[-1, 2:])


@pytest.mark.parametrize("depths, expected", [
    ({"max_tree_depth": 5, "warmup_tree_depth": 2}, [2, 2, 5, 5]),
    ({"max_tree_depth": 8}, [6, 6, 8, 8]),  # the default: WARMUP_TREE_DEPTH
    ({"max_tree_depth": 4}, [4, 4, 4, 4]),  # never deeper than max_tree_depth
])
def test_warm_up_runs_shallow_trees_until_its_last_window(linear_data, monkeypatch, depths,
                                                          expected):
    x, y = linear_data
    used = []
    advance_groups = hmc._advance_groups

    def recording(*args):
        used.append(args[-1])
        return advance_groups(*args)

    monkeypatch.setattr(hmc, "_advance_groups", recording)
    method = HamiltonianMonteCarlo(n_chains=2, num_warmup=150, num_samples=50,
                                   jit_compile=False, **depths)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", diag.ConvergenceWarning)  # a short run
        method.fit(x, y, lik.Gaussian(scale=NOISE), LINEAR)
    # Warm-up in three windows of 50 steps (step size, mass matrix, step size): the
    # first two shallow, the last at full depth, as is the one sampling call.
    assert used == expected
    assert 1.0 <= method.diagnostics_["mean_tree_depth"] <= depths["max_tree_depth"]


@pytest.mark.parametrize("depth", [2, 4])
def test_depth_limited_nuts_stops_its_trees_at_the_given_depth(depth):
    # A tiny step size on a standard normal: no U-turn for hundreds of steps, so every
    # tree runs to the limit, `2**depth - 1` leapfrog steps, with memory for depth 6.
    kernel = hmc.DepthLimitedNUTS(lambda z: -0.5 * tf.reduce_sum(z**2, -1), 1e-4, 6,
                                  tf.constant(depth))
    trace = tfp.mcmc.sample_chain(3, tf.ones([2, 3]), kernel=kernel, seed=[1, 2],
                                  trace_fn=lambda _, r: r.leapfrogs_taken).trace
    np.testing.assert_array_equal(trace.numpy(), np.full((3, 2), 2**depth - 1))


def test_unmixed_chains_warn(linear_data):
    x, y = linear_data
    # Chains started at prior draws that barely move: no warm-up, one tiny leapfrog step.
    method = HamiltonianMonteCarlo(kernel="hmc", num_leapfrog_steps=1, n_chains=4,
                                   num_warmup=0, num_samples=50, init="prior",
                                   step_size=1e-4, jit_compile=False)
    with pytest.warns(diag.ConvergenceWarning, match="R-hat"):
        method.fit(x, y, lik.Gaussian(scale=NOISE), LINEAR)
    assert method.diagnostics_["rhat_log_lik"] > 1.1
    assert diag.problems(method.diagnostics_)


def test_regressor_samples_weights_and_noise_with_diagnostics():
    rng = np.random.default_rng(2)
    X = rng.uniform(-1, 1, size=(40, 2))
    y = np.sin(2 * X[:, 0]) + 0.1 * rng.normal(size=40)
    model = tfbnn.BayesianRegressor(
        hidden_units=(8,), inference="hmc", n_samples=60, random_state=0,
        inference_options={"n_chains": 2, "num_warmup": 60, "num_samples": 20,
                           "max_tree_depth": 4, "map_steps": 500, "jit_compile": False},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", diag.ConvergenceWarning)  # a short run
        model.fit(X, y)
    method = model.inference_
    # Kernel, bias and output weights, and the learned noise's raw scale.
    assert method.draws_.shape == (20, 2, 8 * 2 + 8 + 8 + 1 + 1)
    for key in ("rhat_params_max", "ess_params_min", "ess_params_median", "rhat_log_lik",
                "ess_log_lik", "rhat_predictive_max", "acceptance_rate", "n_divergences",
                "step_size", "mean_leapfrogs", "mean_tree_depth"):
        assert np.isfinite(method.diagnostics_[key]), key
    mean, std = model.predict(X[:5], return_std=True)
    assert np.sqrt(np.mean((mean - y[:5]) ** 2)) < 0.5 and np.all(std > 0)


def test_classifier_fit_predict():
    """Categorical (three classes): no noise parameter to sample."""
    labels = ("a", "b", "c")
    rng = np.random.default_rng(3)
    X = rng.normal(size=(45, 2))
    sector = np.digitize(np.arctan2(X[:, 1], X[:, 0]),
                         np.linspace(-np.pi, np.pi, len(labels) + 1)[1:-1])
    y = np.asarray(labels)[sector]  # angular sectors, one class each
    model = tfbnn.BayesianClassifier(
        hidden_units=(4,), inference="hmc", random_state=0, n_samples=40,
        inference_options={"kernel": "hmc", "n_chains": 2, "num_warmup": 60,
                           "num_samples": 20, "num_leapfrog_steps": 8, "map_steps": 500,
                           "jit_compile": False},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", diag.ConvergenceWarning)
        model.fit(X, y)
    assert model.inference_.draws_.shape[-1] == 2 * 4 + 4 + 4 * model.likelihood_.n_params(1) \
        + model.likelihood_.n_params(1)
    proba = model.predict_proba(X)
    assert proba.shape == (45, len(labels)) and np.allclose(proba.sum(1), 1.0)
    assert np.mean(model.predict(X) == y) > 0.7


@pytest.mark.parametrize("options, match", [
    ({"kernel": "mala"}, "kernel"),
    ({"n_chains": 0}, "n_chains"),
    ({"num_warmup": -1}, "num_warmup"),
    ({"num_samples": 2}, "num_samples"),
    ({"thin": 0}, "thin"),
    ({"target_accept": 1.0}, "target_accept"),
    ({"step_size": -0.1}, "step_size"),
    ({"max_tree_depth": 0}, "max_tree_depth"),
    ({"warmup_tree_depth": 0}, "warmup_tree_depth must be an integer >= 1"),
    ({"max_tree_depth": 6, "warmup_tree_depth": 7}, "warmup_tree_depth=7 exceeds max_tree_depth=6"),
    ({"init": "zeros"}, "init"),
    ({"mass_matrix": "dense"}, "mass_matrix"),
    ({"noise_precision_prior": (3.0, -1.0)}, "noise_precision_prior"),
    ({"noise_precision_prior": 3.0}, "noise_precision_prior"),
    ({"threads": 0}, "threads must be 'auto' or an integer >= 1"),
])
def test_bad_options_raise(options, match):
    with pytest.raises(ValueError, match=match):
        get_inference("hmc", options)
