"""What the samplers share (`tfbnn.inference.mcmc`): the log posterior and its noise
prior, starting states, stored draws behind the predictive API, the runner cache.

No sampler runs here: every property is checked on a tiny network with made-up draws.
"""

import numpy as np
import pytest
import tensorflow as tf

from tfbnn import likelihoods as lik
from tfbnn import models, priors
from tfbnn.functional import FunctionalModel
from tfbnn.inference.base import FitSettings
from tfbnn.inference.mcmc import (
    DRAWS_FILE,
    LogPosterior,
    SampledPosterior,
    cached_runner,
    check_gamma_prior,
)

LINEAR = FitSettings(hidden_units=())


def learned_noise_posterior(prior=None):
    likelihood = lik.Gaussian(trainable=True, min_scale=1e-6)
    model = models.network(2, 1, likelihood, LINEAR, name="m")
    return LogPosterior(model, likelihood, prior or priors.Normal())


def test_log_posterior_noise_prior_jacobian():
    """The raw-noise density is Gamma(3, 1) on tau = 1/sigma^2 pushed through r -> tau."""
    lp = learned_noise_posterior()
    assert lp.noise_index.tolist() == [3] and lp.weight_index.tolist() == [0, 1, 2]
    raw = np.linspace(-4.0, 4.0, 2001)
    thetas = np.zeros((len(raw), 4), np.float32)
    thetas[:, 3] = raw
    # The weights are at 0 in every row, so their prior is a constant factor.
    weights_at_zero = 3 * -0.5 * np.log(2 * np.pi)
    density = np.exp(lp.log_prior(tf.constant(thetas)).numpy() - weights_at_zero)
    assert np.trapezoid(density, raw) == pytest.approx(1.0, abs=2e-3)
    tau = np.log1p(np.exp(raw)) ** -2.0
    assert np.trapezoid(density * tau, raw) == pytest.approx(3.0, rel=1e-2)  # Gamma(3, 1) mean


def test_prior_starting_states_draw_the_noise_from_its_gamma_prior():
    lp = learned_noise_posterior()
    thetas = lp.initial_state(4000, "prior", seed=1)
    sigma = lp.likelihood.noise_scale(tf.constant(thetas[:, lp.noise_index])).numpy()
    tau = sigma**-2
    # Gamma(3, 1): mean 3, variance 3; standard errors about 0.03 and 0.2.
    assert tau.mean() == pytest.approx(3.0, abs=0.15) and tau.var() == pytest.approx(3.0, abs=0.6)
    weights = thetas[:, lp.weight_index]
    assert weights.std() == pytest.approx(1.0, abs=0.05)  # the Normal(0, 1) prior


def test_map_starting_states_differ_per_chain_and_keep_the_other_weights():
    lp = learned_noise_posterior()
    thetas = lp.initial_state(3, "map", seed=0)
    assert thetas.shape == (3, 4) and thetas.dtype == np.float32
    kernel = thetas[:, :2]
    assert len(np.unique(kernel[:, 0])) == 3 and np.all(np.abs(kernel) <= np.sqrt(6 / 3))
    initial = FunctionalModel(lp.functional.model).get_params().numpy()
    np.testing.assert_array_equal(thetas[:, 2:], np.broadcast_to(initial[2:], (3, 2)))
    np.testing.assert_array_equal(thetas, lp.initial_state(3, "map", seed=0))


@pytest.mark.parametrize("likelihood", [lik.Bernoulli(), lik.Categorical(3)])
def test_log_likelihood_of_many_draws_is_each_draws_own(likelihood):
    """Classification has no noise weight, and labels broadcast against the draws."""
    model = models.network(2, 1, likelihood, FitSettings(hidden_units=(3,)), seed=0, name="c")
    lp = LogPosterior(model, likelihood, priors.Normal())
    assert lp.noise_index.size == 0 and lp.weight_index.size == lp.size
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(5, 2)), tf.float32)
    y = tf.constant(rng.integers(0, 2 if isinstance(likelihood, lik.Bernoulli) else 3,
                                 size=(5, 1)), tf.float32)
    thetas = tf.constant(rng.normal(size=(4, lp.size)), tf.float32)
    each = []
    for theta in thetas:
        lp.functional.set_params(theta)
        each.append(float(tf.reduce_sum(likelihood.log_prob(y, model(x)))))
    np.testing.assert_allclose(lp.log_likelihood(thetas, x, y).numpy(), each, rtol=1e-5)


@pytest.mark.parametrize("value", [(3.0, -1.0), 3.0, (1.0, 2.0, 3.0), (True, 1.0), ("3", 1)])
def test_bad_gamma_priors_raise(value):
    with pytest.raises(ValueError, match="noise_precision_prior must be a pair"):
        check_gamma_prior(value)
    assert check_gamma_prior([2, 0.5]) == (2.0, 0.5)


def test_runners_are_shared_by_models_of_one_architecture():
    class Runner:
        def __init__(self, log_posterior):
            self.log_posterior = log_posterior

    first, second = learned_noise_posterior(), learned_noise_posterior()
    runner = cached_runner("test_runner", first, ("option",), lambda: Runner(first))
    again = cached_runner("test_runner", second, ("option",), lambda: Runner(second))
    # The same compiled program, now reading the density of the newer model.
    assert again is runner and runner.log_posterior is second
    other = learned_noise_posterior(prior=priors.Normal(0.0, 2.0))
    assert cached_runner("test_runner", other, ("option",), lambda: Runner(other)) is not runner
    assert cached_runner("test_runner", first, ("other",), lambda: Runner(first)) is not runner


@pytest.fixture
def stored():
    """A `SampledPosterior` holding 5 draws of 2 chains of a 2-input linear model."""
    method = SampledPosterior()
    method.likelihood = lik.Gaussian()
    method.model = models.network(2, 1, method.likelihood, LINEAR, name="s")
    rng = np.random.default_rng(0)
    method.draws_ = rng.normal(size=(5, 2, 3)).astype(np.float32)
    method.diagnostics_ = {"step_size": 0.25, "kernel": "nuts"}
    return method


def per_draw_outputs(method, x):
    flat = method.draws_.reshape(-1, 3)
    return flat[:, :2] @ x.T + flat[:, 2:]  # (T * C, B)


def test_stored_draws_subset_without_repeats_then_cycle(stored):
    x = np.array([[0.5, -1.0], [2.0, 0.3], [0.0, 1.0]], np.float32)
    outputs = per_draw_outputs(stored, x)
    assert stored.n_draws == 10
    subset = stored.sample_params(x, 6, seed=1).numpy()[..., 0]
    np.testing.assert_array_equal(subset, stored.sample_params(x, 6, seed=1).numpy()[..., 0])
    # Each sample is one stored draw's output, no draw twice.
    match = [int(np.argmin(np.abs(outputs - row).sum(1))) for row in subset]
    np.testing.assert_allclose(subset, outputs[match], rtol=1e-5, atol=1e-6)
    assert len(set(match)) == 6
    cycled = stored.sample_params(x, 25, seed=1).numpy()[..., 0]
    np.testing.assert_allclose(cycled, outputs[np.arange(25) % 10], rtol=1e-5, atol=1e-6)


def test_stored_draws_and_scalar_diagnostics_round_trip(stored, tmp_path):
    stored.save(tmp_path)
    loaded = SampledPosterior.load(tmp_path, {}, stored.likelihood)
    np.testing.assert_array_equal(loaded.draws_, stored.draws_)
    assert loaded.diagnostics_ == {"step_size": 0.25}  # strings are not stored
    np.savez(tmp_path / DRAWS_FILE, draws=stored.draws_[..., :2])
    with pytest.raises(ValueError, match=r"holds draws of shape \(5, 2, 2\); the saved model "
                                         r"has 3 parameters"):
        SampledPosterior.load(tmp_path, {}, stored.likelihood)
