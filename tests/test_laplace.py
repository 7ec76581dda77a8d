"""tfbnn.inference.laplace: exact on Bayesian linear regression, wider in data gaps,
behind the estimators and persistence, and strict about what it cannot do."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf
from scipy import optimize, stats

import tfbnn
from tfbnn import likelihoods, models, priors
from tfbnn.functional import FunctionalModel
from tfbnn.inference import FitSettings
from tfbnn.inference.laplace import (
    HessianStructure,
    LaplaceInference,
    SigmaNoiseMethod,
    SubsetOfWeights,
)
from tfbnn.inference.laplace import curvature as curv
from tfbnn.inference.laplace import evidence as marglik
from tfbnn.inference.laplace.network import Network

SIGMA = 0.5  # known noise scale of the linear-regression data
ALPHA0 = 2.0  # prior precision of the training prior, Normal(0, 1/sqrt(2))


# -- Bayesian linear regression in closed form ---------------------------------------------


@pytest.fixture(scope="module")
def linear_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 2)).astype(np.float32)
    y = x @ np.array([[1.0], [-0.5]]) + 0.3 + SIGMA * rng.normal(size=(40, 1))
    x_test = rng.normal(size=(7, 2)).astype(np.float32)
    return x, y.astype(np.float32), x_test


def _design(x):
    return np.c_[np.asarray(x, np.float64), np.ones(len(x))]  # kernel rows, then the bias


def _closed_form_posterior(x, y, alpha, sigma=SIGMA):
    design = _design(x)
    precision = design.T @ design / sigma**2 + alpha * np.eye(design.shape[1])
    cov = np.linalg.inv(precision)
    return cov @ design.T @ np.asarray(y, np.float64)[:, 0] / sigma**2, cov


def _log_evidence(x, y, alpha, sigma=SIGMA):
    design = _design(x)
    cov = sigma**2 * np.eye(len(x)) + design @ design.T / alpha
    return stats.multivariate_normal(np.zeros(len(x)), cov).logpdf(np.asarray(y, np.float64)[:, 0])


def _fit_linear(x, y, likelihood=None, **options):
    """Known noise SIGMA unless a `likelihood` is given (every `sigma_noise` keeps a known
    noise, so the known-noise tests hold with the default `sigma_noise='marglik'`)."""
    method = LaplaceInference(jit_compile=False, **options)
    settings = FitSettings(hidden_units=(), prior=priors.Normal(0.0, 1.0 / math.sqrt(ALPHA0)),
                           epochs=20, batch_size=40, seed=0)
    method.fit(x, y, likelihood or likelihoods.Gaussian(scale=SIGMA), settings)
    return method


def test_marglik_laplace_equals_bayesian_linear_regression(linear_data):
    x, y, x_test = linear_data
    method = _fit_linear(x, y)  # last_layer, full, marglik

    # The tuned precision maximises the exact evidence of Bayesian linear regression.
    best = optimize.minimize_scalar(lambda t: -_log_evidence(x, y, math.exp(t)),
                                    bounds=(-8, 8), method="bounded", options={"xatol": 1e-10})
    alpha = method.prior_precision_
    assert alpha == pytest.approx(math.exp(best.x), rel=1e-5)
    assert method.log_marginal_likelihood() == pytest.approx(_log_evidence(x, y, alpha), abs=1e-6)

    mean, cov = _closed_form_posterior(x, y, alpha)
    np.testing.assert_allclose(method.theta_map_, mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(method.posterior_covariance(), cov, rtol=1e-6, atol=1e-9)
    # The Keras network holds the MAP too.
    np.testing.assert_allclose(method.model(x_test).numpy()[:, 0], _design(x_test) @ mean,
                               rtol=1e-5, atol=1e-5)

    f_mean, f_var = method.glm_predictive(x_test)
    design = _design(x_test)
    np.testing.assert_allclose(f_mean[:, 0], design @ mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(f_var[:, 0], np.einsum("bi,ij,bj->b", design, cov, design),
                               rtol=1e-6)
    _, y_var = method.glm_predictive(x_test, include_noise=True)
    np.testing.assert_allclose(y_var, f_var + SIGMA**2, rtol=1e-12)


@pytest.mark.parametrize("subset", ["last_layer", "all"])
def test_marglik_noise_maximises_the_evidence_over_precision_and_noise(linear_data, subset):
    """With a learned noise, "marglik" tunes both hyperparameters: for Bayesian linear
    regression they maximise the closed-form evidence jointly, and the predictive and
    the network's noise head use the tuned noise."""
    x, y, x_test = linear_data
    method = _fit_linear(x, y, likelihoods.Gaussian(scale=1.0, trainable=True),
                         subset_of_weights=subset)
    best = optimize.minimize(lambda t: -_log_evidence(x, y, *np.exp(t)), np.zeros(2),
                             method="BFGS", options={"gtol": 1e-10})
    alpha, sigma = np.exp(best.x)
    assert method.prior_precision_ == pytest.approx(alpha, rel=1e-4)
    assert method.sigma_noise_[0] == pytest.approx(sigma, rel=1e-5)
    alpha, sigma = method.prior_precision_, method.sigma_noise_[0]
    assert method.log_marginal_likelihood() == pytest.approx(
        _log_evidence(x, y, alpha, sigma), abs=1e-6)
    assert _log_evidence(x, y, alpha, sigma) >= -best.fun - 1e-9

    mean, cov = _closed_form_posterior(x, y, alpha, sigma)
    np.testing.assert_allclose(method.theta_map_, mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(method.posterior_covariance(), cov, rtol=1e-6, atol=1e-9)
    f_var = method.glm_predictive(x_test)[1]
    np.testing.assert_allclose(method.glm_predictive(x_test, include_noise=True)[1],
                               f_var + sigma**2, rtol=1e-12)
    # The network's noise head holds the tuned scale, so draws (and a saved model) use it.
    params = method.sample_params(x_test, 3, seed=0).numpy()
    np.testing.assert_allclose(tf.math.softplus(params[..., 1]).numpy() + 1e-6, sigma, rtol=1e-6)


def test_map_noise_keeps_the_trained_scale(linear_data):
    x, y, _ = linear_data
    method = _fit_linear(x, y, likelihoods.Gaussian(scale=1.0, trainable=True),
                         sigma_noise="map")
    trained = float(tf.math.softplus(method.model.layers[-1].raw_scale)[0]) + 1e-6
    assert method.sigma_noise_[0] == pytest.approx(trained, rel=1e-6)
    # The precision is still the evidence maximiser, at that noise.
    best = optimize.minimize_scalar(lambda t: -_log_evidence(x, y, math.exp(t), trained),
                                    bounds=(-8, 8), method="bounded", options={"xatol": 1e-10})
    assert method.prior_precision_ == pytest.approx(math.exp(best.x), rel=1e-5)


@pytest.mark.parametrize("subset, structure", [
    ("last_layer", "full"), ("all", "full"), ("all", "kron"), ("last_layer", "kron"),
])
def test_fixed_precision_posterior_is_exact(linear_data, subset, structure):
    """KFAC is exact for one linear layer under Gaussian noise, like the full GGN."""
    x, y, x_test = linear_data
    method = _fit_linear(x, y, subset_of_weights=subset, hessian_structure=structure,
                         prior_precision="prior")
    assert method.prior_precision_ == pytest.approx(ALPHA0, rel=1e-12)
    mean, cov = _closed_form_posterior(x, y, ALPHA0)
    np.testing.assert_allclose(method.theta_map_, mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(method.posterior_covariance(), cov, rtol=1e-6, atol=1e-9)


def test_diag_posterior_keeps_the_diagonal_precision(linear_data):
    x, y, _ = linear_data
    method = _fit_linear(x, y, subset_of_weights="all", hessian_structure="diag",
                         prior_precision="prior")
    design = _design(x)
    expected = 1.0 / (np.sum(design**2, axis=0) / SIGMA**2 + ALPHA0)
    np.testing.assert_allclose(method.posterior_covariance(), np.diag(expected), rtol=1e-6)


@pytest.mark.parametrize("pred_type", ["glm", "nn"])
def test_predictive_draws_match_the_linearised_predictive(linear_data, pred_type):
    """For a linear model both predictives are the exact Gaussian; draws are seeded."""
    x, y, x_test = linear_data
    method = _fit_linear(x, y, pred_type=pred_type)
    params = method.sample_params(x_test, 4000, seed=3).numpy()
    assert params.shape == (4000, len(x_test), 1)
    np.testing.assert_array_equal(params, method.sample_params(x_test, 4000, seed=3).numpy())
    assert not np.array_equal(params, method.sample_params(x_test, 4000, seed=None).numpy())
    mean, var = method.glm_predictive(x_test)
    np.testing.assert_allclose(params.mean(axis=0), mean, atol=4 * np.sqrt(var.max() / 4000))
    np.testing.assert_allclose(params.var(axis=0), var, rtol=0.1)


# -- the curvature algebra ------------------------------------------------------------------


def _random_blocks(rng, shapes, k=3, b=6):
    acts = [rng.normal(size=(b, a)) for a, _ in shapes]
    jz = [rng.normal(size=(b, k, o)) for _, o in shapes]
    f = rng.normal(size=(b, k))
    return acts, jz, likelihoods.Categorical(k).output_hessian_sqrt(f)


def test_diag_and_kron_agree_with_the_full_ggn_where_they_should():
    rng = np.random.default_rng(1)
    shapes = [(4, 3), (4, 3)]
    acts, jz, hsqrt = _random_blocks(rng, shapes)
    full, diag, kron = (cls(shapes) for cls in
                        (curv.FullCurvature, curv.DiagCurvature, curv.KronCurvature))
    for c in (full, diag, kron):
        c.accumulate(acts, jz, hsqrt)
        c.finalize(len(acts[0]))
    np.testing.assert_allclose(np.sort(diag.eigenvalues()), np.sort(np.diag(full.ggn)))
    # Each structure's output covariance is J Sigma J^T with its own Sigma.
    jac = curv.FullCurvature.jacobian(acts, jz)
    for c in (full, diag, kron):
        sigma = c.covariance(0.7)
        np.testing.assert_allclose(c.output_cov(acts, jz, 0.7),
                                   np.einsum("bjp,pq,bJq->bjJ", jac, sigma, jac), atol=1e-10)
        root = c.sample(np.eye(c.n_params), 0.7)
        np.testing.assert_allclose(root.T @ root, sigma, atol=1e-12)
    np.testing.assert_allclose(full.covariance(0.7), np.linalg.inv(full.ggn + 0.7 * np.eye(24)),
                               atol=1e-10)
    # With one example KFAC is exact (a rank-one-per-output Kronecker product).
    one = [a[:1] for a in acts], [j[:1] for j in jz], hsqrt[:1]
    exact, approx = curv.FullCurvature(shapes[:1]), curv.KronCurvature(shapes[:1])
    for c in (exact, approx):
        c.accumulate(one[0][:1], one[1][:1], one[2])
        c.finalize(1)
    np.testing.assert_allclose(approx.covariance(0.5), exact.covariance(0.5), atol=1e-10)


@pytest.mark.parametrize("structure", ["full", "diag", "kron"])
def test_identity_jacobian_shortcut_of_the_last_layer(structure):
    rng = np.random.default_rng(2)
    shapes = [(5, 3)]
    acts, jz, hsqrt = _random_blocks(rng, shapes)
    eye = [np.broadcast_to(np.eye(3), (len(acts[0]), 3, 3))]
    short, explicit = (curv.STRUCTURES[structure](shapes) for _ in range(2))
    short.accumulate(acts, [None], hsqrt)
    explicit.accumulate(acts, eye, hsqrt)
    for c in (short, explicit):
        c.finalize(len(acts[0]))
    np.testing.assert_allclose(short.covariance(0.3), explicit.covariance(0.3), atol=1e-12)
    np.testing.assert_allclose(short.output_cov(acts, [None], 0.3),
                               explicit.output_cov(acts, eye, 0.3), atol=1e-12)


def test_network_jacobians_match_autodiff():
    model = models.mlp(3, 2, hidden_units=(5, 4), activation="tanh", seed=0)
    x = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
    f, acts, jz = Network(model, "all").jacobians(x)
    functional = FunctionalModel(model)
    theta = functional.get_params()
    with tf.GradientTape() as tape:
        tape.watch(theta)
        out = functional(theta, functional.get_state(), x, training=False)[0]
    expected = tape.jacobian(out, theta).numpy()  # (B, k, P)
    np.testing.assert_allclose(f, out.numpy(), atol=1e-6)
    np.testing.assert_allclose(curv.FullCurvature.jacobian(acts, jz), expected, atol=1e-5)


@pytest.mark.parametrize("n_params, n_data", [(3, 40), (60, 30)])
def test_noise_variance_maximises_the_laplace_evidence(n_params, n_data):
    """Also with more weights than data (a rank-deficient GGN, as for networks)."""
    rng = np.random.default_rng(4)
    jac = rng.normal(size=(n_data, n_params)) * rng.uniform(0.01, 3.0, size=n_params)
    lam = np.linalg.eigvalsh(jac.T @ jac)
    theta_sq, residual_sq = 0.09 * n_params, 0.05 * n_data

    def evidence(alpha, var):
        return (-0.5 * residual_sq / var - 0.5 * n_data * math.log(var) - 0.5 * alpha * theta_sq
                + 0.5 * n_params * math.log(alpha)
                - 0.5 * np.sum(np.log(np.clip(lam, 0, None) / var + alpha)))

    alpha, var = marglik.tune_noise_variance(lam, theta_sq, residual_sq, n_data, 1.0)
    best = optimize.minimize(lambda t: -evidence(*np.exp(t)), np.zeros(2), method="BFGS",
                             options={"gtol": 1e-10})
    np.testing.assert_allclose([alpha, var], np.exp(best.x), rtol=1e-5)
    # MacKay's fixed point: gamma well-determined weights.
    gamma = np.sum(lam / (lam + alpha * var))
    assert alpha == pytest.approx(gamma / theta_sq, rel=1e-9)
    assert var == pytest.approx(residual_sq / (n_data - gamma), rel=1e-9)
    # At a fixed precision only the noise moves.
    fixed, var2 = marglik.tune_noise_variance(lam, theta_sq, residual_sq, n_data, 0.3,
                                               tune_prior=False)
    assert fixed == 0.3
    for other in (var2 * 0.99, var2 * 1.01):
        assert evidence(0.3, var2) > evidence(0.3, other)


def test_prior_precision_maximises_the_laplace_evidence():
    lam = np.array([0.0, 0.5, 3.0, 40.0])
    theta_sq = 2.3

    def evidence(a):
        return -0.5 * a * theta_sq + 2 * math.log(a) - 0.5 * np.sum(np.log(lam + a))

    alpha = marglik.tune_prior_precision(lam, theta_sq)
    for other in (alpha * 0.99, alpha * 1.01):
        assert evidence(alpha) > evidence(other)


# -- epistemic uncertainty, the estimator path and persistence ------------------------------


def _gap_data(n=80, seed=0):
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.uniform(-3, -1, n // 2), rng.uniform(1, 3, n // 2)])
    return x[:, None], np.sin(x) + 0.1 * rng.normal(size=n)


GAP_CONFIGS = [("last_layer", "full"), ("all", "kron")]


@pytest.fixture(scope="module")
def gap_regressors():
    x, y = _gap_data()
    fitted = {}
    for subset, structure in GAP_CONFIGS:
        fitted[subset, structure] = tfbnn.BayesianRegressor(
            hidden_units=(32,), activation="tanh", inference="laplace",
            inference_options={"subset_of_weights": subset, "hessian_structure": structure,
                               "jit_compile": False},
            epochs=300, learning_rate=1e-2, n_samples=200, random_state=0,
        ).fit(x, y)
    return x, y, fitted


@pytest.mark.parametrize("config", GAP_CONFIGS)
def test_epistemic_variance_is_larger_in_the_gap(gap_regressors, config):
    x, _, fitted = gap_regressors
    model = fitted[config]
    gap = np.linspace(-0.5, 0.5, 11)[:, None]
    _, var_gap = model.inference_.glm_predictive(model._model_inputs(gap))
    _, var_train = model.inference_.glm_predictive(model._model_inputs(x))
    assert var_gap.min() > 2 * np.median(var_train)
    dist = model.predict_distribution(np.r_[gap, x])
    assert dist.epistemic_var[:11].min() > 2 * np.median(dist.epistemic_var[11:])
    assert model.score(x, np.sin(x[:, 0])) > 0.9


def test_estimator_save_load_round_trip(gap_regressors, tmp_path):
    x, y, fitted = gap_regressors
    for i, model in enumerate(fitted.values()):
        mean, std = model.predict(x, return_std=True)
        model.save(tmp_path / f"m{i}")
        loaded = tfbnn.load(tmp_path / f"m{i}")
        assert loaded.get_params()["inference_options"] == model.get_params()["inference_options"]
        assert loaded.inference_.prior_precision_ == model.inference_.prior_precision_
        assert loaded.inference_.get_config() == model.inference_.get_config()
        # The tuned noise (written into the network's noise head) comes back too.
        assert model.inference_.get_config()["sigma_noise"] == "marglik"
        np.testing.assert_array_equal(loaded.inference_.sigma_noise_, model.inference_.sigma_noise_)
        mean2, std2 = loaded.predict(x, return_std=True)
        np.testing.assert_allclose(mean2, mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(std2, std, rtol=1e-5, atol=1e-6)


def test_classifiers_bernoulli_and_categorical_on_iris(tmp_path):
    from sklearn.datasets import load_iris, make_moons

    x, y = make_moons(200, noise=0.1, random_state=0)
    binary = tfbnn.BayesianClassifier(
        hidden_units=(16,), inference="laplace", inference_options={"jit_compile": False},
        epochs=100, learning_rate=1e-2, random_state=0).fit(x, np.where(y, "b", "a"))
    assert isinstance(binary.inference_.likelihood, likelihoods.Bernoulli)
    assert binary.score(x, np.where(y, "b", "a")) > 0.85
    probs = binary.predict_proba(x)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)

    x, y = load_iris(return_X_y=True)
    iris = tfbnn.BayesianClassifier(
        hidden_units=(16,), inference="laplace",
        inference_options={"subset_of_weights": "all", "hessian_structure": "kron",
                           "pred_type": "nn", "jit_compile": False},
        epochs=100, learning_rate=1e-2, n_samples=50, random_state=0).fit(x, y)
    assert isinstance(iris.inference_.likelihood, likelihoods.Categorical)
    assert iris.score(x, y) > 0.9
    dist = iris.predict_distribution(x)
    assert np.all(dist.mutual_information >= 0) and dist.mutual_information.max() > 0
    iris.save(tmp_path / "iris")
    np.testing.assert_allclose(tfbnn.load(tmp_path / "iris").predict_proba(x),
                               iris.predict_proba(x), rtol=1e-5, atol=1e-6)


# -- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize("options, message", [
    ({"hessian_structure": "kfac"},
     r"Unknown hessian_structure='kfac'; expected one of \['full', 'diag', 'kron'\]"),
    ({"subset_of_weights": "first"}, r"Unknown subset_of_weights='first'"),
    ({"pred_type": "mc"}, r"Unknown pred_type='mc'; expected one of \['glm', 'nn'\]"),
    ({"prior_precision": "cv"}, r"Unknown prior_precision='cv'"),
    ({"sigma_noise": "ml"}, r"Unknown sigma_noise='ml'; expected one of \['marglik', 'map'\]"),
    ({"sigma_noise": 0.1}, r"Unknown sigma_noise=0.1"),
    ({"prior_precision": -1.0}, r"prior_precision must be a positive finite number, got -1.0"),
    ({"prior_precision": True}, r"prior_precision must be a number, got True"),
    ({"max_memory_gb": 0}, r"max_memory_gb must be a positive finite number, got 0.0"),
])
def test_bad_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        tfbnn.BayesianRegressor(inference="laplace", inference_options=options).fit(
            np.zeros((4, 1)), np.arange(4.0))


def test_enums_document_every_member():
    assert [m.value for m in HessianStructure] == ["full", "diag", "kron"]
    assert [m.value for m in SubsetOfWeights] == ["last_layer", "all"]
    assert [m.value for m in SigmaNoiseMethod] == ["marglik", "map"]
    assert all(m.__doc__ for m in SigmaNoiseMethod)


@pytest.mark.parametrize("kwargs, message", [
    ({"prior": "laplace"}, r"needs a Normal prior"),
    ({"prior": priors.Normal(1.0, 1.0)}, r"needs a zero-mean Normal prior"),
    ({"likelihood": "student_t"}, r"supports the likelihoods .*got StudentT"),
    ({"likelihood": "heteroscedastic"}, r"got HeteroscedasticGaussian"),
])
def test_unsupported_priors_and_likelihoods_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tfbnn.BayesianRegressor(inference="laplace", **kwargs).fit(np.zeros((4, 1)), np.arange(4.0))


def test_configurations_that_do_not_fit_are_refused_before_training():
    model = tfbnn.BayesianRegressor(
        hidden_units=(400, 400), inference="laplace",
        inference_options={"subset_of_weights": "all", "hessian_structure": "full",
                           "max_memory_gb": 2})
    with pytest.raises(ValueError, match=r"over 161601 weights needs about [\d.]+ GB, more "
                                         r"than max_memory_gb=2; use hessian_structure='kron'"):
        model.fit(np.zeros((4, 1)), np.arange(4.0))
    assert not hasattr(model, "inference_")


def test_noise_tuning_that_does_not_fit_is_refused_before_training():
    """The noise's evidence needs the full GGN of every weight, also for a last-layer
    posterior; with sigma_noise='map' (or a known noise) it is not needed."""
    model = tfbnn.BayesianRegressor(hidden_units=(400, 400), inference="laplace",
                                    inference_options={"max_memory_gb": 2})
    with pytest.raises(ValueError, match=r"sigma_noise='marglik'\) needs the full GGN of all "
                                         r"161601 weights, about [\d.]+ GB, more than "
                                         r"max_memory_gb=2; use sigma_noise='map'"):
        model.fit(np.zeros((4, 1)), np.arange(4.0))
    assert not hasattr(model, "inference_")
    shapes = Network(models.mlp(1, 1, hidden_units=(400, 400)), "last_layer").shapes
    assert shapes == [(401, 1)]
    assert LaplaceInference(sigma_noise="map", max_memory_gb=2).check_memory(shapes, 1) < 2e9


# -- slower checks --------------------------------------------------------------------------


@pytest.mark.slow
def test_poisson_and_multi_target_regression():
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, size=(300, 1))
    counts = rng.poisson(np.exp(0.8 * x[:, 0]))
    model = tfbnn.BayesianRegressor(hidden_units=(16,), likelihood="poisson", inference="laplace",
                                    epochs=200, learning_rate=1e-2, random_state=0).fit(x, counts)
    np.testing.assert_allclose(model.predict(np.array([[0.0], [1.0]])), np.exp([0.0, 0.8]),
                               rtol=0.3)
    y = np.c_[np.sin(x[:, 0]), np.cos(x[:, 0])] + 0.1 * rng.normal(size=(300, 2))
    two = tfbnn.BayesianRegressor(
        hidden_units=(32,), activation="tanh", inference="laplace",
        inference_options={"subset_of_weights": "all", "hessian_structure": "diag"},
        epochs=300, learning_rate=1e-2, random_state=0).fit(x, y)
    assert two.predict(x).shape == (300, 2)
    assert two.score(x, y) > 0.8


@pytest.mark.slow
def test_kron_and_diag_track_the_full_all_weight_posterior():
    x, y = _gap_data(seed=1)
    variances = {}
    for structure in ("full", "kron", "diag"):
        model = tfbnn.BayesianRegressor(
            hidden_units=(16,), activation="tanh", inference="laplace",
            inference_options={"subset_of_weights": "all", "hessian_structure": structure},
            epochs=300, learning_rate=1e-2, random_state=0).fit(x, y)
        grid = np.linspace(-4, 4, 41)[:, None]
        variances[structure] = model.inference_.glm_predictive(model._model_inputs(grid))[1]
    for structure in ("kron", "diag"):
        ratio = variances[structure] / variances["full"]
        assert 0.05 < np.median(ratio) < 20
