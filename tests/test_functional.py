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
