"""tfbnn.bayesianize: trained Keras models made Bayesian, layer by layer (MOPED included)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfbnn.layers as bnn_layers
from tfbnn import priors
from tfbnn.convert import (
    CONVERSIONS,
    MOPED_MIN_SCALE,
    bayesianize,
    convertible_layers,
    rebuild,
    with_weight_decay,
)
from tfbnn.convert.bayesian import keras_weight
from tfbnn.convert.dropout import with_mc_dropout

RNG = np.random.default_rng(0)
X = RNG.normal(size=(128, 3)).astype(np.float32)
Y = (np.sin(X @ np.array([1.0, -2.0, 0.5])) + X[:, :1] ** 2)[:, None].astype(np.float32)


@keras.saving.register_keras_serializable(package="tfbnn_tests")
class Scale(keras.layers.Layer):
    """A custom layer with a weight of its own: must be kept, weights and all."""

    def build(self, input_shape):
        self.factor = self.add_weight(name="factor", shape=(input_shape[-1],),
                                      initializer=keras.initializers.Constant(1.5))

    def call(self, inputs):
        return inputs * self.factor


def trained(model, epochs=10):
    model.compile(keras.optimizers.Adam(1e-2), "mse", jit_compile=False)
    model.fit(X, Y, epochs=epochs, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="module")
def sequential():
    keras.utils.set_random_seed(0)
    return trained(keras.Sequential([
        keras.Input((3,)), keras.layers.Dense(16, activation="tanh", name="hidden"),
        keras.layers.Dense(8, activation="tanh", name="hidden2"), keras.layers.Dense(1, name="out"),
    ], name="mlp"))


@pytest.fixture(scope="module")
def functional():
    """A functional net with normalisation, dropout and a custom layer between dense layers."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((3,), name="features")
    h = keras.layers.Dense(16, activation="relu", name="hidden")(inputs)
    h = keras.layers.BatchNormalization(name="norm")(h)
    h = keras.layers.Dropout(0.2, name="drop")(h)
    h = Scale(name="scale")(h)
    outputs = keras.layers.Dense(1, name="out")(h)
    return trained(keras.Model(inputs, outputs, name="net"))


def predictive_mean(model, x, n_samples=2000):
    return bnn_layers.sample_outputs(model, x, n_samples).numpy().mean(axis=0)


def kl_loss(model):
    model(X[:4])
    return float(sum(model.losses))


# -- architecture and weights ------------------------------------------------------------


@pytest.mark.parametrize("estimator, cls", [
    ("flipout", bnn_layers.DenseFlipout),
    ("reparameterization", bnn_layers.DenseReparameterization),
    ("local_reparameterization", bnn_layers.DenseLocalReparameterization)])
def test_every_dense_layer_becomes_the_estimators_layer_with_the_weights_as_means(
        sequential, estimator, cls):
    model = bayesianize(sequential, estimator=estimator, kl_weight=1 / 128, seed=3)
    assert model is not sequential and len(model.layers) == len(sequential.layers)
    for old, new in zip(sequential.layers, model.layers):
        assert type(new) is cls and new.name == old.name
        assert new.units == old.units and new.activation is old.activation
        np.testing.assert_array_equal(new.kernel_loc.numpy(), old.kernel.numpy())
        np.testing.assert_array_equal(new.bias_loc.numpy(), old.bias.numpy())
        np.testing.assert_allclose(new.posterior_params("kernel")[1].numpy(), 1e-3, rtol=1e-4)
        assert new.kl_weight == 1 / 128
    assert [layer.seed for layer in model.layers] == [3, 4, 5]
    assert model.output_shape == sequential.output_shape
    # The original is untouched.
    assert all(type(layer) is keras.layers.Dense for layer in sequential.layers)


def test_moped_gives_scales_from_the_weights_and_keeps_the_trained_function(sequential):
    delta = 0.05
    model = bayesianize(sequential, moped_delta=delta, seed=0)
    for old, new in zip(sequential.layers, model.layers):
        for name in ("kernel", "bias"):
            weight = keras_weight(old, name)
            expected = np.maximum(delta * np.abs(weight), MOPED_MIN_SCALE)
            np.testing.assert_allclose(new.posterior_params(name)[1].numpy(), expected,
                                       rtol=1e-3, atol=1e-7)
    trained_output = sequential(X[:16]).numpy()
    error = np.abs(predictive_mean(model, X[:16]) - trained_output).max()
    assert error < 0.03 * trained_output.std()
    # The draws do differ: the posterior is not a point mass.
    assert bnn_layers.sample_outputs(model, X[:16], 50).numpy().std(axis=0).mean() > 1e-3


def test_functional_model_keeps_its_other_layers_and_their_weights(functional):
    model = bayesianize(functional, moped_delta=0.05, seed=0)
    assert [type(layer).__name__ for layer in model.layers] == [
        "InputLayer", "DenseFlipout", "BatchNormalization", "Dropout", "Scale", "DenseFlipout"]
    assert model.input_shape == functional.input_shape and model.inputs[0].name == "features"
    for name in ("norm", "scale"):
        for new, old in zip(model.get_layer(name).weights, functional.get_layer(name).weights):
            np.testing.assert_array_equal(new.numpy(), old.numpy())
    assert model.get_layer("drop").rate == 0.2
    trained_output = functional(X[:16]).numpy()
    error = np.abs(predictive_mean(model, X[:16]) - trained_output).max()
    assert error < 0.05 * trained_output.std()


def test_shared_layers_stay_shared_and_nested_models_are_converted():
    shared = keras.layers.Dense(4, name="shared")
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="inner_dense")],
                             name="inner")
    a, b = keras.Input((3,), name="a"), keras.Input((3,), name="b")
    model = keras.Model([a, b], inner(keras.layers.Add()([shared(a), shared(b)])))
    converted = bayesianize(model)
    assert [layer.name for layer in convertible_layers(converted)] == []
    new_shared = converted.get_layer("shared")
    assert type(new_shared) is bnn_layers.DenseFlipout
    assert sum(layer is new_shared for layer in converted.layers) == 1
    assert type(converted.get_layer("inner").get_layer("inner_dense")) is bnn_layers.DenseFlipout
    np.testing.assert_array_equal(new_shared.kernel_loc.numpy(), shared.kernel.numpy())
    assert tuple(converted([X[:5], X[5:10]]).shape) == (5, 2)


# -- which layers ----------------------------------------------------------------------------


def test_layers_by_name_and_last_k(sequential):
    by_name = bayesianize(sequential, ["hidden", "out"])
    assert [type(layer).__name__ for layer in by_name.layers] == [
        "DenseFlipout", "Dense", "DenseFlipout"]
    np.testing.assert_array_equal(by_name.get_layer("hidden2").kernel.numpy(),
                                  sequential.get_layer("hidden2").kernel.numpy())
    last = bayesianize(sequential, 1)
    assert [type(layer).__name__ for layer in last.layers] == ["Dense", "Dense", "DenseFlipout"]
    assert [layer.name for layer in convertible_layers(last)] == ["hidden", "hidden2"]


def test_an_estimator_per_layer_class(sequential):
    model = bayesianize(sequential, estimator={"Dense": "local_reparameterization"})
    assert all(type(layer) is bnn_layers.DenseLocalReparameterization for layer in model.layers)


# -- the prior -----------------------------------------------------------------------------


def test_prior_from_weights_centres_the_kl_on_the_trained_weights(sequential):
    prior = priors.Normal(0.0, 0.5)
    centred = bayesianize(sequential, prior=prior, moped_delta=0.1, prior_from_weights=True)
    plain = bayesianize(sequential, prior=prior, moped_delta=0.1)
    weights = np.concatenate([w.ravel() for w in sequential.get_weights()])
    scales = np.maximum(0.1 * np.abs(weights), MOPED_MIN_SCALE)
    # KL[N(w, s) || N(w, s0)] = sum log(s0 / s) + s^2 / (2 s0^2) - 1/2: no mean term.
    expected = np.sum(np.log(0.5 / scales) + scales**2 / (2 * 0.25) - 0.5)
    assert kl_loss(centred) == pytest.approx(expected, rel=1e-4)
    # The zero-mean prior adds sum w^2 / (2 s0^2).
    assert kl_loss(plain) == pytest.approx(expected + np.sum(weights**2) / 0.5, rel=1e-4)
    assert all(not layer.prior_centered for layer in plain.layers)
    for old, new in zip(sequential.layers, centred.layers):
        np.testing.assert_array_equal(new.kernel_prior_loc.numpy(), old.kernel.numpy())


# -- an ordinary Keras model ------------------------------------------------------------------


def test_converted_model_saves_loads_and_trains(functional, tmp_path):
    model = bayesianize(functional, moped_delta=0.1, prior_from_weights=True, kl_weight=0.01,
                        seed=0)
    path = tmp_path / "bnn.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    for new, old in zip(loaded.weights, model.weights):
        np.testing.assert_array_equal(new.numpy(), old.numpy())
    assert loaded.get_layer("out").kl_weight == 0.01 and loaded.get_layer("out").prior_centered
    assert kl_loss(loaded) == pytest.approx(kl_loss(model), rel=1e-6)
    loaded.compile(keras.optimizers.Adam(1e-3), "mse", jit_compile=False)
    history = loaded.fit(X, Y, epochs=1, batch_size=64, verbose=0)
    assert np.isfinite(history.history["loss"][0])


# -- errors -----------------------------------------------------------------------------------


def test_refusals(sequential):
    with pytest.raises(ValueError, match=r"Unknown layer name 'nope'.*\['hidden', 'hidden2', "):
        bayesianize(sequential, ["nope"])
    with pytest.raises(ValueError, match=r"layers=4 asks for the last 4 .* has 3"):
        bayesianize(sequential, 4)
    with pytest.raises(ValueError, match=r"layers=0"):
        bayesianize(sequential, 0)
    with pytest.raises(TypeError, match="layers must be"):
        bayesianize(sequential, "hidden")
    unbuilt = keras.Sequential([keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="is not built: give it an Input"):
        bayesianize(unbuilt)
    nothing = keras.Sequential([keras.Input((3,)), keras.layers.BatchNormalization(name="bn")])
    with pytest.raises(ValueError, match=r"no layer bayesianize can convert .*\['Dense'"):
        bayesianize(nothing)
    with pytest.raises(ValueError, match=r"Layer 'drop' is a Dropout, which bayesianize cannot"):
        bayesianize(keras.Sequential([keras.Input((3,)), keras.layers.Dropout(0.1, name="drop"),
                                      keras.layers.Dense(1)]), ["drop"])
    with pytest.raises(ValueError, match=r"Unknown estimator='dropout'"):
        bayesianize(sequential, estimator="dropout")
    with pytest.raises(ValueError, match=r"estimator has no entry for layer 'hidden'"):
        bayesianize(sequential, estimator={"Conv2D": "flipout"})
    with pytest.raises(ValueError, match="moped_delta must be a positive"):
        bayesianize(sequential, moped_delta=0.0)
    with pytest.raises(TypeError, match="must be a keras.Model"):
        bayesianize(sequential.layers[0])


def test_subclassed_models_are_refused():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(1)

        def call(self, x):
            return self.dense(x)

    net = Net()
    net(X[:2])
    with pytest.raises(TypeError, match="subclassed Net.*Sequential or functional"):
        bayesianize(net)


def test_options_the_variational_layer_cannot_honour(sequential):
    constrained = keras.Sequential([keras.Input((3,)), keras.layers.Dense(
        2, kernel_constraint="non_neg", name="positive")])
    with pytest.raises(ValueError, match=r"Layer 'positive' \(Dense\) has kernel_constraint="):
        bayesianize(constrained)
    lora = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="adapted")])
    lora.layers[0].enable_lora(1)
    with pytest.raises(ValueError, match=r"Layer 'adapted' \(Dense\) has lora_rank=1"):
        bayesianize(lora)
    decayed = keras.Sequential([keras.Input((3,)), keras.layers.Dense(
        2, kernel_regularizer="l2", name="decayed")])
    with pytest.warns(UserWarning, match="'decayed': kernel_regularizer dropped") as record:
        bayesianize(decayed)
    assert record[0].filename == __file__  # points at the caller


# -- rebuilding --------------------------------------------------------------------------------


def test_weight_decay_copy_has_the_same_weights_and_an_l2_loss(functional):
    decayed = with_weight_decay(functional, 0.1, 0.01)
    for new, old in zip(decayed.weights, functional.weights):
        np.testing.assert_array_equal(new.numpy(), old.numpy())
    decayed(X[:4], training=True)
    kernels = sum(np.sum(layer.kernel.numpy() ** 2) for layer in functional.layers
                  if isinstance(layer, keras.layers.Dense))
    others = sum(np.sum(v.numpy() ** 2) for v in functional.trainable_weights) - kernels
    # The custom layer has no regularizer option, so its weight is not decayed.
    others -= np.sum(functional.get_layer("scale").factor.numpy() ** 2)
    assert float(sum(decayed.losses)) == pytest.approx(0.1 * kernels + 0.01 * others, rel=1e-5)


def test_mc_dropout_copy_swaps_dropout_and_keeps_everything_else(functional):
    copy = with_mc_dropout(functional, rate=0.3, seed=7, weight_decay=(0.1, 0.01))
    drop = copy.get_layer("drop")
    assert type(drop) is bnn_layers.MCDropout and (drop.rate, drop.seed) == (0.3, 7)
    for name in ("hidden", "norm", "scale", "out"):
        for new, old in zip(copy.get_layer(name).weights, functional.get_layer(name).weights):
            np.testing.assert_array_equal(new.numpy(), old.numpy())
    assert copy.get_layer("out").kernel_regularizer.l2 == pytest.approx(0.1)
    assert copy.get_layer("norm").gamma_regularizer.l2 == pytest.approx(0.01)
    # Dropout on at prediction: two calls differ.
    assert not np.allclose(copy(X[:8], training=False), copy(X[:8], training=False))


def test_rebuild_reports_a_custom_layer_without_a_full_config():
    class Offset(keras.layers.Layer):  # an array argument: Keras cannot record it
        def __init__(self, offset, **kwargs):
            super().__init__(**kwargs)
            self.offset = offset

        def call(self, x):
            return x + self.offset

    model = keras.Sequential([keras.Input((3,)), Offset(np.ones(3, "float32"), name="offset")])
    with pytest.raises(ValueError, match=r"'offset' \(Offset\) cannot be rebuilt from its config"):
        rebuild(model, lambda layer: None)


# -- convolutional and recurrent layers (rows added with tfbnn.layers.conv / .recurrent) ----


def conv_or_recurrent_models():
    """(Keras layer, input shape, the tfbnn module that brings its variational layers)."""
    return [
        (lambda: keras.layers.Conv1D(3, 3, activation="relu"), (10, 2), "tfbnn.layers.conv"),
        (lambda: keras.layers.Conv2D(3, 3, padding="same"), (6, 6, 1), "tfbnn.layers.conv"),
        (lambda: keras.layers.Conv3D(2, 2), (4, 4, 4, 1), "tfbnn.layers.conv"),
        (lambda: keras.layers.LSTM(4), (5, 2), "tfbnn.layers.recurrent"),
        (lambda: keras.layers.GRU(4, return_sequences=True), (5, 2), "tfbnn.layers.recurrent"),
    ]


@pytest.mark.parametrize("make_layer, input_shape, module", conv_or_recurrent_models(),
                         ids=["conv1d", "conv2d", "conv3d", "lstm", "gru"])
@pytest.mark.parametrize("estimator", ["reparameterization", "flipout"])
def test_conv_and_recurrent_layers_convert(make_layer, input_shape, module, estimator, tmp_path):
    layer = make_layer()
    if type(layer) not in CONVERSIONS:
        pytest.skip(f"{type(layer).__name__} has no row in tfbnn.convert.CONVERSIONS yet: "
                    f"{module} is not merged")
    keras.utils.set_random_seed(0)
    inputs = keras.Input(input_shape)
    h = keras.layers.Flatten()(layer(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2)(h))
    x = np.random.default_rng(0).normal(size=(8, *input_shape)).astype(np.float32)
    converted = bayesianize(model, estimator=estimator, moped_delta=0.01, seed=0)
    new = converted.layers[1]
    assert type(new) is CONVERSIONS[type(layer)][estimator]
    for name in new.posterior_names:
        np.testing.assert_array_equal(getattr(new, f"{name}_loc").numpy(),
                                      keras_weight(layer, name))
    mean = bnn_layers.sample_outputs(converted, x, 500).numpy().mean(axis=0)
    np.testing.assert_allclose(mean, model(x).numpy(), atol=0.05 * np.abs(model(x)).max())
    converted.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_array_equal(loaded.layers[1].weights[0].numpy(), new.weights[0].numpy())
    assert tf.is_tensor(bnn_layers.sample_outputs(loaded, x, 2))
