"""tfbnn.priors: densities against scipy, KL divergences against exact or Monte-Carlo values."""

from __future__ import annotations

import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from scipy import integrate, stats

from tfbnn import priors

tfd = tfp.distributions


def _scipy_logpdf(prior, w):
    """The prior's log density, written with scipy."""
    w = np.asarray(w, np.float64)
    if isinstance(prior, priors.Normal):
        return stats.norm.logpdf(w, prior.loc, prior.scale)
    if isinstance(prior, priors.Laplace):
        return stats.laplace.logpdf(w, prior.loc, prior.scale)
    if isinstance(prior, priors.StudentT):
        return stats.t.logpdf(w, prior.df, prior.loc, prior.scale)
    if isinstance(prior, priors.ScaleMixture):
        return np.logaddexp(np.log(prior.pi) + stats.norm.logpdf(w, 0, prior.sigma1),
                            np.log1p(-prior.pi) + stats.norm.logpdf(w, 0, prior.sigma2))
    raise TypeError(prior)


ALL_PRIORS = [
    priors.Normal(),
    priors.Normal(loc=0.5, scale=2.0),
    priors.Laplace(loc=-0.2, scale=0.3),
    priors.StudentT(df=2.5, loc=0.1, scale=0.8),
    priors.ScaleMixture(pi=0.3, sigma1=1.5, sigma2=0.05),
]
MONTE_CARLO_PRIORS = [p for p in ALL_PRIORS if not p.has_closed_form_kl]
W = np.array([[-3.0, -0.7, 0.0], [0.02, 1.1, 4.0]])


# -- distributions and densities -----------------------------------------------------------


@pytest.mark.parametrize("prior", ALL_PRIORS, ids=repr)
@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_to_distribution_has_one_entry_per_weight_and_the_right_density(prior, dtype):
    dist = prior.to_distribution((2, 3), dtype)
    assert tuple(dist.batch_shape) == (2, 3)
    assert tuple(dist.event_shape) == ()
    assert dist.dtype == dtype
    assert tuple(dist.sample(seed=1).shape) == (2, 3)
    np.testing.assert_allclose(dist.log_prob(tf.constant(W, dtype)).numpy(),
                               _scipy_logpdf(prior, W), rtol=1e-5, atol=1e-5)
    scalar = prior.to_distribution(())
    assert tuple(scalar.batch_shape) == ()
    np.testing.assert_allclose(scalar.log_prob(0.4).numpy(), _scipy_logpdf(prior, 0.4), rtol=1e-5)


@pytest.mark.parametrize("prior", ALL_PRIORS, ids=repr)
def test_log_prob_sums_the_density_over_all_weights(prior):
    np.testing.assert_allclose(float(prior.log_prob(W.astype("float32"))),
                               _scipy_logpdf(prior, W).sum(), rtol=1e-5)


def test_scale_mixture_defaults_follow_blundell_et_al():
    prior = priors.ScaleMixture()
    assert (prior.pi, prior.sigma1, prior.sigma2) == (0.5, 1.0, math.exp(-6))


# -- serialisation --------------------------------------------------------------------------


@pytest.mark.parametrize("prior", ALL_PRIORS, ids=repr)
def test_config_round_trips_through_json(prior):
    config = json.loads(json.dumps(prior.get_config()))
    assert type(prior).from_config(config) == prior
    serialized = json.loads(json.dumps(keras.saving.serialize_keras_object(prior)))
    assert serialized["registered_name"].startswith("tfbnn")
    assert keras.saving.deserialize_keras_object(serialized) == prior
    assert priors.get(serialized) == prior
    # Equality looks at the values, and repr shows them.
    assert prior != type(prior).from_config({**config, "scale" if "scale" in config else "pi": 0.25})
    assert all(repr(v) in repr(prior) for v in prior.get_config().values())


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls, kwargs, message",
    [
        (priors.Normal, {"scale": 0.0}, "scale must be a positive finite number, got 0.0"),
        (priors.Normal, {"scale": -1.0}, "scale must be .*got -1.0"),
        (priors.Normal, {"scale": math.inf}, "scale must be .*got inf"),
        (priors.Normal, {"loc": math.nan}, "loc must be finite, got nan"),
        (priors.Laplace, {"scale": 0}, "scale must be .*got 0.0"),
        (priors.Laplace, {"loc": -math.inf}, "loc must be finite, got -inf"),
        (priors.StudentT, {"df": 0.0}, "df must be .*got 0.0"),
        (priors.StudentT, {"df": -2}, "df must be .*got -2.0"),
        (priors.StudentT, {"scale": math.nan}, "scale must be .*got nan"),
        (priors.ScaleMixture, {"pi": 0.0}, "pi must be strictly between 0 and 1, got 0.0"),
        (priors.ScaleMixture, {"pi": 1.0}, "pi must be .*got 1.0"),
        (priors.ScaleMixture, {"pi": math.nan}, "pi must be .*got nan"),
        (priors.ScaleMixture, {"sigma1": -1.0}, "sigma1 must be .*got -1.0"),
        (priors.ScaleMixture, {"sigma2": 0.0}, "sigma2 must be .*got 0.0"),
    ],
)
def test_invalid_arguments_raise_naming_the_value(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)


def test_get_accepts_names_none_instances_and_configs():
    assert priors.get(None) == priors.Normal(0.0, 1.0)
    assert priors.get("normal") == priors.Normal()
    assert priors.get("laplace") == priors.Laplace()
    assert priors.get("student_t") == priors.StudentT()
    assert priors.get("scale_mixture") == priors.ScaleMixture()
    instance = priors.Laplace(scale=0.1)
    assert priors.get(instance) is instance


def test_get_rejects_unknown_names_listing_the_known_ones():
    with pytest.raises(ValueError, match=r"Unknown prior='horseshoe'; expected one of "
                                         r"\['laplace', 'normal', 'scale_mixture', 'student_t'\]"):
        priors.get("horseshoe")
    with pytest.raises(TypeError, match="prior must be a tfbnn Prior.*got float"):
        priors.get(1.0)


# -- KL divergences ----------------------------------------------------------------------

POST_LOC = np.array([0.3, -1.2, 0.0, 2.0, 0.7])
POST_SCALE = np.array([0.2, 0.5, 1.0, 0.3, 1.5])


def _posterior(loc=POST_LOC, scale=POST_SCALE):
    return tfd.Normal(tf.constant(loc, tf.float32), tf.constant(scale, tf.float32))


def test_closed_form_kl_matches_the_formula_and_a_monte_carlo_estimate():
    prior = priors.Normal(loc=0.4, scale=0.9)
    kl = float(prior.kl_divergence(_posterior()))
    exact = np.sum(np.log(0.9 / POST_SCALE)
                   + (POST_SCALE**2 + (POST_LOC - 0.4) ** 2) / (2 * 0.9**2) - 0.5)
    np.testing.assert_allclose(kl, exact, rtol=1e-5)

    # E_q[log q(w) - log p(w)] from many draws; the tolerance is the Monte-Carlo error.
    rng = np.random.default_rng(0)
    w = POST_LOC + POST_SCALE * rng.standard_normal((200_000, len(POST_LOC)))
    log_ratio = (stats.norm.logpdf(w, POST_LOC, POST_SCALE) - _scipy_logpdf(prior, w)).sum(axis=1)
    standard_error = log_ratio.std() / math.sqrt(len(log_ratio))
    assert abs(kl - log_ratio.mean()) < 4 * standard_error
    assert standard_error < 0.01 * kl, "too few samples for this comparison to have power"


def test_closed_form_kl_ignores_the_sample_and_monte_carlo_kl_uses_it():
    posterior = _posterior()
    sample = tf.constant([0.1, -1.0, 0.5, 2.2, 0.0])
    normal = priors.Normal()
    assert float(normal.kl_divergence(posterior, sample)) == float(normal.kl_divergence(posterior))
    for prior in MONTE_CARLO_PRIORS:
        by_hand = np.sum(stats.norm.logpdf(sample.numpy(), POST_LOC, POST_SCALE)
                         - _scipy_logpdf(prior, sample.numpy()))
        np.testing.assert_allclose(float(prior.kl_divergence(posterior, sample)), by_hand,
                                   rtol=1e-4)


def _exact_kl(prior, loc, scale):
    """KL[N(loc, scale) || prior] summed over weights, by numerical integration."""
    total = 0.0
    for m, s in zip(loc, scale):
        def integrand(w, m=m, s=s):
            return stats.norm.pdf(w, m, s) * (stats.norm.logpdf(w, m, s)
                                              - _scipy_logpdf(prior, w))

        value, _ = integrate.quad(integrand, m - 12 * s, m + 12 * s, limit=400,
                                  points=[0.0] if m - 12 * s < 0 < m + 12 * s else None)
        total += value
    return total


def _check_monte_carlo_kl_is_unbiased(prior, n_calls, copies):
    """Averages many one-sample estimates (each call draws its own) against the exact KL.

    A posterior tiled `copies` times makes one call sum `copies` independent
    one-sample estimates; the spread over calls gives the standard error.
    """
    tf.random.set_seed(0)
    posterior = _posterior(np.tile(POST_LOC, (copies, 1)), np.tile(POST_SCALE, (copies, 1)))
    estimates = np.array([float(prior.kl_divergence(posterior)) / copies
                          for _ in range(n_calls)])
    exact = _exact_kl(prior, POST_LOC, POST_SCALE)
    standard_error = estimates.std(ddof=1) / math.sqrt(n_calls)
    assert abs(estimates.mean() - exact) < 4 * standard_error, (estimates.mean(), exact)
    assert standard_error < 0.02 * abs(exact), "too few samples for this comparison to have power"
    # Each single estimate is noisy: the average is not a constant in disguise.
    single = [float(prior.kl_divergence(_posterior())) for _ in range(5)]
    assert len(set(single)) == 5


@pytest.mark.parametrize("prior", MONTE_CARLO_PRIORS, ids=repr)
def test_monte_carlo_kl_is_unbiased(prior):
    _check_monte_carlo_kl_is_unbiased(prior, n_calls=40, copies=500)


@pytest.mark.slow
@pytest.mark.parametrize("prior", MONTE_CARLO_PRIORS, ids=repr)
def test_monte_carlo_kl_is_unbiased_many_samples(prior):
    _check_monte_carlo_kl_is_unbiased(prior, n_calls=400, copies=5000)
