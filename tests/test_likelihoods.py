"""tfbnn.likelihoods: parameter widths, densities against scipy, serialisation, recovery."""

from __future__ import annotations

import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import special, stats

from tfbnn import BayesianRegressor, likelihoods
from tfbnn.layers import LearnedScale

L = likelihoods


def _softplus(x):
    return np.logaddexp(0.0, x)


# -- parameter widths -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "likelihood, d, network_outputs, params",
    [
        (L.Gaussian(), 1, 1, 1),
        (L.Gaussian(), 3, 3, 3),
        (L.Gaussian(trainable=True), 1, 1, 2),
        (L.Gaussian(trainable=True), 3, 3, 6),
        (L.StudentT(), 2, 2, 2),
        (L.StudentT(trainable=True), 2, 2, 4),
        (L.HeteroscedasticGaussian(), 1, 2, 2),
        (L.HeteroscedasticGaussian(), 3, 6, 6),
        (L.Poisson(), 2, 2, 2),
        (L.Bernoulli(), 1, 1, 1),
        (L.Categorical(4), 1, 4, 4),
    ],
    ids=lambda v: repr(v) if isinstance(v, L.Likelihood) else str(v),
)
def test_parameter_widths(likelihood, d, network_outputs, params):
    assert likelihood.n_network_outputs(d) == network_outputs
    assert likelihood.n_params(d) == params
    heads = likelihood.output_layers(d)
    # Whatever the network does not emit, a head appends: the model's output is `params` wide.
    x = np.zeros((5, network_outputs), "float32")
    for head in heads:
        x = np.asarray(head(x))
    assert x.shape == (5, params)
    dist = likelihood.distribution(x)
    expected_batch = (5,) if isinstance(likelihood, L.Categorical) else (5, d)
    assert tuple(dist.batch_shape) == expected_batch
    assert likelihood.log_prob(np.zeros((5, d), "float32"), x).shape == (5,)
    assert likelihood.n_targets(params) == d


def test_only_trainable_location_scale_likelihoods_add_a_head():
    (head,) = L.Gaussian(scale=0.3, trainable=True).output_layers(2)
    assert isinstance(head, LearnedScale) and head.initial_scale == 0.3
    assert L.Gaussian(scale=0.3).output_layers(2) == []
    assert L.HeteroscedasticGaussian().output_layers(2) == []


def test_categorical_takes_one_label_column():
    with pytest.raises(ValueError, match="one label column, got 2"):
        L.Categorical(3).n_network_outputs(2)


# -- log densities against scipy ------------------------------------------------------------

RNG = np.random.default_rng(0)
PARAMS_2D = RNG.normal(size=(6, 2)).astype("float32")  # 6 examples, 2 target dimensions
PARAMS_4D = RNG.normal(size=(6, 4)).astype("float32")
Y_REAL = RNG.normal(size=(6, 2)).astype("float32") * 2


def _check_log_prob(likelihood, y, params, expected):
    got = likelihood.log_prob(y, params).numpy()
    assert got.shape == (len(y),)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_gaussian_fixed_scale_log_prob():
    _check_log_prob(L.Gaussian(scale=0.7), Y_REAL, PARAMS_2D,
                    stats.norm.logpdf(Y_REAL, PARAMS_2D, 0.7).sum(axis=1))


def test_gaussian_trainable_scale_log_prob():
    loc, raw = PARAMS_4D[:, :2], PARAMS_4D[:, 2:]
    scale = _softplus(raw.astype(np.float64)) + 0.01
    _check_log_prob(L.Gaussian(trainable=True, min_scale=0.01), Y_REAL, PARAMS_4D,
                    stats.norm.logpdf(Y_REAL, loc, scale).sum(axis=1))


def test_student_t_log_prob_fixed_and_trainable():
    _check_log_prob(L.StudentT(df=3.0, scale=0.5), Y_REAL, PARAMS_2D,
                    stats.t.logpdf(Y_REAL, 3.0, PARAMS_2D, 0.5).sum(axis=1))
    scale = _softplus(PARAMS_4D[:, 2:].astype(np.float64)) + 1e-6
    _check_log_prob(L.StudentT(df=5.0, trainable=True), Y_REAL, PARAMS_4D,
                    stats.t.logpdf(Y_REAL, 5.0, PARAMS_4D[:, :2], scale).sum(axis=1))


def test_heteroscedastic_log_prob():
    scale = _softplus(PARAMS_4D[:, 2:].astype(np.float64)) + 0.05
    _check_log_prob(L.HeteroscedasticGaussian(min_scale=0.05), Y_REAL, PARAMS_4D,
                    stats.norm.logpdf(Y_REAL, PARAMS_4D[:, :2], scale).sum(axis=1))


def test_poisson_log_prob():
    counts = RNG.poisson(2.0, size=(6, 2)).astype("float32")
    _check_log_prob(L.Poisson(), counts, PARAMS_2D,
                    stats.poisson.logpmf(counts, np.exp(PARAMS_2D)).sum(axis=1))


def test_bernoulli_log_prob_and_class_probs():
    labels = np.array([[0], [1], [1], [0], [1], [0]], "float32")
    logits = PARAMS_2D[:, :1]
    p = special.expit(logits.astype(np.float64))
    _check_log_prob(L.Bernoulli(), labels, logits, stats.bernoulli.logpmf(labels, p)[:, 0])
    np.testing.assert_allclose(L.Bernoulli().class_probs(logits).numpy(),
                               np.hstack([1 - p, p]), rtol=1e-5)


def test_categorical_log_prob_and_class_probs():
    labels = np.array([[0], [3], [2], [1], [3], [0]], "float32")
    probs = special.softmax(PARAMS_4D.astype(np.float64), axis=1)
    _check_log_prob(L.Categorical(4), labels, PARAMS_4D,
                    np.log(probs[np.arange(6), labels[:, 0].astype(int)]))
    _check_log_prob(L.Categorical(4), labels[:, 0], PARAMS_4D,  # a flat label vector too
                    np.log(probs[np.arange(6), labels[:, 0].astype(int)]))
    np.testing.assert_allclose(L.Categorical(4).class_probs(PARAMS_4D).numpy(), probs,
                               rtol=1e-5)


# -- validation and lookup -------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: L.Gaussian(scale=0.0), "scale must be a positive finite number, got 0.0"),
        (lambda: L.Gaussian(scale=math.inf), "scale must be .*got inf"),
        (lambda: L.Gaussian(scale=0.1, min_scale=0.2), r"min_scale must be below scale=0.1, got 0.2"),
        (lambda: L.Gaussian(min_scale=-1e-3), r"min_scale must be in \[0, inf\), got -0.001"),
        (lambda: L.Gaussian(scale="1"), "scale must be a number, got '1'"),
        (lambda: L.StudentT(df=0.0), "df must be .*got 0.0"),
        (lambda: L.StudentT(df=-1.0, trainable=True), "df must be .*got -1.0"),
        (lambda: L.HeteroscedasticGaussian(min_scale=-0.5), r"min_scale must be in \[0, inf\), got -0.5"),
        (lambda: L.Categorical(1), "n_classes must be an integer >= 2, got 1"),
        (lambda: L.Categorical(2.5), "n_classes must be .*got 2.5"),
        (lambda: L.Categorical(True), "n_classes must be .*got True"),
        (lambda: L.get("gaussian", scale=-1.0), "scale must be .*got -1.0"),
    ],
)
def test_invalid_arguments_raise_naming_the_value(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_get_by_name_means_what_the_estimators_mean():
    """A name gives the estimators' likelihood (learned noise for "gaussian" and
    "student_t"); `kwargs` override it; the classes keep their own defaults."""
    assert L.get("gaussian") == L.Gaussian(trainable=True)
    assert L.get("student_t") == L.StudentT(trainable=True)
    assert L.get("heteroscedastic") == L.HeteroscedasticGaussian()
    assert L.get("poisson") == L.Poisson()
    assert L.get("bernoulli") == L.Bernoulli()
    assert L.get("categorical", n_classes=3) == L.Categorical(3)
    assert L.get("gaussian", trainable=False) == L.Gaussian()
    assert L.get("gaussian", scale=0.5) == L.Gaussian(scale=0.5, trainable=True)
    assert L.Gaussian().trainable is False and L.StudentT().trainable is False
    assert L.names(classification=False) == ["gaussian", "heteroscedastic", "poisson",
                                             "student_t"]
    assert L.names(classification=True) == ["bernoulli", "categorical"]


def test_get_by_instance_and_config():
    instance = L.Poisson()
    assert L.get(instance) is instance
    with pytest.raises(ValueError, match=r"Unknown likelihood='laplace'; expected one of \["):
        L.get("laplace")
    with pytest.raises(TypeError, match="got int"):
        L.get(3)


# -- the maths in the network outputs (the GGN's output terms) ------------------------------

OUTPUT_HESSIAN_CASES = [
    (L.Categorical(3), None, np.array([[0.3, -1.0, 2.0], [1.2, 0.1, -0.4]]), np.array([[2.0], [0.0]])),
    (L.Bernoulli(), None, np.array([[0.7], [-1.3]]), np.array([[1.0], [0.0]])),
    (L.Poisson(), None, np.array([[0.4, -0.2], [1.1, 0.0]]), np.array([[1.0, 3.0], [0.0, 2.0]])),
    (L.Gaussian(scale=0.7), None, np.array([[0.4], [-0.2]]), np.array([[1.0], [0.3]])),
    (L.Gaussian(trainable=True), np.array([0.5, 2.0]), np.array([[0.4, -0.2], [0.1, 0.9]]),
     np.array([[1.0, 1.0], [-0.5, 0.2]])),
]


@pytest.mark.parametrize("likelihood, noise, f, y", OUTPUT_HESSIAN_CASES, ids=repr)
def test_output_terms_are_the_negative_log_likelihood_and_its_derivatives(likelihood, noise, f, y):
    """`output_nll` is `-log_prob` at the outputs `f` (with the noise `noise`, if given),
    `output_residual` its gradient and `output_hessian_sqrt` a root of its Hessian."""
    params = f if noise is None else np.c_[f, np.log(np.expm1(noise - 1e-6)) + 0 * f]
    np.testing.assert_allclose(likelihood.output_nll(f, y, noise),
                               -likelihood.log_prob(y, params.astype("float32")).numpy(), rtol=1e-5)
    k, eps = f.shape[1], 1e-5
    for n in range(len(f)):
        hessian = np.zeros((k, k))
        for j in range(k):
            step = np.zeros_like(f)
            step[n, j] = eps
            up, down = f + step, f - step
            hessian[:, j] = (likelihood.output_residual(up, y, noise)
                             - likelihood.output_residual(down, y, noise))[n] / (2 * eps)
            num_grad = (likelihood.output_nll(up, y, noise)
                        - likelihood.output_nll(down, y, noise))[n] / (2 * eps)
            assert num_grad == pytest.approx(likelihood.output_residual(f, y, noise)[n, j],
                                             rel=1e-6, abs=1e-8)
        root = likelihood.output_hessian_sqrt(f, noise)[n]
        np.testing.assert_allclose(root @ root.T, hessian, atol=1e-7)


@pytest.mark.parametrize("likelihood", [L.StudentT(), L.HeteroscedasticGaussian()], ids=repr)
def test_likelihoods_without_an_output_hessian_refuse(likelihood):
    assert not likelihood.has_output_hessian
    assert L.output_hessian_names() == ["bernoulli", "categorical", "gaussian", "poisson"]
    f = np.zeros((2, 2))
    for call in (lambda: likelihood.output_nll(f, f), lambda: likelihood.output_residual(f, f),
                 lambda: likelihood.output_hessian_sqrt(f)):
        with pytest.raises(NotImplementedError, match=r"has no closed-form, positive "
                                                      r"semi-definite output Hessian; the "
                                                      r"likelihoods with one are \['bernoulli'"):
            call()


def test_noise_raw_inverts_noise_scale():
    likelihood = L.Gaussian(scale=0.3, trainable=True, min_scale=0.01)
    scale = np.array([0.02, 0.3, 5.0, 40.0])
    raw = likelihood.noise_raw(scale)
    np.testing.assert_allclose(likelihood.noise_scale(raw).numpy(), scale, rtol=1e-12)
    (head,) = likelihood.output_layers(1)
    head.build((None, 1))
    (raw,) = likelihood.noise_variables(keras.Sequential([keras.Input((1,)), head]))
    assert raw is head.raw_scale
    np.testing.assert_allclose(likelihood.noise_scale(head.raw_scale).numpy(), 0.3, rtol=1e-6)


# -- serialisation ---------------------------------------------------------------------------

ALL_LIKELIHOODS = [
    L.Gaussian(),
    L.Gaussian(scale=0.3, trainable=True, min_scale=0.01),
    L.StudentT(df=3.0, scale=2.0, trainable=True),
    L.HeteroscedasticGaussian(min_scale=1e-3),
    L.Poisson(),
    L.Bernoulli(),
    L.Categorical(5),
]


@pytest.mark.parametrize("likelihood", ALL_LIKELIHOODS, ids=repr)
def test_config_round_trips_through_json(likelihood):
    config = json.loads(json.dumps(likelihood.get_config()))
    assert type(likelihood).from_config(config) == likelihood
    serialized = json.loads(json.dumps(keras.saving.serialize_keras_object(likelihood)))
    restored = L.get(serialized)
    assert type(restored) is type(likelihood) and restored == likelihood
    assert likelihood != (L.Categorical(2) if isinstance(likelihood, L.Gaussian) else L.Gaussian())


@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")
@pytest.mark.parametrize("likelihood, width", [(L.Gaussian(trainable=True), 2), (L.Categorical(3), 3)])
def test_negative_log_likelihood_loss_computes_and_serialises(likelihood, width, tmp_path):
    rng = np.random.default_rng(1)
    y_pred = rng.normal(size=(8, width)).astype("float32")
    y_true = (rng.integers(0, 3, size=(8, 1)) if width == 3 else rng.normal(size=(8, 1)))
    y_true = y_true.astype("float32")
    loss = L.NegativeLogLikelihood(likelihood)
    expected = -likelihood.log_prob(y_true, y_pred).numpy().mean()
    np.testing.assert_allclose(float(loss(y_true, y_pred)), expected, rtol=1e-6)

    config = json.loads(json.dumps(keras.saving.serialize_keras_object(loss)))
    restored = keras.saving.deserialize_keras_object(config)
    assert isinstance(restored, L.NegativeLogLikelihood) and restored.likelihood == likelihood
    np.testing.assert_allclose(float(restored(y_true, y_pred)), expected, rtol=1e-6)

    # ... and inside a compiled model saved to .keras and loaded in safe mode.
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(width)])
    model.compile("adam", loss=loss)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert loaded.loss.likelihood == likelihood


# -- mixed precision: half-precision outputs, float32 log-likelihoods ---------------------------


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("likelihood, width", [(L.Gaussian(trainable=True), 2),
                                               (L.HeteroscedasticGaussian(), 2),
                                               (L.StudentT(), 1), (L.Poisson(), 1),
                                               (L.Bernoulli(), 1), (L.Categorical(3), 3)])
def test_half_precision_parameters_are_computed_in_float32(likelihood, width, dtype):
    rng = np.random.default_rng(2)
    half = tf.cast(rng.normal(size=(6, width)), dtype)
    y = rng.integers(0, 2, size=6).astype("float32")
    got = likelihood.log_prob(y, half)
    assert got.dtype == tf.float32
    # Exactly the float32 computation on the (rounded) half-precision values.
    np.testing.assert_array_equal(got, likelihood.log_prob(y, tf.cast(half, tf.float32)))


@pytest.fixture(params=["mixed_float16", "mixed_bfloat16"])
def mixed_policy(request):
    keras.mixed_precision.set_global_policy(request.param)
    try:
        yield request.param
    finally:
        keras.mixed_precision.set_global_policy("float32")


def _fit_dense(x, y):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(2)])
    loss = L.NegativeLogLikelihood(L.HeteroscedasticGaussian())
    model.compile(keras.optimizers.Adam(1e-2), loss=loss)
    history = model.fit(x, y, epochs=15, batch_size=32, verbose=0)
    return model, loss, history.history["loss"]


def test_a_mixed_precision_model_fits_with_a_float32_loss(mixed_policy):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(256, 2)).astype("float32")
    y = (2 * x[:, 0] - x[:, 1] + rng.normal(size=256)).astype("float32")
    model, loss, history = _fit_dense(x, y)
    outputs = model(x[:8])
    assert outputs.dtype == mixed_policy.removeprefix("mixed_")
    assert loss(y[:8], outputs).dtype == "float32"
    assert np.all(np.isfinite(history))
    keras.mixed_precision.set_global_policy("float32")
    _, _, reference = _fit_dense(x, y)
    assert abs(history[-1] - reference[-1]) < 0.05 * abs(reference[-1])


# -- the heteroscedastic likelihood learns input-dependent noise -----------------------------


def _true_sd(x):
    return 0.1 + 0.4 * np.abs(x)


def _check_heteroscedastic_recovery(n, epochs, batch_size, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3, 3, n)
    y = np.sin(x) + _true_sd(x) * rng.standard_normal(n)
    model = BayesianRegressor(likelihood="heteroscedastic", hidden_units=(16,), epochs=epochs,
                              batch_size=batch_size, learning_rate=1e-3,
                              random_state=seed).fit(x[:, None], y)
    assert isinstance(model.likelihood_, L.HeteroscedasticGaussian)
    grid = np.linspace(-2.5, 2.5, 21)
    dist = model.predict_distribution(grid[:, None])
    aleatoric_sd = np.sqrt(dist.aleatoric_var)
    assert np.corrcoef(aleatoric_sd, _true_sd(grid))[0, 1] > 0.95
    # Away from the kink at 0 the learned noise is the true one (x = +-1, +-1.5, +-2, +-2.5).
    at = np.abs(grid) >= 1.0
    ratio = aleatoric_sd[at] / _true_sd(grid[at])
    assert np.all((ratio > 0.8) & (ratio < 1.25)), ratio
    # The noise grows 11-fold from the centre to the edges (the kink itself is smoothed
    # over); the mean still follows sin(x).
    assert aleatoric_sd[0] > 2 * aleatoric_sd[10] and aleatoric_sd[-1] > 2 * aleatoric_sd[10]
    inner = np.abs(grid) <= 2.0
    assert np.max(np.abs(dist.mean - np.sin(grid))[inner]) < 0.3


def test_heteroscedastic_likelihood_recovers_input_dependent_noise():
    _check_heteroscedastic_recovery(n=1000, epochs=60, batch_size=32, seed=0)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_heteroscedastic_recovery_other_seeds(seed):
    _check_heteroscedastic_recovery(n=2000, epochs=200, batch_size=100, seed=seed)
