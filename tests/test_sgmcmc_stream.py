"""SG-MCMC from a stream of (x, y) batches: the same draws as from arrays read in the
same order, and the estimator's fit from a dataset or a batch function."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfbnn import BayesianRegressor, likelihoods, priors
from tfbnn.inference.base import FitSettings
from tfbnn.inference.sgmcmc import StochasticGradientMCMC
from tfbnn.inference.sgmcmc_feeds import minibatch_rows
from tfbnn.training.stream import Stream

N, BATCH, EPOCHS, CYCLES, MAP_STEPS = 64, 16, 8, 2, 6


def _linear(n=N, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(n, 2)).astype("float32")
    y = (2 * x[:, :1] - x[:, 1:] + 0.1 * rng.normal(size=(n, 1))).astype("float32")
    return x, y


def _in_memory_rows(seed):
    """The rows in the order the array path reads them: after the initial state's and
    the noise seeds' draws (a seed per cycle and the MAP start's), `minibatch_rows` for
    the MAP start's whole epochs, then per cycle."""
    rng = np.random.default_rng(seed)
    rng.integers(2**31)
    rng.integers(0, 2**31 - 1, size=(CYCLES + 1, 2))
    map_epochs = -(-MAP_STEPS // (N // BATCH))
    return np.concatenate([minibatch_rows(rng, N, BATCH, epochs).ravel()
                           for epochs in [map_epochs] + [EPOCHS // CYCLES] * CYCLES])


def _fit(x, y, sampler):
    method = StochasticGradientMCMC(sampler=sampler, n_cycles=CYCLES, samples_per_cycle=3,
                                    burnin=0.5, map_steps=MAP_STEPS, min_steps=0,
                                    jit_compile=False)
    settings = FitSettings(hidden_units=(8,), prior=priors.get("normal"), epochs=EPOCHS,
                           batch_size=BATCH, seed=5, verbose=0)
    history = method.fit(x, y, likelihoods.Gaussian(trainable=True), settings)
    return method, history


def test_draws_from_a_stream_equal_the_arrays_read_in_the_same_order():
    # A fair equality: the stream holds every epoch's batches in the array path's order
    # (N divisible by the batch size: no wrapped rows) and is told the N training rows.
    x, y = _linear()
    rows = _in_memory_rows(seed=5)
    for sampler in ("sghmc_cyclical", "sgld"):
        from_arrays, history = _fit(x, y, sampler)
        dataset = tf.data.Dataset.from_tensor_slices((x[rows], y[rows])).batch(BATCH)
        streamed, streamed_history = _fit(Stream(dataset, n_rows=N), None, sampler)
        assert streamed.draws_.shape == from_arrays.draws_.shape
        np.testing.assert_allclose(streamed.draws_, from_arrays.draws_, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(streamed_history["nll"], history["nll"], rtol=1e-4)


def test_a_stream_read_across_passes_keeps_the_schedule_in_steps():
    # 64 rows in batches of 16 with the stream's rows counted: 4 steps per epoch, so
    # the MAP start runs 2 epochs and each of the 2 cycles 16 steps, reading on into
    # the next pass.
    x, y = _linear()
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH)
    method, history = _fit(Stream(dataset), None, "sghmc_cyclical")
    steps_per_cycle = N // BATCH * EPOCHS // CYCLES
    kept_per_cycle = (method.schedule(steps_per_cycle)[3] >= 0).sum()
    assert len(history["nll"]) == CYCLES and method.get_config()["map_steps"] == MAP_STEPS
    assert method.draws_.shape[:2] == (CYCLES * kept_per_cycle, 1)
    assert method.diagnostics_["num_draws"] == CYCLES * kept_per_cycle


def test_the_estimator_samples_from_a_dataset_and_a_batch_function_like_from_arrays():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(256, 2)) * [1.0, 4.0] + [0.0, 3.0]
    y = X @ np.array([1.5, -0.5]) + 0.3 * rng.normal(size=256)
    options = dict(hidden_units=(16,), inference="sgmcmc", epochs=60, batch_size=32,
                   random_state=0, n_samples=30,
                   inference_options={"n_cycles": 3, "jit_compile": False, "min_steps": 0})
    from_arrays = BayesianRegressor(**options).fit(X, y)
    batches = [(X[i : i + 32], y[i : i + 32]) for i in range(0, len(X), 32)]
    X_test = rng.normal(size=(50, 2)) * [1.0, 4.0] + [0.0, 3.0]
    reference = from_arrays.predict_distribution(X_test)
    for source in (tf.data.Dataset.from_tensor_slices((X, y)).shuffle(256, seed=0).batch(32),
                   lambda: iter(batches)):
        model = BayesianRegressor(**options).fit(source)
        assert model.inference_.n_draws == from_arrays.inference_.n_draws  # same schedule
        assert model.score(X, y) > 0.95
        dist = model.predict_distribution(X_test)
        spread = np.std(y)
        np.testing.assert_allclose(dist.mean, reference.mean, atol=0.12 * spread)
        # Two chains read the rows in other orders: their predictive sds are Monte
        # Carlo estimates from 30 draws each, loosest in the inputs' tails.
        assert abs(dist.std.mean() / reference.std.mean() - 1) < 0.1
        np.testing.assert_allclose(dist.std, reference.std, rtol=0.5)
