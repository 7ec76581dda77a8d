"""SG-MCMC (cyclical SG-HMC, SGLD): predictive sanity, preconditioning, schedule, options."""

import numpy as np
import pytest
import tensorflow as tf

import tfbnn
from tfbnn.inference import get as get_inference
from tfbnn.inference.sgmcmc import (
    StochasticGradientMCMC,
    cyclical_schedule,
    rmsprop_preconditioner,
)
from tfbnn.optimizers import FlatOptimizer


def toy_data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, 1))
    return X, np.sin(3 * X[:, 0]) + 0.1 * rng.normal(size=n)


@pytest.mark.parametrize("sampler, preconditioner, jit_compile", [
    ("sghmc_cyclical", "rmsprop", True), ("sgld", "rmsprop", False),
    ("sghmc_cyclical", "none", False), ("sgld", "none", False),
])
def test_predictive_finite_and_uncertain_away_from_data(sampler, preconditioner, jit_compile):
    X, y = toy_data()
    model = tfbnn.BayesianRegressor(
        hidden_units=(16,), inference="sgmcmc", epochs=200, batch_size=16, random_state=0,
        inference_options={"sampler": sampler, "preconditioner": preconditioner,
                           "jit_compile": jit_compile},
    ).fit(X, y)
    method = model.inference_
    assert method.n_draws == method.diagnostics_["num_draws"] > 10
    dist = model.predict_distribution(X)
    ll = dist.log_prob(y)
    assert np.all(np.isfinite(ll)) and ll.mean() > -1.0
    far = model.predict_distribution(np.array([[-3.0], [3.0]]))
    assert far.epistemic_var.min() > 5 * dist.epistemic_var.mean()


def test_preconditioning_copes_with_steep_low_noise_posteriors():
    # Noise 0.01 (about 0.014 standardised) with a vague noise prior: the likelihood's
    # gradients are thousands of times steeper than on noisy data. The plain sampler's
    # step size, right for noisy data, wanders off here; pSGLD's per-weight scaling fits.
    rng = np.random.default_rng(0)
    X, X_test = rng.uniform(-1, 1, size=(2, 256, 1))
    y, y_test = (np.sin(3 * x[:, 0]) + 0.01 * rng.normal(size=256) for x in (X, X_test))

    def test_rmse(preconditioner):
        model = tfbnn.BayesianRegressor(
            hidden_units=(16,), inference="sgmcmc", epochs=200, batch_size=32, random_state=0,
            inference_options={"preconditioner": preconditioner, "jit_compile": False,
                               "noise_precision_prior": (1.0, 0.01)}).fit(X, y)
        return np.sqrt(np.mean((model.predict(X_test) - y_test) ** 2))

    assert test_rmse("rmsprop") < 0.1 < test_rmse("none")


def test_rmsprop_step_is_psglds_preconditioned_gradient():
    """Li et al.'s plain running average of squared gradients (no bias correction), and
    `G = 1 / sqrt(v + lambda**2)`, `lambda = 1e-5`."""
    flat = FlatOptimizer(rmsprop_preconditioner(), (3,))
    state, v = flat.initial_state(), np.zeros(3)
    for grad in np.array([[1.0, -2e-3, 0.0], [3.0, 1e-3, 0.0], [-0.5, 4e-3, 0.0]]):
        step, state = flat.apply(state, tf.constant(grad, tf.float32), tf.zeros(3))
        v = 0.99 * v + 0.01 * grad**2
        np.testing.assert_allclose(-step.numpy(), grad / np.sqrt(v + 1e-10), rtol=1e-5)


def test_cyclical_schedule_and_draw_positions():
    rates = cyclical_schedule(100, 0.1)
    assert rates[0] == pytest.approx(0.1) and rates[-1] < 1e-4
    assert np.all(np.diff(rates) <= 0)
    method = StochasticGradientMCMC(samples_per_cycle=3, exploration=0.2, learning_rate=0.1)
    rates, noisy, adapt, keep = method.schedule(100)
    # Explore without noise on the cosine, then sample at the step size reached there.
    assert noisy[:20].sum() == 0 and noisy[20:].all()
    np.testing.assert_allclose(rates[:21], cyclical_schedule(100, 0.1)[:21], rtol=1e-6)
    assert np.all(rates[20:] == rates[20]) and rates[20] > 0.05
    # The preconditioner adapts for the first quarter of the sampling phase, then
    # stays frozen while draws are kept, the last at the cycle's end.
    assert adapt[:40].all() and adapt[40:].sum() == 0
    kept = np.flatnonzero(keep >= 0)
    assert len(kept) == 3 and kept[-1] == 99 and kept[0] >= 40
    assert np.all(keep[kept] == np.arange(3))


def test_sgld_keeps_draws_over_whole_blocks_with_a_frozen_preconditioner():
    method = StochasticGradientMCMC(sampler="sgld", samples_per_cycle=4, learning_rate=0.1)
    rates, noisy, adapt, keep = method.schedule(40)
    assert np.all(rates == np.float32(0.1)) and noisy.all() and adapt.sum() == 0
    np.testing.assert_array_equal(np.flatnonzero(keep >= 0), [9, 19, 29, 39])


def test_too_short_run_raises():
    X, y = toy_data(n=8)
    model = tfbnn.BayesianRegressor(hidden_units=(4,), inference="sgmcmc", epochs=2,
                                    batch_size=8,
                                    inference_options={"n_cycles": 2, "min_steps": 0})
    with pytest.raises(ValueError, match="steps per cycle"):
        model.fit(X, y)


@pytest.mark.parametrize("options, match", [
    ({"sampler": "sgnht"}, "sampler"),
    ({"preconditioner": "adam"}, "preconditioner"),
    ({"n_cycles": 0}, "n_cycles"),
    ({"samples_per_cycle": 0}, "samples_per_cycle"),
    ({"exploration": 1.0}, "exploration"),
    ({"burnin": -0.1}, "burnin"),
    ({"learning_rate": 0.0}, "learning_rate"),
    ({"momentum": 1.5}, "momentum"),
    ({"temperature": -1.0}, "temperature"),
    ({"noise_precision_prior": (0.0, 1.0)}, "noise_precision_prior"),
    ({"map_steps": -1}, "map_steps"),
    ({"min_steps": 1.5}, "min_steps"),
])
def test_bad_options_raise(options, match):
    with pytest.raises(ValueError, match=match):
        get_inference("sgmcmc", options)
