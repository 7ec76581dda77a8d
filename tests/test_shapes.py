"""Target shapes: 1-D targets against one target dimension, and what cannot be meant.

A likelihood takes `y` of shape `(b,)` or `(b, d)` against parameters `(..., b, k)`;
these tests prove that a 1-D target gives the per-example log-likelihood (the loss of
a batch is the mean of its rows, not a `(b, b)` cross product), through
`Likelihood.log_prob`, the Keras loss, `model.fit` and `tfbnn.train`, and that shapes
that cannot be meant raise an error naming both.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy.special import log_softmax

import tfbnn
from tfbnn import likelihoods as L

RNG = np.random.default_rng(0)

# One target dimension: the likelihood and the width of its parameters.
ONE_TARGET = [(L.Gaussian(scale=0.7), 1), (L.Gaussian(trainable=True), 2),
              (L.StudentT(trainable=True), 2), (L.HeteroscedasticGaussian(), 2),
              (L.Poisson(), 1), (L.Bernoulli(), 1)]
IDS = ["gaussian", "gaussian_trainable", "student_t", "heteroscedastic", "poisson", "bernoulli"]


def _targets(likelihood, shape):
    if likelihood.is_discrete:
        return RNG.integers(0, 2, size=shape).astype("float32")
    return RNG.normal(size=shape).astype("float32")


@pytest.mark.parametrize("likelihood, width", ONE_TARGET, ids=IDS)
def test_a_one_dimensional_target_gives_the_per_example_log_likelihood(likelihood, width):
    params = RNG.normal(size=(6, width)).astype("float32")
    y = _targets(likelihood, 6)
    flat = likelihood.log_prob(y, params)
    assert flat.shape == (6,)
    np.testing.assert_array_equal(flat, likelihood.log_prob(y[:, None], params))
    # Row by row: each example's value depends on its own row only.
    rows = [float(likelihood.log_prob(y[i:i + 1], params[i:i + 1])[0]) for i in range(6)]
    np.testing.assert_allclose(flat, rows, rtol=1e-6)


@pytest.mark.parametrize("likelihood, width", ONE_TARGET, ids=IDS)
def test_sample_axes_on_the_parameters_broadcast_against_the_targets(likelihood, width):
    params = RNG.normal(size=(3, 5, width)).astype("float32")  # (S, B, k)
    y = _targets(likelihood, 5)
    expected = np.stack([likelihood.log_prob(y, p) for p in params])
    for targets in (y, y[:, None], y[None], np.broadcast_to(y, (3, 5))):
        np.testing.assert_allclose(likelihood.log_prob(targets, params), expected, rtol=1e-6)


def test_ensemble_targets_with_a_members_axis_and_a_batch_of_one():
    # tfbnn.train gathers (M, B) targets for (M, B, k) parameters; B may be 1.
    likelihood = L.Gaussian(trainable=True)
    params = RNG.normal(size=(4, 1, 2)).astype("float32")
    y = RNG.normal(size=(4, 1)).astype("float32")
    got = likelihood.log_prob(y, params)
    assert got.shape == (4, 1)
    np.testing.assert_allclose(got[:, 0], [likelihood.log_prob(y[m], params[m])[0]
                                           for m in range(4)], rtol=1e-6)


def test_several_target_dimensions_work_as_before():
    likelihood = L.HeteroscedasticGaussian()
    params = RNG.normal(size=(2, 5, 6)).astype("float32")  # 3 target dimensions
    y = RNG.normal(size=(5, 3)).astype("float32")
    assert likelihood.log_prob(y, params).shape == (2, 5)
    assert likelihood.log_prob(y, params[0]).shape == (5,)


@pytest.mark.parametrize("shape", [(7,), (7, 1), (1, 7), (3, 7), (3, 7, 1)])
def test_categorical_labels_with_or_without_a_column(shape):
    logits = RNG.normal(size=(3, 7, 4)).astype("float32")  # (S, B, K)
    labels = RNG.integers(0, 4, size=7)
    expected = log_softmax(logits.astype(np.float64), axis=-1)[:, np.arange(7), labels]
    y = np.broadcast_to(labels.reshape((7, 1) if shape[-1] == 1 else (7,)), shape)
    np.testing.assert_allclose(L.Categorical(4).log_prob(y, logits), expected, rtol=1e-5)


@pytest.mark.parametrize("likelihood, y_shape, params_shape", [
    (L.Gaussian(trainable=True), (8, 3), (8, 2)),        # 3 columns, one target dimension
    (L.Gaussian(trainable=True), (8, 8), (8, 2)),        # not (b, b) by broadcasting
    (L.HeteroscedasticGaussian(), (8,), (8, 4)),          # (b,) against 2 target dimensions
    (L.Gaussian(), (2,), (2, 2)),                         # nor one row against every row
    (L.Gaussian(), (7,), (8, 1)),                         # 7 targets, 8 examples
    (L.Gaussian(), (7, 1), (3, 8, 1)),
    (L.Poisson(), (8, 2), (8, 3)),
    (L.Categorical(3), (8, 2), (8, 3)),                   # labels are one column
    (L.Categorical(3), (5,), (8, 3)),
])
def test_shapes_that_cannot_be_meant_raise_naming_both(likelihood, y_shape, params_shape):
    message = (rf"targets of shape {tuple(y_shape)} do not fit likelihood parameters of "
               rf"shape {tuple(params_shape)}").replace("(", r"\(").replace(")", r"\)")
    with pytest.raises(ValueError, match=message):
        likelihood.log_prob(np.zeros(y_shape, "float32"), np.zeros(params_shape, "float32"))


def test_an_odd_number_of_location_scale_parameters_raises():
    with pytest.raises(ValueError, match="an even number of parameters"):
        L.Gaussian(trainable=True).log_prob(np.zeros(4), np.zeros((4, 3), "float32"))


def test_shapes_are_checked_when_tracing_and_unknown_batch_sizes_pass():
    likelihood = L.Gaussian(trainable=True)
    compiled = tf.function(likelihood.log_prob, jit_compile=True, input_signature=[
        tf.TensorSpec([None]), tf.TensorSpec([None, 2])])
    y, params = RNG.normal(size=5).astype("float32"), RNG.normal(size=(5, 2)).astype("float32")
    np.testing.assert_allclose(compiled(y, params), likelihood.log_prob(y, params), rtol=1e-6)
    wrong = tf.function(likelihood.log_prob, input_signature=[
        tf.TensorSpec([None, 3]), tf.TensorSpec([None, 2])])
    with pytest.raises(ValueError, match=r"targets of shape \(None, 3\) do not fit"):
        wrong.get_concrete_function()


# -- the Keras loss -----------------------------------------------------------------------------


def test_the_loss_of_a_batch_does_not_grow_with_the_batch_size():
    loss = L.NegativeLogLikelihood(L.Gaussian(trainable=True))
    block_params = RNG.normal(size=(4, 2)).astype("float32")
    block_y = RNG.normal(size=4).astype("float32")
    per_row = [float(loss(block_y[i:i + 1], block_params[i:i + 1])) for i in range(4)]
    values = {}
    for n in (1, 8, 32, 100):
        reps = -(-n // 4)
        params, y = np.tile(block_params, (reps, 1))[:n], np.tile(block_y, reps)[:n]
        values[n] = float(loss(y, params))
        assert values[n] == float(loss(y[:, None], params))  # the 2-D target, exactly
    np.testing.assert_allclose(values[1], per_row[0], rtol=1e-6)
    for n in (8, 32, 100):  # whole blocks: the mean of the block's rows
        np.testing.assert_allclose(values[n], np.mean(per_row), rtol=1e-5)


def test_the_keras_loss_refuses_a_mismatch_naming_both_shapes():
    loss = L.NegativeLogLikelihood(L.HeteroscedasticGaussian())
    with pytest.raises(ValueError, match=r"targets of shape \(4,\) do not fit likelihood "
                                         r"parameters of shape \(4, 4\)"):
        loss(np.zeros(4), np.zeros((4, 4), "float32"))


# -- the README's Keras recipe with 1-D targets --------------------------------------------------


def _linear_data(n=500):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, 2)).astype("float32")
    y = (2 * x[:, 0] - x[:, 1] + 0.1 * rng.normal(size=n)).astype("float32")
    return x, y


def _recipe(n):
    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((2,)),
        tfbnn.layers.DenseFlipout(20, activation="relu", kl_weight=1 / n),
        tfbnn.layers.DenseFlipout(1, kl_weight=1 / n),
        tfbnn.layers.LearnedScale(),
    ])


def _rmse(model, likelihood, x, y):
    dist = tfbnn.Predictive(likelihood, tfbnn.layers.sample_outputs(model, x, 20))
    assert dist.mean.shape == y.shape
    return float(np.sqrt(np.mean((dist.mean - y) ** 2)))


def _fit_with_keras(model, likelihood, x, y):
    model.compile(keras.optimizers.Adam(1e-2), loss=L.NegativeLogLikelihood(likelihood))
    model.fit(x, y, epochs=8, batch_size=50, verbose=0)


def _fit_with_train(model, likelihood, x, y):
    tfbnn.train(model, likelihood, x, y, epochs=8, batch_size=50, learning_rate=1e-2, seed=0,
                verbose=0)


@pytest.mark.parametrize("fit", [_fit_with_keras, _fit_with_train],
                         ids=["model_fit", "tfbnn_train"])
def test_the_recipe_learns_from_a_one_dimensional_target(fit):
    x, y = _linear_data()
    rmse = {}
    for name, targets in (("1d", y), ("2d", y[:, None])):
        likelihood = L.Gaussian(trainable=True)
        model = _recipe(len(x))
        fit(model, likelihood, x, targets)
        rmse[name] = _rmse(model, likelihood, x, y)
    assert rmse["2d"] < 0.5 * np.std(y)  # it learned something
    assert rmse["1d"] <= 1.1 * rmse["2d"]


def test_tfbnn_train_refuses_targets_of_another_width():
    x, y = _linear_data(40)
    model = _recipe(len(x))
    with pytest.raises(ValueError, match=r"targets of shape \(.*, 3\) do not fit likelihood"):
        tfbnn.train(model, L.Gaussian(trainable=True), x, np.repeat(y[:, None], 3, axis=1),
                    epochs=1, verbose=0)


def _dense(seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((2,)), keras.layers.Dense(4, activation="relu"),
                             keras.layers.Dense(2)])


@pytest.mark.parametrize("members", [None, 2], ids=["one_model", "ensemble"])
def test_tfbnn_train_gives_the_same_losses_for_1d_and_2d_targets(members):
    # Ensembles gather (M, B) targets for (M, B, k) outputs; validation is a
    # mixture over members (or weight samples) with (1, n) targets.
    x, y = _linear_data(60)
    history = {}
    for name, targets in (("1d", y), ("2d", y[:, None])):
        model = _dense(0) if members is None else [_dense(m) for m in range(members)]
        history[name] = tfbnn.train(model, L.HeteroscedasticGaussian(), x[:40], targets[:40],
                                    epochs=2, batch_size=16, seed=0, verbose=0, threads=1,
                                    validation_data=(x[40:], targets[40:]))
    assert np.all(np.isfinite(history["1d"].val_nll)) and len(history["1d"].val_nll) == 2
    np.testing.assert_array_equal(np.asarray(history["1d"].nll), np.asarray(history["2d"].nll))
    np.testing.assert_array_equal(np.asarray(history["1d"].val_nll),
                                  np.asarray(history["2d"].val_nll))
