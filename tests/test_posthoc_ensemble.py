"""tfbnn.posthoc.DeepEnsemble: members of a user's architecture trained by tfbnn.train,
together when they share it, and their equal mixture as the predictive."""

from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfbnn
from tfbnn.posthoc import DeepEnsemble

TRAIN = {"epochs": 5, "batch_size": 16, "learning_rate": 1e-2, "jit_compile": False,
         "threads": 1}


def _mlp(width=8, outputs=1):
    return keras.Sequential([keras.Input((2,)), keras.layers.Dense(width, activation="tanh"),
                             keras.layers.Dense(outputs)])


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 2)).astype(np.float32)
    return x, np.sin(x[:, 0]) + 0.1 * rng.normal(size=48)


def test_members_train_together_and_mix(data, tmp_path):
    x, y = data
    ensemble = DeepEnsemble(_mlp, n_members=3, seed=0).fit(x, y, **TRAIN)
    members = ensemble.members_
    assert len(members) == 3 and isinstance(ensemble.history_, dict)  # one vectorised run
    assert len(ensemble.history_["nll"]) == 5
    # The likelihood's noise head was appended to each member, then trained.
    assert all(isinstance(m.layers[-1], tfbnn.layers.LearnedScale) for m in members)
    outputs = np.stack([m(x[:7], training=False).numpy() for m in members])
    assert not np.allclose(outputs[0], outputs[1])  # members differ
    predictive = ensemble.predictive(x[:7])
    assert predictive.n_draws == 3
    np.testing.assert_allclose(predictive.mean, outputs[..., 0].mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(predictive.epistemic_var, outputs[..., 0].var(axis=0),
                               rtol=1e-4, atol=1e-8)
    ensemble.save(tmp_path / "ens")
    loaded = tfbnn.posthoc.load(tmp_path / "ens")
    assert loaded.get_config() == ensemble.get_config() and loaded.likelihood == ensemble.likelihood
    np.testing.assert_allclose(loaded.predictive(x[:7]).mean, predictive.mean, rtol=1e-6)
    with pytest.raises(ValueError, match="has no build_fn"):
        loaded.fit(x, y, **TRAIN)


def test_a_dataset_gives_the_same_members_as_arrays(data):
    x, y = data
    from_arrays = DeepEnsemble(_mlp, n_members=2, seed=1).fit(x, y, **TRAIN)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(10)
    from_dataset = DeepEnsemble(_mlp, n_members=2, seed=1).fit(dataset, **TRAIN)
    np.testing.assert_allclose(from_dataset.predictive(x).mean, from_arrays.predictive(x).mean,
                               rtol=1e-5, atol=1e-6)


def test_members_of_different_architectures_train_one_after_another(data):
    x, y = data
    widths = itertools.cycle([4, 8])
    ensemble = DeepEnsemble(lambda: _mlp(next(widths)), n_members=2, likelihood="heteroscedastic")
    with pytest.raises(ValueError, match=r"emits 1 values per input, not the parameters of "
                                         r"HeteroscedasticGaussian"):
        ensemble.fit(x, y, **TRAIN)
    ensemble = DeepEnsemble(lambda: _mlp(next(widths), outputs=2), n_members=2,
                            likelihood="heteroscedastic", seed=2)
    ensemble.fit(x, y, **TRAIN)
    assert isinstance(ensemble.history_, list) and len(ensemble.history_) == 2
    assert {m.layers[0].units for m in ensemble.members_} == {4, 8}
    locs = np.stack([m(x[:5], training=False).numpy()[:, 0] for m in ensemble.members_])
    np.testing.assert_allclose(ensemble.predictive(x[:5]).mean, locs.mean(axis=0), rtol=1e-5)


def test_what_does_not_fit_is_refused(data):
    x, y = data

    def fixed():
        init = keras.initializers.GlorotUniform(0)
        return keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, kernel_initializer=init)])

    with pytest.raises(ValueError, match="same initial weights"):
        DeepEnsemble(fixed, n_members=2).fit(x, y, **TRAIN)
    with pytest.raises(TypeError, match="build_fn must be a callable"):
        DeepEnsemble(_mlp())
    with pytest.raises(TypeError, match="build_fn must return a Keras model"):
        DeepEnsemble(lambda: "model", n_members=2).fit(x, y, **TRAIN)
    with pytest.raises(ValueError, match="n_members must be an integer >= 1"):
        DeepEnsemble(_mlp, n_members=0)
    with pytest.raises(ValueError, match=r"parameters of 1 target dimension\(s\) of "
                                         r"HeteroscedasticGaussian.*; y has 2"):
        DeepEnsemble(lambda: _mlp(outputs=2), n_members=2, likelihood="heteroscedastic").fit(
            x, np.c_[y, y], **TRAIN)
    with pytest.raises(ValueError, match="not fitted yet"):
        DeepEnsemble(_mlp).predictive(x)
