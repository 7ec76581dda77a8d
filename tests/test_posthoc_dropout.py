"""tfbnn.posthoc.MCDropout: dropout on at prediction in a trained Keras model, every other
layer in inference mode, vectorised draws with the right moments."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import tfbnn
from tfbnn import likelihoods
from tfbnn.posthoc import MCDropout

RATE = 0.3


@pytest.fixture(scope="module")
def model():
    """BatchNormalization (with moving statistics of its own), Dropout, a linear Dense
    layer and a learned noise: the predictive moments have a closed form."""
    rng = np.random.default_rng(0)
    norm = keras.layers.BatchNormalization()
    dense = keras.layers.Dense(1)
    net = keras.Sequential([keras.Input((4,)), norm, keras.layers.Dropout(RATE), dense,
                            tfbnn.layers.LearnedScale(initial_scale=0.2)])
    norm.set_weights([np.full(4, 1.5), np.full(4, 0.1), rng.normal(size=4), np.full(4, 4.0)])
    dense.set_weights([rng.normal(size=(4, 1)), np.array([0.3])])
    return net


def _normalised(model, x):
    """BatchNormalization on its moving statistics, by hand."""
    gamma, beta, mean, var = model.layers[0].get_weights()
    return gamma * (x - mean) / np.sqrt(var + model.layers[0].epsilon) + beta


def test_draws_have_the_closed_form_moments(model):
    x = np.random.default_rng(1).normal(size=(3, 4)).astype(np.float32)
    z = _normalised(model, x)
    w, b = model.layers[2].get_weights()
    mc = MCDropout(model, n_samples=20_000)
    predictive = mc.predictive(x, seed=0)
    # Inverted dropout keeps the mean; each unit adds w^2 z^2 rate / (1 - rate).
    expected_var = (w[:, 0] ** 2 * z**2).sum(axis=1) * RATE / (1 - RATE)
    np.testing.assert_allclose(predictive.mean, z @ w[:, 0] + b, atol=4 * np.sqrt(
        expected_var.max() / 20_000))
    np.testing.assert_allclose(predictive.epistemic_var, expected_var, rtol=0.05)
    np.testing.assert_allclose(predictive.aleatoric_var, 0.2**2, rtol=1e-5)


def test_rate_zero_is_the_model_in_inference_mode(model):
    x = np.random.default_rng(2).normal(size=(5, 4)).astype(np.float32)
    params = MCDropout(model, rate=0.0, n_samples=3).sample_params(x, seed=0).numpy()
    expected = model(x, training=False).numpy()
    np.testing.assert_allclose(params, np.broadcast_to(expected, params.shape), rtol=1e-6)
    # In training mode BatchNormalization would use the batch's statistics instead.
    assert not np.allclose(model(x, training=True).numpy(), expected, atol=0.1)


def test_draws_are_coherent_seeded_and_leave_the_model_alone(model):
    x = np.repeat(np.random.default_rng(3).normal(size=(1, 4)), 2, axis=0).astype(np.float32)
    weights = [w.copy() for w in model.get_weights()]
    mc = MCDropout(model, n_samples=50)
    draws = mc.sample_params(x, seed=4).numpy()
    # One network per draw: identical inputs get identical outputs within a draw.
    np.testing.assert_array_equal(draws[:, 0], draws[:, 1])
    assert np.unique(draws[:, 0, 0]).size > 5
    np.testing.assert_array_equal(draws, mc.sample_params(x, seed=4).numpy())
    assert not np.array_equal(mc.sample_params(x).numpy(), mc.sample_params(x).numpy())
    assert isinstance(mc.dropout_model.layers[1], tfbnn.layers.MCDropout)
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)


def test_conv_net_masks_every_feature_and_saves(tmp_path):
    inputs = keras.Input((5, 5, 2))
    h = keras.layers.Conv2D(3, 3, activation="relu")(inputs)
    h = keras.layers.Flatten()(keras.layers.Dropout(0.5)(h))
    model = keras.Model(inputs, keras.layers.Dense(4)(h))
    x = np.random.default_rng(5).normal(size=(6, 5, 5, 2)).astype(np.float32)
    mc = MCDropout(model, "categorical", n_samples=40, seed=1)
    predictive = mc.predictive(x, seed=0)
    assert predictive.probs.shape == (6, 4) and np.all(predictive.mutual_information > 0)
    # Under weight_samples a feature map gets one mask per draw, shared by the draw's
    # rows, over all its axes (as Dropout drops), not one per channel.
    with tfbnn.layers.weight_samples(2):
        dropped = tfbnn.layers.MCDropout(0.5, seed=0)(np.ones((4, 4, 4, 3), np.float32))
    dropped = dropped.numpy().reshape(2, 2, 4, 4, 3)
    np.testing.assert_array_equal(dropped[:, 0], dropped[:, 1])
    assert not np.array_equal(dropped[0, 0], dropped[1, 0])
    assert all(np.unique(dropped[0, 0, ..., c]).size == 2 for c in range(3))
    mc.save(tmp_path / "mc")
    loaded = tfbnn.posthoc.load(tmp_path / "mc")
    assert loaded.get_config() == mc.get_config() and loaded.likelihood == mc.likelihood
    np.testing.assert_array_equal(loaded.predictive(x, seed=2).probs,
                                  mc.predictive(x, seed=2).probs)


def test_what_does_not_fit_is_refused(model):
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="has no keras.layers.Dropout layer"):
        MCDropout(plain, likelihoods.Gaussian(scale=1.0))
    spatial = keras.Sequential([keras.Input((4, 2)), keras.layers.SpatialDropout1D(0.2),
                                keras.layers.Flatten(), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match=r"plain keras.layers.Dropout .*SpatialDropout1D"):
        MCDropout(spatial, likelihoods.Gaussian(scale=1.0))
    no_head = keras.Sequential([keras.Input((4,)), keras.layers.Dropout(0.1),
                                keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="emits 1 values per input.*LearnedScale"):
        MCDropout(no_head, "gaussian")
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\), got 1.0"):
        MCDropout(model, rate=1.0)
    with pytest.raises(ValueError, match="n_samples must be an integer >= 1"):
        MCDropout(model, n_samples=0)
