"""Throughput of `tfbnn.train` alone and as two `MultiWorkerMirroredStrategy` workers.

A variational MLP 8 -> 50 -> 1 on 20,000 generated rows, global batch 256: one
warm-up epoch (compilation), then a few timed epochs. Two workers run as local
processes on loopback (`tfbnn.training.workers`); the single worker runs as a
process too, so both pay the same start-up. On a machine of two cores no speed-up
is expected: the table shows what the collective communication costs.

    python benchmarks/bench_distribute.py [--epochs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from tfbnn.training.workers import loopback_tf_configs, run_processes

ROWS, FEATURES, BATCH = 20_000, 8, 256
TIMEOUT = 600  # seconds before the workers are killed

#: One worker's run; prints a JSON line `{"seconds": ..., "examples": ...}`.
SCRIPT = r'''
import json, os, sys, time
import numpy as np
import tensorflow as tf
epochs, rows, features, batch = (int(a) for a in sys.argv[1:5])
strategy = tf.distribute.MultiWorkerMirroredStrategy() if "TF_CONFIG" in os.environ else None
import keras
import tfbnn
from tfbnn import layers, likelihoods

rng = np.random.default_rng(0)
x = rng.normal(size=(rows, features)).astype("float32")
y = (np.sin(x[:, :1]) + 0.1 * rng.normal(size=(rows, 1))).astype("float32")
likelihood = likelihoods.Gaussian(scale=0.1, trainable=False)
keras.utils.set_random_seed(0)
model = keras.Sequential([
    keras.Input((features,)),
    layers.DenseReparameterization(50, activation="relu", kl_weight=1 / rows),
    layers.DenseReparameterization(1, kl_weight=1 / rows)])
options = dict(batch_size=batch, seed=1, verbose=0, strategy=strategy)
tfbnn.train(model, likelihood, x, y, epochs=1, **options)  # warm-up: compiles
start = time.perf_counter()
tfbnn.train(model, likelihood, x, y, epochs=epochs, **options)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "examples": epochs * rows}))
'''


def run(n_workers: int, epochs: int) -> dict:
    """Wall seconds and examples of the timed epochs (worker 0's, with TF_CONFIG when
    there is more than one worker)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")]))}
    configs = loopback_tf_configs(n_workers) if n_workers > 1 else [None]
    envs = [env if c is None else {**env, "TF_CONFIG": c} for c in configs]
    command = [sys.executable, "-c", SCRIPT, str(epochs), str(ROWS), str(FEATURES), str(BATCH)]
    outputs = run_processes([command] * n_workers, envs, TIMEOUT)
    return json.loads(outputs[0].strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs after the warm-up")
    args = parser.parse_args(argv)
    one, two = run(1, args.epochs), run(2, args.epochs)
    rate = {k: r["examples"] / r["seconds"] for k, r in (("one", one), ("two", two))}
    print(f"tfbnn.train, MLP {FEATURES}->50->1, {ROWS} rows, global batch {BATCH}, "
          f"{args.epochs} epochs after one warm-up")
    print(f"{'':<14}{'1 worker':>12}{'2 workers':>12}{'2 / 1':>9}")
    print(f"{'examples/s':<14}{rate['one']:>12.0f}{rate['two']:>12.0f}"
          f"{rate['two'] / rate['one']:>9.2f}")
    print(f"{'wall s':<14}{one['seconds']:>12.2f}{two['seconds']:>12.2f}"
          f"{two['seconds'] / one['seconds']:>9.2f}")


if __name__ == "__main__":
    main()
