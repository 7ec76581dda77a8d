"""`tfbnn.train` under tf.distribute: two replicas (MirroredStrategy over two logical
CPUs) and two workers (MultiWorkerMirroredStrategy on loopback) against one device.

Devices are configured before TensorFlow starts, so every run is a subprocess: the
shared pytest process keeps its one device. One device runs with
`jit_compile=False`, as the replicas do: XLA draws other random numbers for the
same seeds. Tolerance: 1e-5 absolute on weights and gradients (float32 sums
taken in another order), from a few epochs of a tiny network.
"""

from __future__ import annotations

import os
import sys

import keras
import numpy as np
import pytest

import tfbnn
from tfbnn.training.workers import loopback_tf_configs, run_processes

TOLERANCE = 1e-5
TIMEOUT = 150  # seconds a run's processes may take before they are killed

#: One run: trains a small variational network (KL term on) with and without the
#: strategy and saves both results. Argument 1: "mirrored" or "worker"; 2: output.
SCRIPT = r'''
import json, os, sys
import numpy as np
import tensorflow as tf
mode, out = sys.argv[1], sys.argv[2]
if mode == "mirrored":
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
else:
    strategy = tf.distribute.MultiWorkerMirroredStrategy()  # before any other op
import keras
import tfbnn
from tfbnn import layers, likelihoods

rng = np.random.default_rng(0)
x = rng.normal(size=(64, 3)).astype("float32")
y = (x @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=64))[:, None].astype("float32")
likelihood = likelihoods.Gaussian(scale=1.0, trainable=False)

def network():
    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((3,)),
        layers.DenseReparameterization(8, activation="relu", kl_weight=1 / 64),
        layers.DenseReparameterization(1, kl_weight=1 / 64)])

def flat(models):
    return np.concatenate([v.numpy().ravel() for m in models for v in m.trainable_variables])

def fit(strategy, ensemble=False, **options):
    models = [network(), network()] if ensemble else [network()]
    start = flat(models)
    options = {"batch_size": 16, **options}
    history = tfbnn.train(models if ensemble else models[0], likelihood, x, y,
                          seed=1, verbose=0, jit_compile=False, strategy=strategy, **options)
    return start, flat(models), history

results = {}
for name, options in (("sgd", dict(epochs=1, optimizer="sgd", learning_rate=1.0)),
                      ("adam", dict(epochs=4, learning_rate=0.05))):
    for where, s in (("one", None), ("many", strategy)):
        start, end, history = fit(s, **options)
        results[f"{name}_{where}_start"], results[f"{name}_{where}_end"] = start, end
        results[f"{name}_{where}_kl"] = np.array(history.kl)
        results[f"{name}_{where}_nll"] = np.array(history.nll)
if mode == "mirrored":
    results["ensemble_one"] = fit(None, ensemble=True, epochs=3)[1]
    with strategy.scope():  # the current strategy, not passed
        results["ensemble_many"] = fit(None, ensemble=True, epochs=3)[1]
    try:
        fit(strategy, epochs=1, batch_size=15)
    except ValueError as err:
        results["odd_batch_error"] = np.array(str(err))
if mode == "mirrored":  # estimators pass the strategy to tfbnn.train
    from sklearn.base import clone
    estimator = tfbnn.BayesianRegressor(hidden_units=(8,), epochs=2, batch_size=16,
                                        n_samples=5, strategy=strategy)
    clone(estimator).fit(x, y[:, 0]).save(out + ".estimator")
    results["estimator_loaded"] = tfbnn.load(out + ".estimator").predict(x[:4])
    try:
        clone(estimator).set_params(inference="hmc").fit(x, y[:, 0])
    except ValueError as err:
        results["hmc_error"] = np.array(str(err))
    try:
        clone(estimator).set_params(batch_size=15).fit(x, y[:, 0])
    except ValueError as err:
        results["estimator_batch_error"] = np.array(str(err))
results["replicas"] = np.array(strategy.num_replicas_in_sync)
np.savez(out, **results)
'''


def run_script(mode: str, out, tf_configs=None) -> None:
    """Runs SCRIPT in one process, or one per `TF_CONFIG`, all killed after `TIMEOUT`."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")]))}
    configs = tf_configs or [None]
    commands = [[sys.executable, "-c", SCRIPT, mode, str(out) if i == 0 else f"{out}.worker{i}.npz"]
                for i in range(len(configs))]
    envs = [env if config is None else {**env, "TF_CONFIG": config} for config in configs]
    run_processes(commands, envs, TIMEOUT)


def check_same_as_one_device(results) -> None:
    """Gradients (one SGD step of rate 1: start - end), weights after Adam epochs, and
    the recorded NLL and KL terms of the distributed run equal one device's."""
    np.testing.assert_array_equal(results["sgd_one_start"], results["sgd_many_start"])
    grad_one = results["sgd_one_start"] - results["sgd_one_end"]
    grad_many = results["sgd_many_start"] - results["sgd_many_end"]
    assert np.abs(grad_one).max() > 1e-2  # the step moved the weights
    np.testing.assert_allclose(grad_many, grad_one, atol=TOLERANCE)
    np.testing.assert_allclose(results["adam_many_end"], results["adam_one_end"], atol=TOLERANCE)
    for record in ("sgd_{}_kl", "adam_{}_kl", "adam_{}_nll"):
        # The KL term is counted once per global step (a per-replica KL would double it).
        np.testing.assert_allclose(results[record.format("many")], results[record.format("one")],
                                   rtol=1e-5)


def test_mirrored_strategy_matches_one_device(tmp_path):
    out = tmp_path / "mirrored.npz"
    run_script("mirrored", out)
    results = np.load(out)
    assert int(results["replicas"]) == 2
    check_same_as_one_device(results)
    np.testing.assert_allclose(results["ensemble_many"], results["ensemble_one"], atol=TOLERANCE)
    assert "batch_size=15 cannot be split equally" in str(results["odd_batch_error"])
    # An estimator trains under the strategy, saves without it, and loads.
    assert np.isfinite(results["estimator_loaded"]).all()
    assert "batch_size=15 cannot be split equally" in str(results["estimator_batch_error"])
    assert "inference='hmc' does not run under a tf.distribute strategy" in str(
        results["hmc_error"])


def test_multi_worker_strategy_on_loopback_matches_one_worker(tmp_path):
    out = tmp_path / "worker.npz"
    run_script("worker", out, loopback_tf_configs(2))
    results = np.load(out)
    assert int(results["replicas"]) == 2
    check_same_as_one_device(results)
    # Both workers end with the same weights.
    other = np.load(f"{out}.worker1.npz")
    np.testing.assert_array_equal(other["adam_many_end"], results["adam_many_end"])


def test_train_refuses_what_is_not_a_strategy():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    with pytest.raises(TypeError, match="strategy must be a tf.distribute.Strategy"):
        tfbnn.train(model, tfbnn.likelihoods.Gaussian(), np.zeros((4, 2)), np.zeros((4, 1)),
                    epochs=1, strategy="mirrored", verbose=0)
