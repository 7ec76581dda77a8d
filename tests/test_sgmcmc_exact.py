"""SG-MCMC at its defaults samples the posterior of Bayesian linear regression (issue 15,
must-show 2): predictive means within 0.3 posterior sds of the closed form and
epistemic variances within a factor of 2, at two data sizes."""

import numpy as np
import pytest

import tfbnn
from tfbnn import likelihoods as lik

NOISE = 1.0


def linear_data(n, seed):
    """Features of unequal scales and offsets (the estimator standardises them),
    a linear target with Gaussian noise `NOISE`, and test inputs spread wider."""
    rng = np.random.default_rng(seed)
    scale, shift = np.array([1.0, 3.0, 0.5]), np.array([0.0, 2.0, -1.0])
    x = rng.normal(size=(n, 3)) * scale + shift
    y = x @ np.array([0.8, -0.4, 1.5]) + 0.5 + NOISE * rng.normal(size=n)
    x_test = rng.normal(size=(20, 3)) * 1.5 * scale + shift
    return x, y, x_test


def exact_predictive(x, y, x_test, noise):
    """Closed-form predictive mean and epistemic variance at `x_test`, in target units.

    The estimator's model lives in standardised units: features `(x - mean) / sd`,
    targets `(y - mean) / s` with `s` the target sd, noise `noise / s`, and the default
    `Normal(0, 1)` prior on the weights and bias. There the posterior is Gaussian with
    precision `I + Phi^T Phi / sigma^2` and mean `Sigma Phi^T y / sigma^2` (Bishop,
    "Pattern Recognition and Machine Learning", eq. 3.53-3.54); predictions map back
    by `s`.
    """
    mean, sd = x.mean(0), x.std(0)
    y_mean, y_scale = y.mean(), y.std()
    phi = np.hstack([(x - mean) / sd, np.ones((len(x), 1))])
    phi_test = np.hstack([(x_test - mean) / sd, np.ones((len(x_test), 1))])
    sigma = noise / y_scale
    cov = np.linalg.inv(np.eye(phi.shape[1]) + phi.T @ phi / sigma**2)
    weights = cov @ phi.T @ ((y - y_mean) / y_scale) / sigma**2
    epistemic = np.einsum("ij,jk,ik->i", phi_test, cov, phi_test) * y_scale**2
    return phi_test @ weights * y_scale + y_mean, epistemic


@pytest.mark.parametrize("n", [100, 1000])
def test_default_sgmcmc_matches_the_closed_form_linear_posterior(n):
    x, y, x_test = linear_data(n, seed=n)
    model = tfbnn.BayesianRegressor(hidden_units=(), inference="sgmcmc",
                                    likelihood=lik.Gaussian(scale=NOISE), random_state=0)
    dist = model.fit(x, y).predict_distribution(x_test)
    mean, epistemic = exact_predictive(x, y, x_test, NOISE)
    z = np.abs(dist.mean - mean) / np.sqrt(epistemic)
    assert z.max() < 0.3, z
    ratio = dist.epistemic_var / epistemic
    assert np.all((ratio > 0.5) & (ratio < 2.0)), ratio
