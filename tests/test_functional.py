"""tfbnn.functional: a Keras model as a function of one flat parameter vector, and its
batched evaluation of many vectors at once."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfbnn import likelihoods, models
from tfbnn.functional import FunctionalModel, architecture_key
from tfbnn.layers import DenseFlipout


@pytest.mark.parametrize("likelihood", [likelihoods.Gaussian(trainable=True),
                                        likelihoods.HeteroscedasticGaussian()], ids=repr)
@pytest.mark.parametrize("per_member_inputs", [False, True])
def test_map_equals_one_keras_call_per_parameter_vector(likelihood, per_member_inputs):
    model = models.mlp(3, likelihood.n_network_outputs(1), hidden_units=(5, 4), seed=0,
                       output_layers=likelihood.output_layers(1))
    functional = FunctionalModel(model)
    assert functional.is_dense_stack  # the batched-product path, not vectorized_map
    rng = np.random.default_rng(0)
    thetas = rng.normal(size=(3, functional.size)).astype(np.float32)
    x = rng.normal(size=(3, 7, 3) if per_member_inputs else (7, 3)).astype(np.float32)
    out = functional.map(tf.constant(thetas), tf.constant(x)).numpy()
    assert out.shape == (3, 7, 2)
    for m, theta in enumerate(thetas):
        functional.set_params(tf.constant(theta))
        expected = model(x[m] if per_member_inputs else x).numpy()
        np.testing.assert_allclose(out[m], expected, rtol=1e-5, atol=1e-5)


def test_models_differing_only_in_kl_weight_share_one_compiled_program():
    def model(kl_weight, units=4):
        return keras.Sequential([keras.Input((2,)),
                                 DenseFlipout(units, kl_weight=kl_weight)])

    assert architecture_key(model(0.1)) == architecture_key(model(0.5))
    assert architecture_key(model(0.1)) != architecture_key(model(0.1, units=5))


def conv_net(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6, 6, 1))
    h = keras.layers.Conv2D(3, 3, activation="relu")(inputs)
    outputs = keras.layers.Dense(2)(keras.layers.Flatten()(h))
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("per_member_inputs", [False, True])
def test_map_of_a_conv_net_runs_each_member_and_differentiates_under_xla(per_member_inputs):
    # A convolution with per-member kernels has no vectorised form: map unrolls the members.
    model = conv_net()
    functional = FunctionalModel(model)
    assert functional.input_rank == 4 and not functional.is_dense_stack
    rng = np.random.default_rng(0)
    thetas = tf.constant(rng.normal(size=(3, functional.size)).astype(np.float32) * 0.3)
    x = rng.normal(size=(3, 5, 6, 6, 1) if per_member_inputs else (5, 6, 6, 1)).astype(np.float32)

    @tf.function(jit_compile=True)
    def loss_and_grad(thetas, x):
        with tf.GradientTape() as tape:
            tape.watch(thetas)
            outputs = functional.map(thetas, x)
            loss = tf.reduce_sum(outputs**2)
        return outputs, tape.gradient(loss, thetas)

    outputs, grad = loss_and_grad(thetas, tf.constant(x))
    assert outputs.shape == (3, 5, 2) and np.isfinite(grad.numpy()).all()
    for m in range(3):
        functional.set_params(thetas[m])
        expected = model(x[m] if per_member_inputs else x).numpy()
        np.testing.assert_allclose(outputs[m].numpy(), expected, rtol=1e-4, atol=1e-5)


def test_map_of_a_conv_net_takes_any_number_of_draws():
    # Predictions trace for an unknown draw count: the members then run in a while loop.
    functional = FunctionalModel(conv_net())
    program = tf.function(functional.map, reduce_retracing=True)
    x = tf.zeros((4, 6, 6, 1))
    for n in (2, 3, 5):
        thetas = tf.tile(functional.get_params()[tf.newaxis], [n, 1])
        assert tuple(program(thetas, x).shape) == (n, 4, 2)


def test_a_dense_stack_on_sequences_is_not_the_batched_product_path():
    model = keras.Sequential([keras.Input((4, 3)), keras.layers.Dense(2)])
    functional = FunctionalModel(model)
    assert functional.input_rank == 3 and not functional.is_dense_stack
    thetas = tf.stack([functional.get_params()] * 2)
    x = tf.random.normal((5, 4, 3))
    np.testing.assert_allclose(functional.map(thetas, x)[1].numpy(), model(x).numpy(), atol=1e-6)


def test_sample_tiles_inputs_of_any_rank():
    model = keras.Sequential([keras.Input((4, 3)), keras.layers.Flatten(), DenseFlipout(2, seed=0)])
    functional = FunctionalModel(model)
    outputs, _ = functional.sample(functional.get_params(), functional.get_state(),
                                   tf.random.normal((5, 4, 3)), 7)
    assert tuple(outputs.shape) == (7, 5, 2)
