"""tfbnn.layers.MCDropout and tfbnn.inference.mc_dropout: the layer contract, coherent
masks under `weight_samples`, the paper's weight decay, wider in data gaps, behind the
estimators and persistence, and strict about its options."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from layer_checks import check_layer

import tfbnn
from tfbnn import likelihoods
from tfbnn.datasets import gap_data
from tfbnn.demo import gap_ratio
from tfbnn.inference import INFERENCE, FitSettings
from tfbnn.inference.mc_dropout import MCDropoutInference
from tfbnn.layers import MCDropout, weight_samples

# -- the layer ------------------------------------------------------------------------------


def test_mc_dropout_passes_the_layer_checks(tmp_path):
    check_layer(MCDropout, {"rate": 0.3, "seed": 1}, (6, 5), expected_output_shape=(6, 5),
                expected_num_trainable_weights=0, expected_num_non_trainable_variables=1,
                stochastic=True, tmp_path=tmp_path)


def test_dropout_stays_on_at_prediction_and_scales_survivors():
    layer = MCDropout(0.5, seed=0)
    x = np.ones((200, 50), np.float32)
    out = np.asarray(layer(x, training=False))
    assert set(np.unique(out)) == {0.0, 2.0}
    assert abs((out == 0).mean() - 0.5) < 0.02
    np.testing.assert_array_equal(np.asarray(MCDropout(0.0)(x)), x)


def test_one_mask_per_sample_block_under_weight_samples():
    layer = MCDropout(0.5, seed=0)
    n_samples, batch = 4, 3
    x = np.ones((n_samples * batch, 20), np.float32)
    with weight_samples(n_samples):
        out = np.asarray(layer(x)).reshape(n_samples, batch, 20)
    # Every row of a block shares its mask; blocks differ.
    np.testing.assert_array_equal(out, np.broadcast_to(out[:, :1], out.shape))
    assert len({tuple(block[0]) for block in out}) == n_samples


def test_saved_model_loads_with_safe_mode(tmp_path):
    model = keras.Sequential([keras.Input((3,)), MCDropout(0.2, seed=4), keras.layers.Dense(2)])
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert isinstance(loaded.layers[0], MCDropout)
    assert loaded.layers[0].get_config() == model.layers[0].get_config()


@pytest.mark.parametrize("rate", [-0.1, 1.0, float("nan")])
def test_bad_rates_are_refused(rate):
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\), got"):
        MCDropout(rate)


# -- the inference method ------------------------------------------------------------------


def test_mc_dropout_is_registered():
    assert INFERENCE.get("mc_dropout") is MCDropoutInference


def test_weight_decay_is_the_papers():
    method = MCDropoutInference(dropout_rate=0.1, length_scale=0.5, jit_compile=False)
    kernel, bias = method.weight_decay(n_train=50)
    assert kernel == pytest.approx(0.9 * 0.25 / 100) and bias == pytest.approx(0.25 / 100)
    x = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)
    method.fit(x, x[:, :1], likelihoods.Gaussian(trainable=True),
               FitSettings(hidden_units=(4,), epochs=1, batch_size=5, seed=0))
    dense = [layer for layer in method.model.layers if isinstance(layer, keras.layers.Dense)]
    expected = sum(kernel * np.sum(d.kernel.numpy() ** 2) + bias * np.sum(d.bias.numpy() ** 2)
                   for d in dense)
    method.model(x, training=True)
    assert float(sum(method.model.losses)) == pytest.approx(expected, rel=1e-5)
    assert sum(isinstance(layer, MCDropout) for layer in method.model.layers) == 2


@pytest.fixture(scope="module")
def gap_dropout():
    x, y = gap_data(64)
    model = tfbnn.BayesianRegressor(
        hidden_units=(32, 32), inference="mc_dropout", inference_options={"input_dropout": False},
        epochs=500, learning_rate=5e-3, random_state=0).fit(x, y)
    return x, y, model


def test_epistemic_variance_is_larger_in_the_gap(gap_dropout):
    x, y, model = gap_dropout
    assert gap_ratio(model, x) > 1.5
    assert model.score(x, y) > 0.9


def test_without_a_random_state_every_prediction_draws_fresh_masks(gap_dropout):
    x, _, model = gap_dropout
    np.testing.assert_array_equal(model.predict(x[:5]), model.predict(x[:5]))
    model.set_params(random_state=None)
    try:
        assert not np.allclose(model.predict(x[:5]), model.predict(x[:5]))
    finally:
        model.set_params(random_state=0)


def test_classifier_on_breast_cancer(tmp_path):
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    model = tfbnn.BayesianClassifier(
        hidden_units=(16,), inference="mc_dropout",
        inference_options={"dropout_rate": 0.1, "jit_compile": False},
        epochs=5, learning_rate=1e-2, n_samples=20, random_state=0).fit(x, y)
    assert isinstance(model.likelihood_, likelihoods.Bernoulli)
    assert model.score(x, y) > 0.9
    model.save(tmp_path / "cancer")
    np.testing.assert_allclose(tfbnn.load(tmp_path / "cancer").predict_proba(x),
                               model.predict_proba(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("options, message", [
    ({"dropout_rate": 0.0}, r"dropout_rate must be strictly between 0 and 1, got 0.0"),
    ({"dropout_rate": 1.5}, r"dropout_rate must be strictly between 0 and 1, got 1.5"),
    ({"length_scale": -1}, r"length_scale must be a positive finite number, got -1"),
    ({"length_scale": "big"}, r"length_scale must be a number, got 'big'"),
])
def test_bad_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        tfbnn.BayesianRegressor(inference="mc_dropout", inference_options=options).fit(
            np.zeros((4, 1)), np.arange(4.0))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_gap_variance_holds_across_seeds(seed):
    x, y = gap_data()
    model = tfbnn.BayesianRegressor(
        hidden_units=(50, 50), inference="mc_dropout",
        inference_options={"input_dropout": False}, epochs=100, random_state=seed).fit(x, y)
    assert gap_ratio(model, x) > 1.0
