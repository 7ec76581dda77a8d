"""tfbnn layers under Keras mixed precision: float32 variables and KL, the policy's
compute dtype for the products with the inputs, and fits that match float32's."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfbnn import likelihoods
from tfbnn.layers import (
    DenseFlipout,
    DenseLocalReparameterization,
    DenseReparameterization,
    LearnedScale,
    MCDropout,
    sample_outputs,
)

POLICIES = ["mixed_float16", "mixed_bfloat16"]
N = 256


@pytest.fixture
def policy(request):
    keras.mixed_precision.set_global_policy(request.param)
    yield request.param
    keras.mixed_precision.set_global_policy("float32")


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, 3)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5]]) + 0.5 * rng.normal(size=(N, 1))).astype("float32")
    return x, y


def _model(cls):
    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((3,)),
        cls(16, activation="relu", kl_weight=1 / N, posterior_scale_init=0.05, seed=1),
        MCDropout(0.05, seed=2),
        cls(1, kl_weight=1 / N, posterior_scale_init=0.05, seed=3),
        LearnedScale(),
        # Keras' advice: the model's output in float32, for the loss.
        keras.layers.Activation("linear", dtype="float32"),
    ])


def _fit(model, epochs=40):
    model.compile(keras.optimizers.Adam(0.02),
                  loss=likelihoods.NegativeLogLikelihood(likelihoods.Gaussian(trainable=True)),
                  jit_compile=False)
    history = model.fit(*_data(), epochs=epochs, batch_size=32, verbose=0).history["loss"]
    assert np.all(np.isfinite(history))
    assert np.mean(history[-10:]) < 0.6 * history[0], history  # it learned
    return float(np.mean(history[-10:]))


_REFERENCE = {}


def _float32_loss(cls):
    """The float32 fit's loss, once per layer class."""
    if cls not in _REFERENCE:
        keras.mixed_precision.set_global_policy("float32")
        _REFERENCE[cls] = _fit(_model(cls))
    return _REFERENCE[cls]


# One layer per policy in the default run; the other combinations in the slow set.
@pytest.mark.parametrize("policy, cls", [
    pytest.param("mixed_float16", DenseReparameterization, marks=pytest.mark.slow),
    ("mixed_float16", DenseFlipout),
    pytest.param("mixed_float16", DenseLocalReparameterization, marks=pytest.mark.slow),
    pytest.param("mixed_bfloat16", DenseFlipout, marks=pytest.mark.slow),
    ("mixed_bfloat16", DenseLocalReparameterization),
], indirect=["policy"])
def test_mixed_precision_fit_reaches_the_float32_loss(policy, cls):
    mixed = _model(cls)
    mixed_loss = _fit(mixed)
    reference = _float32_loss(cls)
    keras.mixed_precision.set_global_policy(policy)
    assert abs(mixed_loss - reference) < 0.05 * abs(reference), (mixed_loss, reference)

    layer = mixed.layers[0]
    assert layer.compute_dtype == policy.removeprefix("mixed_")
    assert {v.dtype for v in mixed.variables if v.dtype != "int64"} == {"float32"}
    x = _data()[0][:4]
    hidden = layer(x, training=True)
    assert hidden.dtype == layer.compute_dtype
    assert layer.losses[0].dtype == "float32"  # the KL term
    assert mixed(x).dtype == "float32"
    assert sample_outputs(mixed, x, 5).shape == (5, 4, 2)


@pytest.mark.parametrize("policy", POLICIES, indirect=True)
def test_mixed_precision_model_saves_and_loads(policy, tmp_path):
    model = _model(DenseFlipout)
    x = _data()[0][:8]
    model(x)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert loaded.layers[0].compute_dtype == model.layers[0].compute_dtype
    for source, target in zip(model.weights, loaded.weights, strict=True):
        assert source.dtype == target.dtype == "float32"
        np.testing.assert_array_equal(np.asarray(source), np.asarray(target))
    for source, target in zip(model.non_trainable_variables, loaded.non_trainable_variables,
                              strict=True):
        target.assign(source)  # the same seed states: the same draws
    np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(loaded(x)))
    assert not np.array_equal(np.asarray(model(x)), np.asarray(model(x)))  # draws vary


def test_local_reparameterization_survives_zero_inputs_in_float16():
    # A zero input row gives zero pre-activation variance: the floor keeps the
    # square root's gradient finite where 1e-12 would underflow in float16.
    layer = DenseLocalReparameterization(2, seed=0, dtype="mixed_float16")
    x = tf.zeros((3, 4))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.cast(layer(x), tf.float32))
    grads = tape.gradient(loss, layer.trainable_variables)
    assert all(np.all(np.isfinite(np.asarray(g))) for g in grads)
