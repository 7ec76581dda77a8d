"""BayesianRegressor / BayesianClassifier with the user's own architecture (`network=fn`):
images and sequences through every inference method, saving, cloning, refusals."""

from __future__ import annotations

import random

import keras
import numpy as np
import pytest
import sklearn.base

import tfbnn.layers as bnn_layers
from tfbnn import models
from tfbnn.convert import CONVERSIONS
from tfbnn.estimators import BayesianClassifier, BayesianRegressor
from tfbnn.inference import FitSettings
from tfbnn.likelihoods import Gaussian
from tfbnn.models import UnsavedNetwork
from tfbnn.persistence import load

SHAPE = (6, 6, 1)
N = 48
RNG = np.random.default_rng(0)
IMAGES = RNG.normal(size=(N, *SHAPE)) * 3.0 + 1.0  # standardised per channel by the estimator
TARGET = IMAGES[:, 1:4, 1:4, 0].mean(axis=(1, 2))
LABELS = np.where(TARGET > np.median(TARGET), "bright", "dark")
FAST = {"epochs": 3, "batch_size": 16, "n_samples": 8, "random_state": 0,
        "learning_rate": 1e-2}
#: Options per method that keep the fits tiny; no XLA (compiling costs more than it saves).
METHODS = {
    "vi": {},
    "mc_dropout": {},
    "ensemble": {"n_members": 2, "threads": 1},
    "swag": {"n_models": 1, "swag_epochs": 2, "max_rank": 2},
    "sgmcmc": {"n_cycles": 1, "samples_per_cycle": 2},
}


def conv_net(input_shape, n_outputs):
    return keras.Sequential([
        keras.Input(input_shape), keras.layers.Conv2D(2, 3, activation="relu", name="conv"),
        keras.layers.Flatten(), keras.layers.Dropout(0.1, name="drop"),
        keras.layers.Dense(n_outputs, name="head")])


def estimator(cls, inference, **params):
    options = {**METHODS[inference], "jit_compile": False}
    return cls(network=conv_net, inference=inference, inference_options=options,
               **{**FAST, **params})


@pytest.fixture(scope="module")
def vi_regressor():
    return estimator(BayesianRegressor, "vi").fit(IMAGES, TARGET)


# -- every method ------------------------------------------------------------------------------


@pytest.mark.parametrize("inference", sorted(METHODS))
def test_regressor_with_a_conv_network(inference, vi_regressor):
    model = vi_regressor if inference == "vi" else estimator(
        BayesianRegressor, inference).fit(IMAGES, TARGET)
    mean, std = model.predict(IMAGES[:5], return_std=True)
    assert mean.shape == std.shape == (5,) and np.isfinite(mean).all() and (std > 0).all()
    dist = model.predict_distribution(IMAGES[:5])
    assert dist.samples.shape[1:] == (5,)
    assert model.input_shape_ == SHAPE and model.x_mean_.shape == (1,)


@pytest.mark.parametrize("inference", ["vi", "mc_dropout", "ensemble", "swag"])
def test_classifier_with_a_conv_network(inference):
    model = estimator(BayesianClassifier, inference).fit(IMAGES, LABELS)
    probs = model.predict_proba(IMAGES[:5])
    assert probs.shape == (5, 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert set(model.predict(IMAGES[:5])) <= {"bright", "dark"}


def test_vi_converts_the_network_with_the_estimators_settings(vi_regressor):
    network = vi_regressor.inference_.model
    kinds = {layer.name: type(layer).__name__ for layer in network.layers}
    # Dense layers take the default estimator, convolutions (which have no local
    # reparameterization) flipout once their row is in tfbnn.convert.CONVERSIONS.
    assert kinds["head"] == "DenseLocalReparameterization"
    assert kinds["conv"] == ("Conv2DFlipout" if keras.layers.Conv2D in CONVERSIONS else "Conv2D")
    assert kinds["drop"] == "Dropout" and type(network.layers[-1]).__name__ == "LearnedScale"
    head = network.get_layer("head")
    assert head.kl_weight == pytest.approx(1 / N) and head.posterior_scale_init == 1e-3


def test_mc_dropout_samples_the_networks_own_dropout():
    model = estimator(BayesianRegressor, "mc_dropout").fit(IMAGES, TARGET)
    network = model.inference_.model
    drop = network.get_layer("drop")
    assert type(drop) is bnn_layers.MCDropout and drop.rate == 0.1
    # The method's weight decay with the network's dropout rate.
    kernel, bias = model.inference_.weight_decay(N, 0.1)
    assert network.get_layer("head").kernel_regularizer.l2 == pytest.approx(kernel)
    assert network.get_layer("conv").bias_regularizer.l2 == pytest.approx(bias)


def test_mc_dropout_needs_dropout_layers():
    def plain(input_shape, n_outputs):
        return keras.Sequential([keras.Input(input_shape), keras.layers.Flatten(),
                                 keras.layers.Dense(n_outputs)])

    with pytest.raises(ValueError, match="has no Dropout layer: add keras.layers.Dropout"):
        BayesianRegressor(network=plain, inference="mc_dropout", **FAST).fit(IMAGES, TARGET)


def test_sequences_and_a_functional_network():
    def recurrent(input_shape, n_outputs):
        inputs = keras.Input(input_shape)
        h = keras.layers.LSTM(3, name="lstm")(inputs)
        return keras.Model(inputs, keras.layers.Dense(n_outputs)(h))

    x = RNG.normal(size=(N, 5, 2))
    model = BayesianRegressor(network=recurrent, inference="vi", **FAST,
                              inference_options={"jit_compile": False}).fit(x, x[:, :, 0].sum(1))
    assert model.predict(x[:4]).shape == (4,) and model.x_mean_.shape == (2,)
    assert type(model.inference_.model.get_layer("lstm")) is bnn_layers.LSTMFlipout


def test_ensemble_members_start_apart_and_the_same_seed_repeats():
    a = estimator(BayesianRegressor, "ensemble", epochs=1).fit(IMAGES, TARGET)
    b = estimator(BayesianRegressor, "ensemble", epochs=1).fit(IMAGES, TARGET)
    thetas = a.inference_.thetas_
    assert not np.allclose(thetas[0], thetas[1])
    np.testing.assert_array_equal(thetas, b.inference_.thetas_)


# -- saving, cloning, calibration --------------------------------------------------------------


@pytest.mark.parametrize("inference", ["vi", "ensemble"])
def test_save_load_round_trip_predicts_the_same(inference, vi_regressor, tmp_path):
    model = vi_regressor if inference == "vi" else estimator(
        BayesianRegressor, inference).fit(IMAGES, TARGET)
    model.calibrate(IMAGES[:24], TARGET[:24])
    model.save(tmp_path / "model")
    loaded = load(tmp_path / "model")
    assert loaded.network == UnsavedNetwork(f"{__name__}.conv_net")
    assert loaded.input_shape_ == SHAPE
    for calibrated in (False, True):
        np.testing.assert_array_equal(
            loaded.predict_distribution(IMAGES[:6], calibrated=calibrated).mean,
            model.predict_distribution(IMAGES[:6], calibrated=calibrated).mean)
    assert type(loaded.calibrator_) is type(model.calibrator_)
    with pytest.raises(ValueError, match=r"network function '.*conv_net' was not saved"):
        loaded.fit(IMAGES, TARGET)
    loaded.set_params(network=conv_net)  # and with the function back, it fits
    assert loaded.fit(IMAGES, TARGET).predict(IMAGES[:2]).shape == (2,)


def test_get_params_set_params_and_clone_keep_the_function(vi_regressor):
    assert vi_regressor.get_params()["network"] is conv_net
    twin = sklearn.base.clone(vi_regressor)
    assert twin.network is conv_net and not hasattr(twin, "inference_")
    assert twin.set_params(network=None).network is None


# -- refusals --------------------------------------------------------------------------------


def test_hmc_refuses_a_big_network_before_any_work():
    def wide(input_shape, n_outputs):
        return keras.Sequential([keras.Input(input_shape), keras.layers.Flatten(),
                                 keras.layers.Dense(300, activation="relu"),
                                 keras.layers.Dense(n_outputs)])

    model = BayesianRegressor(network=wide, inference="hmc", **FAST)
    with pytest.raises(ValueError, match=r"samples all 11\d\d\d weights .* max_weights=10000.*"
                                         r"'sgmcmc'.*'laplace'.*'ensemble'"):
        model.fit(IMAGES, TARGET)


def test_images_need_a_network():
    with pytest.raises(ValueError, match="Found array with dim 4"):
        BayesianRegressor(**FAST).fit(IMAGES, TARGET)


def test_inputs_must_have_the_fitted_shape(vi_regressor):
    with pytest.raises(ValueError, match=r"examples of shape \(6, 5, 1\); the model was fitted "
                                         r"on examples of shape \(6, 6, 1\)"):
        vi_regressor.predict(IMAGES[:, :, :5])


def test_network_that_does_not_fit_the_likelihood_is_refused():
    def ten_outputs(input_shape, n_outputs):
        return keras.Sequential([keras.Input(input_shape), keras.layers.Flatten(),
                                 keras.layers.Dense(10)])

    with pytest.raises(ValueError, match=r"output \(None, 10\); it must end in \(None, 1\)"):
        BayesianRegressor(network=ten_outputs, **FAST).fit(IMAGES, TARGET)
    def softmax(input_shape, n_outputs):
        return keras.Sequential([keras.Input(input_shape), keras.layers.Flatten(),
                                 keras.layers.Dense(n_outputs, activation="softmax")])

    with pytest.raises(ValueError, match=r"ending in activation 'softmax'.*must be linear"):
        BayesianClassifier(network=softmax, **FAST).fit(IMAGES, LABELS)
    with pytest.raises(TypeError, match="must return a keras.Model, got str"):
        BayesianRegressor(network=lambda shape, n: "net", **FAST).fit(IMAGES, TARGET)
    with pytest.raises(ValueError, match="network must be None .* or a function"):
        BayesianRegressor(network="resnet", **FAST).fit(IMAGES, TARGET)


def test_user_network_seeds_pythons_random_and_restores_it():
    random.seed(5)
    expected = random.random()
    random.seed(5)
    a = models.user_network(conv_net, SHAPE, 1, seed=3)
    b = models.user_network(conv_net, SHAPE, 1, seed=3)
    assert random.random() == expected
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


@pytest.mark.parametrize("network", [None, conv_net], ids=["mlp", "network"])
def test_models_network_puts_weight_decay_on_every_weight(network):
    # What the Laplace approximation trains: the MAP under a Normal prior.
    likelihood = Gaussian(trainable=True)
    settings = FitSettings(hidden_units=(4,), network=network)
    shape = SHAPE if network else (3,)
    model = models.network(shape, 1, likelihood, settings, seed=0, weight_decay=0.25)
    weighted = [layer for layer in model.layers if hasattr(layer, "kernel")]
    assert weighted and all(layer.kernel_regularizer.l2 == pytest.approx(0.25)
                            and layer.bias_regularizer.l2 == pytest.approx(0.25)
                            for layer in weighted)
    assert type(model.layers[-1]).__name__ == "LearnedScale"
    with pytest.raises(ValueError, match=r"tfbnn's MLP takes rows of features.*\(6, 6, 1\)"):
        models.network(SHAPE, 1, likelihood, FitSettings(), seed=0)


def test_last_layer_laplace_on_a_conv_network():
    model = BayesianRegressor(network=conv_net, inference="laplace", **FAST,
                              inference_options={"jit_compile": False}).fit(IMAGES, TARGET)
    mean, std = model.predict(IMAGES[:5], return_std=True)
    assert mean.shape == (5,) and (std > 0).all()
    assert model.inference_.model.get_layer("conv").kernel.shape == (3, 3, 1, 2)
