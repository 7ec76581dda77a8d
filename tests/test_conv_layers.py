"""tfbnn.layers' variational convolutions: the layer contract, agreement with Keras'
convolutions, the KL loss, Flipout's per-example noise, vectorised sampling, mixed
precision and training."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from layer_checks import check_draw_moments, check_layer
from scipy import stats
from sklearn.datasets import load_digits

import tfbnn
from tfbnn import likelihoods, priors
from tfbnn.layers import (
    Conv1DFlipout,
    Conv1DReparameterization,
    Conv2DFlipout,
    Conv2DReparameterization,
    Conv3DFlipout,
    Conv3DReparameterization,
    ConvVariational,
    DenseFlipout,
    sample_outputs,
    weight_samples,
)

REPARAMETERIZATION = {1: Conv1DReparameterization, 2: Conv2DReparameterization,
                      3: Conv3DReparameterization}
FLIPOUT = {1: Conv1DFlipout, 2: Conv2DFlipout, 3: Conv3DFlipout}
ALL = [*REPARAMETERIZATION.values(), *FLIPOUT.values()]


def _both(rank):
    return [REPARAMETERIZATION[rank], FLIPOUT[rank]]


def _inv_softplus(x):
    return np.log(np.expm1(np.asarray(x, np.float64))).astype(np.float32)


def _set_posterior(layer, name, loc, scale):
    getattr(layer, f"{name}_loc").assign(np.asarray(loc, np.float32))
    getattr(layer, f"{name}_rho").assign(_inv_softplus(scale))


def _images(rank, batch, size, channels, data_format="channels_last", seed=0):
    spatial = (size,) * rank
    shape = (batch, *spatial, channels) if data_format == "channels_last" else (
        batch, channels, *spatial)
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


# -- the shared layer contract ---------------------------------------------------------------

CONTRACT_CASES = [
    # class, constructor arguments, input shape, output shape, trainable weights, other
    # variables (the seed generator's state and kl_weight, and any prior centres)
    (Conv1DFlipout, {"filters": 3, "kernel_size": 3, "padding": "causal", "dilation_rate": 2,
                     "activation": "relu", "seed": 1}, (4, 9, 2), (4, 9, 3), 4, 2),
    (Conv1DReparameterization, {"filters": 2, "kernel_size": 2, "strides": 3,
                                "data_format": "channels_first"}, (3, 2, 8), (3, 2, 3), 4, 2),
    (Conv2DReparameterization, {"filters": 4, "kernel_size": (3, 2), "strides": 2,
                                "padding": "same", "use_bias": False,
                                "prior": priors.StudentT(5.0, 0.0, 0.5), "kl_weight": 0.1},
     (3, 7, 6, 2), (3, 4, 3, 4), 2, 2),
    (Conv2DFlipout, {"filters": 2, "kernel_size": 2, "data_format": "channels_first",
                     "prior": "scale_mixture", "posterior_scale_init": 0.05,
                     "kernel_initializer": "he_normal", "bias_initializer": "ones",
                     "name": "custom"}, (2, 3, 5, 4), (2, 2, 4, 3), 4, 2),
    (Conv3DReparameterization, {"filters": 2, "kernel_size": 2, "strides": (1, 2, 1),
                                "prior_centered": True, "seed": 4},
     (2, 4, 5, 3, 1), (2, 3, 2, 2, 2), 4, 4),
    (Conv3DFlipout, {"filters": 3, "kernel_size": (1, 2, 2), "padding": "same",
                     "activation": "tanh", "prior": "laplace"}, (2, 3, 3, 3, 2),
     (2, 3, 3, 3, 3), 4, 2),
]


@pytest.mark.parametrize("cls, kwargs, input_shape, output_shape, n_trainable, n_other",
                         CONTRACT_CASES, ids=[case[0].__name__ for case in CONTRACT_CASES])
def test_conv_layers_pass_the_layer_checks(cls, kwargs, input_shape, output_shape,
                                           n_trainable, n_other, tmp_path):
    layer = check_layer(cls, kwargs, input_shape, expected_output_shape=output_shape,
                        expected_num_trainable_weights=n_trainable,
                        expected_num_non_trainable_variables=n_other,
                        expected_num_losses=1, stochastic=True, tmp_path=tmp_path)
    assert layer.prior == priors.get(kwargs.get("prior"))
    assert layer.posterior_names == (("kernel", "bias") if layer.use_bias else ("kernel",))


# -- the same function as Keras' convolutions, and built from their configs ---------------------

KERAS_CASES = [
    (1, {"padding": "valid", "strides": 2}, "channels_last"),
    (1, {"padding": "causal", "dilation_rate": 2}, "channels_last"),
    (1, {"padding": "same"}, "channels_first"),
    (2, {"padding": "valid", "strides": (2, 1)}, "channels_last"),
    (2, {"padding": "same", "dilation_rate": 2}, "channels_last"),
    (2, {"padding": "same", "strides": 2}, "channels_first"),
    (3, {"padding": "same", "strides": 2}, "channels_last"),
    (3, {"padding": "valid"}, "channels_first"),
]


@pytest.mark.parametrize("rank, kwargs, data_format", KERAS_CASES)
def test_with_keras_weights_and_no_posterior_spread_the_layers_equal_keras_convolutions(
        rank, kwargs, data_format):
    reference = getattr(keras.layers, f"Conv{rank}D")(
        3, 3, activation="tanh", data_format=data_format, **kwargs)
    x = _images(rank, 3, 7, 2, data_format)
    reference.build(x.shape)
    reference.bias.assign(np.array([0.3, -0.5, 0.1], np.float32))  # not Keras' zeros
    expected = np.asarray(reference(x))
    for cls in _both(rank):
        # Built from the Keras layer's own config, as `tfbnn.bayesianize` does.
        layer = cls.from_config({**reference.get_config(), "posterior_scale_init": 1e-8,
                                 "seed": 0})
        layer.build(x.shape)
        for name in ("kernel", "bias"):
            assert getattr(layer, f"{name}_loc").shape == getattr(reference, name).shape
            getattr(layer, f"{name}_loc").assign(getattr(reference, name))
        np.testing.assert_allclose(np.asarray(layer(x, training=True)), expected, atol=1e-5)
        model = keras.Sequential([keras.Input(x.shape[1:]), layer])
        draws = np.asarray(sample_outputs(model, x, 2))
        np.testing.assert_allclose(draws, np.stack([expected] * 2), atol=1e-5)


@pytest.mark.parametrize("option, value", [("kernel_regularizer", "l2"),
                                           ("bias_constraint", "non_neg"), ("groups", 2)])
def test_a_keras_config_with_unsupported_options_is_refused(option, value):
    config = keras.layers.Conv2D(4, 3, **{option: value}).get_config()
    with pytest.raises(ValueError, match=option):
        Conv2DFlipout.from_config(config)


@pytest.mark.parametrize("cls, kwargs, message", [
    (Conv2DFlipout, {"groups": 2}, "supports only groups=1, got groups=2"),
    (Conv2DFlipout, {"kernel_constraint": "non_neg"}, "does not support kernel_constraint=.non_neg."),
    (Conv2DFlipout, {"lora_rank": 2}, "does not support lora_rank=2"),
    (Conv2DFlipout, {"filters": 0}, "filters must be an integer >= 1, got 0"),
    (Conv2DReparameterization, {"kernel_size": (3, 3, 3)},
     r"kernel_size must be an integer or 2 integers, got \(3, 3, 3\)"),
    (Conv3DFlipout, {"kernel_size": 2.5}, "kernel_size must be an integer or 3 integers"),
    (Conv1DFlipout, {"strides": 0}, "strides must be an integer >= 1, got 0"),
    (Conv2DFlipout, {"strides": 2, "dilation_rate": 2}, "strides > 1 cannot be combined"),
    (Conv2DFlipout, {"padding": "causal"},
     r"Unknown padding='causal'; expected one of \['valid', 'same'\]"),
    (Conv1DReparameterization, {"padding": "full"}, "Unknown padding='full'"),
    (Conv2DFlipout, {"data_format": "NHWC"}, "Unknown data_format='NHWC'"),
])
def test_invalid_arguments_are_refused_with_their_names(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(**{"filters": 2, "kernel_size": 3, **kwargs})


def test_inputs_of_the_wrong_shape_are_refused():
    with pytest.raises(ValueError, match="too small for kernel_size=.5, 5."):
        Conv2DFlipout(2, 5)(np.zeros((1, 3, 3, 1), np.float32))
    with pytest.raises(ValueError, match="expected ndim=4"):
        Conv2DFlipout(2, 3)(np.zeros((2, 8, 1), np.float32))
    with pytest.raises(TypeError, match="no rank"):
        ConvVariational(2, 3)


# -- the KL layer loss ------------------------------------------------------------------


def _known_layer(cls, seed=0, **kwargs):
    """A layer with 2 input channels, 3 filters, kernel 2 and a known posterior."""
    layer = cls(3, 2, seed=seed, **kwargs)
    layer.build((None, *(2,) * cls.rank, 2))
    rng = np.random.default_rng(0)  # the same posterior whatever the seed
    shape = layer.kernel_loc.shape
    _set_posterior(layer, "kernel", rng.normal(size=shape), rng.uniform(0.1, 1.0, shape))
    if layer.use_bias:
        _set_posterior(layer, "bias", rng.normal(size=3), rng.uniform(0.1, 1.0, 3))
    return layer


@pytest.mark.parametrize("cls", ALL)
def test_kl_loss_is_the_closed_form_for_a_normal_prior_and_agrees_with_monte_carlo(cls):
    prior = priors.Normal(loc=0.2, scale=0.7)
    layer = _known_layer(cls, prior=prior, kl_weight=0.37)
    layer(_images(cls.rank, 2, 2, 2), training=True)
    (loss,) = layer.losses
    locs, scales = zip(*(layer.posterior_params(n) for n in layer.posterior_names))
    loc = np.concatenate([np.ravel(v) for v in locs]).astype(np.float64)
    scale = np.concatenate([np.ravel(v) for v in scales]).astype(np.float64)
    closed_form = np.sum(np.log(0.7 / scale) + (scale**2 + (loc - 0.2) ** 2) / (2 * 0.7**2) - 0.5)
    np.testing.assert_allclose(float(loss), 0.37 * closed_form, rtol=1e-5)
    # E_q[log q(w) - log p(w)] by Monte Carlo: the same number within its error.
    w = np.random.default_rng(1).normal(loc, scale, size=(20_000, loc.size))
    terms = np.sum(stats.norm.logpdf(w, loc, scale) - stats.norm.logpdf(w, 0.2, 0.7), axis=1)
    assert abs(terms.mean() - closed_form) < 4.5 * terms.std() / math.sqrt(len(terms))


def _one_hot_images(rank):
    """One image per kernel entry of a kernel 2, 2-channel layer: output = that row."""
    n = 2**rank * 2
    return np.eye(n, dtype=np.float32).reshape(n, *(2,) * rank, 2)


@pytest.mark.parametrize("cls", ALL)
def test_monte_carlo_kl_loss_is_evaluated_at_the_weights_the_forward_pass_used(cls):
    # Zero posterior means, no bias and one-hot images: |outputs| are the absolute
    # kernel sample (Flipout only flips signs); both densities are symmetric about 0.
    prior = priors.Laplace(0.0, 0.3)
    layer = _known_layer(cls, prior=prior, kl_weight=0.5, use_bias=False, seed=5)
    _, scale = (np.asarray(v, np.float64) for v in layer.posterior_params("kernel"))
    layer.kernel_loc.assign(tf.zeros_like(layer.kernel_loc))
    out = np.asarray(layer(_one_hot_images(cls.rank), training=True), np.float64)
    w = np.abs(out).reshape(scale.shape)
    by_hand = np.sum(stats.norm.logpdf(w, 0.0, scale) - stats.laplace.logpdf(w, 0.0, 0.3))
    np.testing.assert_allclose(float(layer.losses[0]), 0.5 * by_hand, rtol=1e-4)


def test_monte_carlo_kl_for_a_laplace_prior_averages_to_the_exact_kl():
    # KL[N(m, s) || Laplace(0, b)] = log(2b) - log(s sqrt(2 pi e)) + E|w| / b, with
    # E|w| the folded normal's mean.
    b = 0.3
    layer = _known_layer(Conv2DFlipout, prior=priors.Laplace(0.0, b), seed=2)
    locs, scales = zip(*(layer.posterior_params(n) for n in layer.posterior_names))
    m = np.concatenate([np.ravel(v) for v in locs]).astype(np.float64)
    s = np.concatenate([np.ravel(v) for v in scales]).astype(np.float64)
    mean_abs = s * np.sqrt(2 / np.pi) * np.exp(-(m**2) / (2 * s**2)) + m * (
        1 - 2 * stats.norm.cdf(-m / s))
    exact = np.sum(np.log(2 * b) - np.log(s * np.sqrt(2 * np.pi * np.e)) + mean_abs / b)

    @tf.function
    def kl(x):
        layer(x, training=True)
        return layer.losses[0]

    x = _images(2, 2, 2, 2)
    draws = np.array([float(kl(x)) for _ in range(300)])
    assert abs(draws.mean() - exact) < 4.5 * draws.std() / math.sqrt(len(draws))


# -- the weight noise: shared by the batch, or flipped per example --------------------------


@pytest.mark.parametrize("cls, per_example", [(Conv2DReparameterization, False),
                                               (Conv2DFlipout, True)])
def test_flipout_perturbs_each_example_alike_at_every_position(cls, per_example):
    layer = _known_layer(cls, seed=4)
    # 40 copies of one image whose positions all hold the same pixel.
    x = np.tile(np.array([0.7, -1.2], np.float32), (40, 5, 5, 1))
    out = np.asarray(layer(x, training=True))
    # The signs are per example and channel, not per position: a constant image stays
    # constant (its positions see the same window).
    np.testing.assert_allclose(out, np.broadcast_to(out[:, :1, :1], out.shape), atol=1e-5)
    spread = out[:, 0, 0].std(axis=0)
    if per_example:
        assert np.all(spread > 0.1)
    else:
        np.testing.assert_allclose(spread, 0.0, atol=1e-5)


@pytest.mark.parametrize("cls", _both(2))
def test_training_call_marginals_match_the_posterior(cls):
    # Each output is marginally `sum_window x * w + b` with w, b from the posterior:
    # mean x . loc + b_loc, variance x^2 . scale^2 + b_scale^2. Per-call statistics are
    # i.i.d. across calls, so their spread gives the Monte-Carlo standard error.
    layer = _known_layer(cls, seed=11)
    image = _images(2, 1, 2, 2, seed=3)
    kl, ks = (np.asarray(v, np.float64) for v in layer.posterior_params("kernel"))
    bl, bs = (np.asarray(v, np.float64) for v in layer.posterior_params("bias"))
    mean = np.einsum("hwc,hwcf->f", image[0], kl) + bl
    var = np.einsum("hwc,hwcf->f", image[0] ** 2, ks**2) + bs**2
    call = tf.function(lambda inputs: layer(inputs, training=True))
    batch = np.repeat(image, 64, axis=0)
    draws = np.stack([np.asarray(call(batch), np.float64)[:, 0, 0] for _ in range(300)])
    check_draw_moments(draws, mean, var, power=0.2)


def test_same_seed_gives_the_same_draws_and_successive_calls_differ():
    x = _images(2, 4, 3, 2)
    a, b, c = (_known_layer(Conv2DFlipout, seed=s) for s in (7, 7, 8))
    first_a, first_b, first_c = (np.asarray(layer(x, training=True)) for layer in (a, b, c))
    np.testing.assert_array_equal(first_a, first_b)
    assert not np.allclose(first_a, first_c)
    second_a, second_b = (np.asarray(layer(x, training=True)) for layer in (a, b))
    np.testing.assert_array_equal(second_a, second_b)
    assert not np.allclose(first_a, second_a)
    with weight_samples(3):
        tiled = np.concatenate([x] * 3)
        np.testing.assert_array_equal(np.asarray(a(tiled)), np.asarray(b(tiled)))


# -- vectorised sampling under weight_samples(S) -------------------------------------------------

VECTORISED_CASES = [
    (Conv1DFlipout, {"padding": "causal", "dilation_rate": 2}, "channels_last"),
    (Conv1DReparameterization, {"strides": 2}, "channels_first"),
    (Conv2DFlipout, {"padding": "same", "strides": 2}, "channels_last"),
    (Conv2DReparameterization, {"use_bias": False}, "channels_first"),
    (Conv3DFlipout, {"padding": "same"}, "channels_first"),
    (Conv3DReparameterization, {"dilation_rate": (1, 2, 1)}, "channels_last"),
]


@pytest.mark.parametrize("cls, kwargs, data_format", VECTORISED_CASES)
def test_vectorised_sampling_equals_a_loop_of_single_draws(cls, kwargs, data_format):
    layer = cls(3, 2, data_format=data_format, posterior_scale_init=0.3, seed=5,
                activation="tanh", **kwargs)
    x = _images(cls.rank, 4, 5, 2, data_format)
    n_samples = 3
    layer.build(x.shape)
    start = np.asarray(layer.seed_generator.state)
    with weight_samples(n_samples):
        out = np.asarray(layer(np.concatenate([x] * n_samples)))
    # The same draws again, from the same seed state, applied one at a time by Keras.
    layer.seed_generator.state.assign(start)
    draws = [layer.sample_posterior(layer.posterior_params(name), [n_samples])
             for name in layer.posterior_names]
    reference = getattr(keras.layers, f"Conv{cls.rank}D")(
        3, 2, data_format=data_format, activation="tanh", **kwargs)
    reference.build(x.shape)
    blocks = np.split(out, n_samples)
    for s in range(n_samples):
        reference.set_weights([d[s] for d in draws])
        np.testing.assert_allclose(blocks[s], np.asarray(reference(x)), atol=1e-5)
    assert not np.allclose(blocks[0], blocks[1])


def _convolutions_in_graph(function) -> int:
    graph = function.graph.as_graph_def()
    nodes = [*graph.node, *(n for f in graph.library.function for n in f.node_def)]
    return sum(node.op in ("Conv2D", "Conv3D") for node in nodes)


@pytest.mark.parametrize("cls", [Conv1DFlipout, Conv3DReparameterization])
def test_vectorised_sampling_is_one_graph_loop_not_a_convolution_per_draw(cls):
    layer = cls(2, 2, seed=0)
    shape = (None, *(4,) * cls.rank, 2)
    layer.build(shape)
    counts = []
    for n_samples in (2, 9):
        with weight_samples(n_samples):
            traced = tf.function(layer).get_concrete_function(tf.TensorSpec(shape, tf.float32))
        counts.append(_convolutions_in_graph(traced))
    assert counts == [1, 1]


# -- mixed precision ----------------------------------------------------------------------


@pytest.fixture
def mixed_float16():
    keras.mixed_precision.set_global_policy("mixed_float16")
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("cls", [Conv1DReparameterization, Conv2DFlipout, Conv3DFlipout])
def test_mixed_precision_keeps_variables_and_kl_in_float32_and_computes_in_float16(
        cls, mixed_float16):
    layer = cls(3, 2, padding="same", seed=0, posterior_scale_init=0.05)
    x = _images(cls.rank, 4, 4, 2)
    with tf.GradientTape() as tape:
        out = layer(x, training=True)
        loss = tf.reduce_sum(tf.cast(out, tf.float32)) + layer.losses[0]
    assert layer.compute_dtype == "float16" and out.dtype == "float16"
    assert layer.losses[0].dtype == "float32"
    assert {v.dtype for v in layer.variables if v.dtype != "int64"} == {"float32"}
    grads = tape.gradient(loss, layer.trainable_variables)
    assert all(g.dtype == "float32" and np.all(np.isfinite(np.asarray(g))) for g in grads)
    # The float16 product is the float32 one, to float16's precision.
    keras.mixed_precision.set_global_policy("float32")
    twin = cls.from_config({**layer.get_config(), "dtype": "float32"})
    twin.build(x.shape)
    twin.set_weights(layer.get_weights())
    for source, target in zip(layer.non_trainable_variables, twin.non_trainable_variables):
        target.assign(source)
    np.testing.assert_allclose(np.asarray(layer(x, training=True), np.float32),
                               np.asarray(twin(x, training=True)), atol=0.02, rtol=0.01)
    with weight_samples(2):
        assert layer(np.concatenate([x, x])).dtype == "float16"


# -- training: model.fit and tfbnn.train -------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    x = (data.images[:160, :, :, None] / 16.0).astype(np.float32)
    return x, data.target[:160].astype(np.float32)


def _conv_net(n_train):
    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((8, 8, 1)),
        Conv2DFlipout(8, 3, activation="relu", kl_weight=1 / n_train, seed=1),
        Conv2DReparameterization(8, 3, strides=2, kl_weight=1 / n_train, seed=2,
                                 activation="relu"),
        keras.layers.Flatten(),
        DenseFlipout(10, kl_weight=1 / n_train, seed=3),
    ])


def test_a_small_conv_net_learns_digits_with_model_fit_and_saves(digits, tmp_path):
    x, y = digits
    model = _conv_net(len(x))
    model.compile(keras.optimizers.Adam(0.01),
                  loss=likelihoods.NegativeLogLikelihood(likelihoods.Categorical(10)),
                  jit_compile=False)
    history = model.fit(x, y, epochs=6, batch_size=32, verbose=0).history["loss"]
    assert np.all(np.isfinite(history)) and history[-1] < history[0] - 1.0, history
    draws = np.asarray(sample_outputs(model, x, 5))  # (S, B, 10) logits
    assert draws.shape == (5, len(x), 10)
    accuracy = np.mean(np.argmax(draws.mean(axis=0), axis=1) == y)
    assert accuracy > 0.6, accuracy
    model.save(tmp_path / "conv.keras")
    loaded = keras.saving.load_model(tmp_path / "conv.keras", safe_mode=True)
    for source, target in zip(model.non_trainable_variables, loaded.non_trainable_variables,
                              strict=True):
        target.assign(source)
    np.testing.assert_array_equal(np.asarray(loaded(x[:8])), np.asarray(model(x[:8])))


def test_a_small_conv_net_trains_with_tfbnn_train_on_image_inputs(digits):
    x, y = digits
    model = _conv_net(len(x))
    # Without XLA: compiling would cost more than these few steps.
    history = tfbnn.train(model, likelihoods.Categorical(10), x, y[:, None], epochs=8,
                          batch_size=32, learning_rate=0.01, seed=0, verbose=0,
                          jit_compile=False)
    assert np.all(np.isfinite(history.loss))
    assert history.nll[-1] < 0.6 * history.nll[0], history.nll
