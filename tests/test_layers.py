"""tfbnn.layers: the layer contract, KL losses, seeded and vectorised sampling."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from layer_checks import check_draw_moments, check_layer
from scipy import stats

from tfbnn import likelihoods, priors
from tfbnn.functional import FunctionalModel
from tfbnn.layers import (
    DenseFlipout,
    DenseLocalReparameterization,
    DenseReparameterization,
    LearnedScale,
    sample_outputs,
    set_kl_weight,
    variational_layers,
    weight_samples,
)

tfd = tfp.distributions

VARIATIONAL = [DenseReparameterization, DenseFlipout, DenseLocalReparameterization]


def _inv_softplus(x):
    return np.log(np.expm1(np.asarray(x, np.float64)))


def _set_posterior(layer, kernel_loc, kernel_scale, bias_loc=None, bias_scale=None):
    layer.kernel_loc.assign(np.asarray(kernel_loc, np.float32))
    layer.kernel_rho.assign(_inv_softplus(kernel_scale).astype(np.float32))
    if bias_loc is not None:
        layer.bias_loc.assign(np.asarray(bias_loc, np.float32))
        layer.bias_rho.assign(_inv_softplus(bias_scale).astype(np.float32))


def _normal_kl(m1, s1, m2, s2):
    """KL[N(m1, s1) || N(m2, s2)], elementwise, written out."""
    return np.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5


KERNEL_LOC = np.array([[0.5, -1.0], [1.5, 0.2], [-0.3, 0.8]])
KERNEL_SCALE = np.array([[0.1, 0.5], [1.0, 0.2], [0.3, 0.7]])
BIAS_LOC = np.array([0.4, -0.6])
BIAS_SCALE = np.array([0.25, 0.05])


def _known_layer(cls, seed=0, use_bias=True):
    layer = cls(2, seed=seed, use_bias=use_bias)
    layer.build((None, 3))
    _set_posterior(layer, KERNEL_LOC, KERNEL_SCALE,
                   BIAS_LOC if use_bias else None, BIAS_SCALE if use_bias else None)
    return layer


# -- the shared layer contract ---------------------------------------------------------------


@pytest.mark.parametrize("cls", VARIATIONAL)
@pytest.mark.parametrize(
    "kwargs, n_trainable",
    [
        ({"units": 3, "activation": "relu", "seed": 1}, 4),
        ({"units": 2, "use_bias": False, "prior": priors.StudentT(5.0, 0.0, 0.5), "kl_weight": 0.1}, 2),
        ({"units": 4, "activation": "tanh", "prior": "scale_mixture", "posterior_scale_init": 0.05,
          "kernel_initializer": "he_normal", "name": "custom"}, 4),
    ],
)
def test_variational_layers_pass_the_layer_checks(cls, kwargs, n_trainable, tmp_path):
    layer = check_layer(
        cls,
        kwargs,
        (5, 3),
        expected_output_shape=(5, kwargs["units"]),
        expected_num_trainable_weights=n_trainable,
        expected_num_non_trainable_variables=2,  # the seed generator's state, kl_weight
        expected_num_losses=1,  # kl_weight * KL
        stochastic=True,
        tmp_path=tmp_path,
    )
    assert layer.prior == priors.get(kwargs.get("prior"))


@pytest.mark.parametrize("cls", VARIATIONAL)
def test_variational_layers_take_inputs_with_extra_axes(cls, tmp_path):
    check_layer(cls, {"units": 2, "seed": 3}, (4, 3, 5), expected_output_shape=(4, 3, 2),
                expected_num_trainable_weights=4, expected_num_non_trainable_variables=2,
                expected_num_losses=1, stochastic=True, tmp_path=tmp_path)


def test_learned_scale_passes_the_layer_checks(tmp_path):
    layer = check_layer(LearnedScale, {"initial_scale": 0.7, "min_scale": 0.1}, (4, 2),
                        expected_output_shape=(4, 4), expected_num_trainable_weights=1,
                        tmp_path=tmp_path)
    x = np.arange(8, dtype="float32").reshape(4, 2)
    out = np.asarray(layer(x))
    np.testing.assert_array_equal(out[:, :2], x)
    # The appended raw scale maps to exactly the initial scale through the likelihood.
    lik = likelihoods.Gaussian(scale=0.7, trainable=True, min_scale=0.1)
    np.testing.assert_allclose(lik.distribution(out).stddev().numpy(), 0.7, rtol=1e-6)


# -- inside Keras models, trained with model.fit ---------------------------------------------


def _regression_problem(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0]]) + 0.1 * rng.normal(size=(n, 1))).astype("float32")
    return x, y


def _fit_save_load(model, x, y, tmp_path):
    """Fits with plain `model.fit`; the loss must fall, and the trained model must
    come back from a `.keras` file (safe mode) predicting identically."""
    model.compile(
        keras.optimizers.Adam(0.05),
        loss=likelihoods.NegativeLogLikelihood(likelihoods.Gaussian(trainable=True)),
        jit_compile=False,  # XLA compilation would cost more than these few steps
    )
    history = model.fit(x, y, epochs=20, batch_size=16, verbose=0).history["loss"]
    assert np.all(np.isfinite(history))
    assert history[-1] < 0.5 * history[0], history
    # The compiled loss includes the KL layer losses: the model has some.
    model(x[:4], training=True)
    assert len(model.losses) == len(variational_layers(model))

    model.save(tmp_path / "trained.keras")
    loaded = keras.saving.load_model(tmp_path / "trained.keras", safe_mode=True)
    assert isinstance(loaded.loss, likelihoods.NegativeLogLikelihood)
    for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    for source, target in zip(model.non_trainable_variables, loaded.non_trainable_variables,
                              strict=True):
        target.assign(source)  # the same seed state
    first = np.asarray(model(x))
    np.testing.assert_array_equal(np.asarray(loaded(x)), first)
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))
    assert not np.array_equal(np.asarray(model(x)), first)  # the draws do vary


@pytest.mark.parametrize("cls", VARIATIONAL)
def test_sequential_model_fit_decreases_the_loss_and_saves(cls, tmp_path):
    x, y = _regression_problem()
    model = keras.Sequential([
        keras.Input((2,)),
        cls(8, activation="relu", kl_weight=1 / len(x), seed=1),
        cls(1, kl_weight=1 / len(x), seed=2),
        LearnedScale(),
    ])
    _fit_save_load(model, x, y, tmp_path)


def test_functional_model_mixing_all_layers_fit_decreases_the_loss_and_saves(tmp_path):
    x, y = _regression_problem(seed=1)
    inputs = keras.Input((2,))
    h = DenseFlipout(8, activation="relu", kl_weight=1 / len(x), seed=1)(inputs)
    h = DenseLocalReparameterization(8, activation="relu", kl_weight=1 / len(x), seed=2)(h)
    loc = DenseReparameterization(1, kl_weight=1 / len(x), seed=3)(h)
    model = keras.Model(inputs, LearnedScale()(loc))
    _fit_save_load(model, x, y, tmp_path)


# -- the KL layer loss ------------------------------------------------------------------


@pytest.mark.parametrize("cls", VARIATIONAL)
def test_kl_loss_is_kl_weight_times_closed_form_kl_for_a_normal_prior(cls):
    prior = priors.Normal(loc=0.2, scale=0.7)
    layer = cls(2, prior=prior, kl_weight=0.37, seed=0)
    layer.build((None, 3))
    _set_posterior(layer, KERNEL_LOC, KERNEL_SCALE, BIAS_LOC, BIAS_SCALE)
    layer(np.ones((4, 3), "float32"), training=True)
    (loss,) = layer.losses

    by_hand = (_normal_kl(KERNEL_LOC, KERNEL_SCALE, 0.2, 0.7).sum()
               + _normal_kl(BIAS_LOC, BIAS_SCALE, 0.2, 0.7).sum())
    p = tfd.Normal(0.2, 0.7)
    by_tfp = (tf.reduce_sum(tfd.kl_divergence(layer.kernel_posterior(), p))
              + tf.reduce_sum(tfd.kl_divergence(layer.bias_posterior(), p)))
    np.testing.assert_allclose(float(loss), 0.37 * by_hand, rtol=1e-5)
    np.testing.assert_allclose(float(loss), 0.37 * float(by_tfp), rtol=1e-5)


@pytest.mark.parametrize("cls", [DenseReparameterization, DenseFlipout])
def test_monte_carlo_kl_loss_is_evaluated_at_the_weights_the_forward_pass_used(cls):
    # With zero posterior means, no bias and the identity as inputs, |outputs| are
    # the absolute values of the kernel sample (Flipout only flips signs), and
    # both densities below are symmetric about zero.
    prior = priors.Laplace(0.0, 0.3)
    layer = cls(4, prior=prior, kl_weight=0.5, use_bias=False, seed=5)
    layer.build((None, 3))
    scale = np.array([[0.1, 0.5, 1.0, 0.2]] * 3) * np.array([[1.0], [2.0], [0.5]])
    _set_posterior(layer, np.zeros((3, 4)), scale)
    w = np.abs(np.asarray(layer(np.eye(3, dtype="float32"), training=True), np.float64))
    (loss,) = layer.losses
    by_hand = np.sum(stats.norm.logpdf(w, 0.0, scale) - stats.laplace.logpdf(w, 0.0, 0.3))
    np.testing.assert_allclose(float(loss), 0.5 * by_hand, rtol=1e-4)


def test_set_kl_weight_reaches_every_variational_layer_including_nested_models():
    inner = keras.Sequential([keras.Input((3,)), DenseFlipout(4, seed=0)], name="inner")
    model = keras.Sequential([keras.Input((3,)), inner, DenseReparameterization(1, seed=1),
                              LearnedScale()])
    x = np.ones((2, 3), "float32")
    model(x, training=True)
    kl_at_one = [float(loss) for loss in model.losses]
    assert len(variational_layers(model)) == 2

    set_kl_weight(model, 0.25)
    assert [layer.kl_weight for layer in variational_layers(model)] == [0.25, 0.25]
    model(x, training=True)
    # Closed-form KL (Normal prior) does not depend on the draw: exactly a quarter.
    np.testing.assert_allclose([float(v) for v in model.losses], 0.25 * np.array(kl_at_one),
                               rtol=1e-6)

    set_kl_weight(model, 0)
    model(x, training=True)
    assert [float(v) for v in model.losses] == [0.0, 0.0]


def test_kl_weight_is_a_float32_state_variable_read_by_compiled_code_on_every_call(tmp_path):
    layer = DenseFlipout(2, kl_weight=0.5, seed=0)
    layer.kl_weight = 0.25  # before build: kept for the variable
    model = keras.Sequential([keras.Input((3,)), layer])
    variable = layer.kl_weight_variable
    assert variable.dtype == "float32" and not variable.trainable
    assert any(v is variable for v in model.non_trainable_variables)
    assert layer.kl_weight == 0.25 and layer.get_config()["kl_weight"] == 0.25
    x = np.ones((2, 3), "float32")

    @tf.function(jit_compile=True)
    def kl_term(inputs):
        model(inputs, training=True)
        return tf.add_n(model.losses)

    first = float(kl_term(x))
    set_kl_weight(model, 0.75)  # after tracing: the traced program must follow
    np.testing.assert_allclose(float(kl_term(x)), 3 * first, rtol=1e-6)
    assert kl_term.experimental_get_tracing_count() == 1

    # Stateless calls (tfbnn.train, samplers) read the weight from the given state.
    functional = FunctionalModel(model)
    state = functional.get_state()
    position = [i for i, v in enumerate(model.non_trainable_variables) if v is variable][0]
    state[position] = tf.constant(0.075)
    _, _, layer_loss = functional(functional.get_params(), state, x)
    np.testing.assert_allclose(float(layer_loss), 0.1 * float(kl_term(x)), rtol=1e-6)

    set_kl_weight(model, 1 / 3)  # the number as given, not its float32 rounding
    assert layer.kl_weight == 1 / 3 and layer.get_config()["kl_weight"] == 1 / 3
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert loaded.layers[0].kl_weight == 1 / 3
    variable.assign(0.5)  # a direct write shows through
    assert layer.kl_weight == 0.5



@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
def test_set_kl_weight_rejects_invalid_values(bad):
    model = keras.Sequential([keras.Input((3,)), DenseFlipout(1)])
    with pytest.raises(ValueError, match=f"kl_weight.*got {bad!r}"):
        set_kl_weight(model, bad)
    assert variational_layers(model)[0].kl_weight == 1.0


# -- seeded sampling -----------------------------------------------------------------


@pytest.mark.parametrize("cls", VARIATIONAL)
def test_same_seed_gives_the_same_draws_and_successive_calls_differ(cls):
    x = np.random.default_rng(0).normal(size=(6, 3)).astype("float32")
    a, b, c = (_known_layer(cls, seed=s) for s in (7, 7, 8))
    first_a, first_b, first_c = (np.asarray(layer(x, training=True)) for layer in (a, b, c))
    np.testing.assert_array_equal(first_a, first_b)
    assert not np.allclose(first_a, first_c)
    second_a, second_b = (np.asarray(layer(x, training=True)) for layer in (a, b))
    np.testing.assert_array_equal(second_a, second_b)
    assert not np.allclose(first_a, second_a)
    with weight_samples(3):
        tiled = np.tile(x, (3, 1))
        np.testing.assert_array_equal(np.asarray(a(tiled)), np.asarray(b(tiled)))


@pytest.mark.parametrize("cls, per_example", [(DenseReparameterization, False),
                                               (DenseFlipout, True),
                                               (DenseLocalReparameterization, True)])
def test_which_layers_perturb_each_example_separately(cls, per_example):
    # Reparameterization shares one kernel sample across the batch; Flipout's sign
    # flips and local reparameterization give every example its own noise.
    layer = _known_layer(cls, seed=4, use_bias=False)
    out = np.asarray(layer(np.tile([[0.7, -1.2, 0.4]], (50, 1)).astype("float32"),
                           training=True))
    spread = out.std(axis=0)
    if per_example:
        assert np.all(spread > 0.1 * np.sqrt(np.array([0.7, 1.2, 0.4]) ** 2 @ KERNEL_SCALE**2))
    else:
        np.testing.assert_allclose(spread, 0.0, atol=1e-5)


@pytest.mark.parametrize("cls", VARIATIONAL)
def test_training_call_marginals_match_the_posterior(cls):
    # Over independent calls, each output has mean x @ loc + b and variance
    # x^2 @ scale^2 + bias_scale^2. Per-call statistics are i.i.d., so their
    # spread gives the Monte-Carlo standard error.
    layer = _known_layer(cls, seed=11)
    x = np.array([0.7, -1.2, 0.4], "float32")
    mean = x @ KERNEL_LOC + BIAS_LOC
    var = x**2 @ KERNEL_SCALE**2 + BIAS_SCALE**2
    call = tf.function(lambda inputs: layer(inputs, training=True))
    batch = np.tile(x, (64, 1))
    draws = np.stack([np.asarray(call(batch), np.float64) for _ in range(300)])  # (K, B, 2)
    check_draw_moments(draws, mean, var, power=0.15)


# -- vectorised sampling: weight_samples / sample_outputs --------------------------------------


def _probe_inputs():
    """Zero, the unit vectors (which read off the bias and kernel rows), one more row."""
    return np.vstack([np.zeros(3), np.eye(3), [[0.3, -1.1, 2.0]]]).astype("float32")


@pytest.mark.parametrize("cls", VARIATIONAL)
def test_sample_outputs_draws_one_coherent_weight_sample_per_block(cls):
    model = keras.Sequential([keras.Input((3,)), _known_layer(cls, seed=2)])
    x = _probe_inputs()
    out = np.asarray(sample_outputs(model, x, 7), np.float64)
    assert out.shape == (7, 5, 2)
    bias = out[:, 0]
    kernel = out[:, 1:4] - bias[:, None]
    # The last row is computed with the same weights as the others in its block.
    np.testing.assert_allclose(out[:, 4], np.einsum("i,sio->so", x[4], kernel) + bias, atol=1e-4)
    # ... and the blocks carry different weights.
    assert np.all(np.std(kernel, axis=0) > 0)
    again = np.asarray(sample_outputs(model, x, 7))
    assert not np.allclose(out, again), "two calls drew the same weights"


def _check_vectorised_draws(cls, n_samples, seed):
    model = keras.Sequential([keras.Input((3,)), _known_layer(cls, seed=seed)])
    out = np.asarray(sample_outputs(model, _probe_inputs()[:4], n_samples), np.float64)
    bias = out[:, 0]
    kernel = out[:, 1:4] - bias[:, None]
    z = np.concatenate([((kernel - KERNEL_LOC) / KERNEL_SCALE).reshape(n_samples, -1),
                        (bias - BIAS_LOC) / BIAS_SCALE], axis=1)  # (S, 8), should be iid N(0, 1)
    s = n_samples
    # Means and standard deviations of every weight.
    assert np.all(np.abs(z.mean(axis=0)) < 4.5 / math.sqrt(s)), z.mean(axis=0)
    assert np.all(np.abs(z.std(axis=0) - 1.0) < 4.5 / math.sqrt(2 * s)), z.std(axis=0)
    # Independent across sample blocks (lag-1) and across weights (mean field).
    lag = np.array([np.corrcoef(z[:-1, j], z[1:, j])[0, 1] for j in range(z.shape[1])])
    assert np.all(np.abs(lag) < 4.5 / math.sqrt(s)), lag
    corr = np.corrcoef(z, rowvar=False)[np.triu_indices(z.shape[1], 1)]
    assert np.all(np.abs(corr) < 4.5 / math.sqrt(s)), corr
    assert stats.kstest(z.ravel(), "norm").pvalue > 1e-4


@pytest.mark.parametrize("cls", VARIATIONAL)
def test_vectorised_draws_have_the_posterior_mean_std_and_are_independent(cls):
    _check_vectorised_draws(cls, 4000, seed=3)


@pytest.mark.slow
@pytest.mark.parametrize("cls", VARIATIONAL)
@pytest.mark.parametrize("seed", [10, 11, 12])
def test_vectorised_draws_statistics_many_samples(cls, seed):
    _check_vectorised_draws(cls, 50_000, seed=seed)


def test_weight_samples_validates_and_nests():
    from tfbnn.layers.sampling import current_weight_samples

    for bad in (0, -2, 2.5, True, "3"):
        with pytest.raises(ValueError, match=f"n_samples must be an integer >= 1, got {bad!r}"):
            with weight_samples(bad):
                pass
    assert current_weight_samples() is None
    with weight_samples(4):
        with weight_samples(2):
            assert current_weight_samples() == 2
        assert current_weight_samples() == 4
    assert current_weight_samples() is None



def test_layer_noise_is_normal_and_rademacher_as_compiled_code_draws_it():
    # The training calls cut their normals and signs from one uniform draw
    # (`random_symmetric`); under XLA as eagerly it must stay on the odd lattice in
    # (-1, 1), give standard normals through `normal_from` and fair signs.
    from tfbnn.layers.sampling import normal_from, rademacher, random_symmetric

    generator = keras.random.SeedGenerator(5)
    draw = tf.function(lambda: random_symmetric([200_000], generator), jit_compile=True)
    symmetric = np.asarray(draw(), np.float64)
    lattice = (symmetric + 1) * 2.0**23
    np.testing.assert_array_equal(lattice, np.round(lattice))
    assert np.all(lattice % 2 == 1) and np.all(np.abs(symmetric) < 1)
    normals = np.asarray(normal_from(tf.constant(symmetric, tf.float32)), np.float64)
    assert stats.kstest(normals, "norm").pvalue > 1e-3
    assert abs(stats.kurtosis(normals)) < 0.05 and np.abs(normals).max() < 5.4
    signs = np.asarray(rademacher(tf.constant(symmetric, tf.float32)))
    assert set(np.unique(signs)) == {-1.0, 1.0}
    assert abs(signs.mean()) < 4 / math.sqrt(len(signs))
    assert not np.array_equal(np.asarray(draw()), symmetric.astype(np.float32))

# -- constructor validation ----------------------------------------------------------------


@pytest.mark.parametrize("cls", VARIATIONAL)
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"units": 0}, "units must be an integer >= 1, got 0"),
        ({"units": -3}, "units must be an integer >= 1, got -3"),
        ({"units": 2.5}, "units must be an integer >= 1, got 2.5"),
        ({"units": True}, "units must be an integer >= 1, got True"),
        ({"units": 2, "kl_weight": -0.5}, r"kl_weight must be .*got -0.5"),
        ({"units": 2, "kl_weight": math.nan}, r"kl_weight must be .*got nan"),
        ({"units": 2, "posterior_scale_init": 0.0}, r"posterior_scale_init .*got 0.0"),
        ({"units": 2, "posterior_scale_init": -1.0}, r"posterior_scale_init .*got -1.0"),
        ({"units": 2, "prior": "gaussian_process"}, r"Unknown prior='gaussian_process'"),
        ({"units": 2, "activation": "wiggle"}, "wiggle"),
    ],
)
def test_variational_layer_rejects_invalid_arguments(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)


def test_variational_layer_needs_a_known_input_width():
    with pytest.raises(ValueError, match="last input dimension must be known"):
        DenseFlipout(2).build((None, None))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"initial_scale": 0.0}, "initial_scale=0.0"),
        ({"initial_scale": -1.0}, "initial_scale=-1.0"),
        ({"initial_scale": 1.0, "min_scale": 2.0}, "min_scale=2.0"),
        ({"initial_scale": 1.0, "min_scale": -0.1}, "min_scale=-0.1"),
        ({"initial_scale": math.nan}, "initial_scale=nan"),
    ],
)
def test_learned_scale_rejects_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LearnedScale(**kwargs)


# -- a prior centred per weight (MOPED) ------------------------------------------------------


@pytest.mark.parametrize("cls", VARIATIONAL)
def test_a_centred_prior_shifts_the_kl_to_each_weights_own_centre(cls, tmp_path):
    layer = cls(2, prior_centered=True, seed=0)
    layer.build((None, 3))
    _set_posterior(layer, KERNEL_LOC, KERNEL_SCALE, BIAS_LOC, BIAS_SCALE)
    centre_k, centre_b = KERNEL_LOC - 0.3, BIAS_LOC + 0.2
    layer.set_prior_loc("kernel", centre_k)
    layer.set_prior_loc("bias", centre_b)
    layer(np.ones((4, 3), np.float32), training=True)
    expected = (_normal_kl(KERNEL_LOC, KERNEL_SCALE, centre_k, 1.0).sum()
                + _normal_kl(BIAS_LOC, BIAS_SCALE, centre_b, 1.0).sum())
    np.testing.assert_allclose(float(layer.losses[0]), expected, rtol=1e-5)
    # The centres are weights of the layer: they survive a .keras round trip.
    model = keras.Sequential([keras.Input((3,)), layer])
    model.save(tmp_path / "centred.keras")
    loaded = keras.saving.load_model(tmp_path / "centred.keras", safe_mode=True)
    np.testing.assert_array_equal(np.asarray(loaded.layers[0].kernel_prior_loc), centre_k.astype("float32"))


def test_set_prior_loc_needs_a_centred_prior():
    layer = DenseFlipout(2)
    layer.build((None, 3))
    with pytest.raises(ValueError, match="prior_centered=True"):
        layer.set_prior_loc("kernel", np.zeros((3, 2)))
