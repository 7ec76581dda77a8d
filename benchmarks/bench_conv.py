"""A small Bayesian conv net under `model.fit`: tfbnn's Flipout layers against plain
Keras and against TensorFlow Probability's layers in `tf_keras`.

scikit-learn's digits (8x8 images, 80 % for training), the net
Conv2D(16, 3) -> Conv2D(32, 3) -> Flatten -> Dense(64) -> Dense(10), ReLU, batch 32,
Adam 1e-3, softmax cross-entropy (+ the KL layer losses, weighted 1 / n_train):

* keras: `keras.layers.Conv2D` / `Dense` (Keras 3), no weight noise;
* tf_keras: the same in `tf_keras` (Keras 2), what `model.fit` itself costs there;
* tfp: `tfp.layers.Convolution2DFlipout` / `DenseFlipout` in `tf_keras` (TFP's layers
  need `TF_USE_LEGACY_KERAS=1` before TFP is imported: every variant runs in its own
  process), TFP's default posteriors (deterministic biases);
* tfbnn: `tfbnn.layers.Conv2DFlipout` / `DenseFlipout`;
* tfbnn-reparam: `Conv2DReparameterization` / `DenseReparameterization` (one weight
  sample per step, no second convolution).

Each is timed per epoch after one warm-up epoch (tracing, compiling) under three
`compile` settings: the defaults, `jit_compile=True`, and that with
`steps_per_execution` = the steps of an epoch (Python entered once per epoch). Runs
alternate between variants; the table shows each variant's median over runs of the
wall-clock and of the process's CPU seconds per epoch, and the wall-clock ratios to
keras and to tfp (ratios are what to read: the machine is shared). Test accuracy
after the same epochs is a sanity check (Bayesian nets: the mean of 10 sampled
predictive distributions).

    .venv/bin/python benchmarks/bench_conv.py                 # 5 timed epochs, 2 runs
    .venv/bin/python benchmarks/bench_conv.py --epochs 3 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BATCH, LR, PREDICTIVE_SAMPLES = 32, 1e-3, 10
VARIANTS = ("keras", "tf_keras", "tfp", "tfbnn", "tfbnn-reparam")
LEGACY = ("tf_keras", "tfp")  # variants run in tf_keras
#: `compile` settings: name -> (jit_compile, steps_per_execution: one epoch's steps?).
SETTINGS = {"fit": (False, False), "fit jit": (True, False), "fit jit spe": (True, True)}
ROOT = Path(__file__).resolve().parents[1]


def digits():
    """80 % / 20 % stratified split of scikit-learn's digits, images in [0, 1]."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    images, labels = load_digits(return_X_y=True)
    x = (images / 16.0).reshape(-1, 8, 8, 1).astype("float32")
    return train_test_split(x, labels.astype("int32"), test_size=0.2, random_state=0,
                            stratify=labels)


# -- the models, one per variant (each built in its own process) ------------------------------


def keras_model(variant: str, n_train: int):
    import keras

    import tfbnn

    keras.utils.set_random_seed(0)
    if variant == "keras":
        conv, dense, extra = keras.layers.Conv2D, keras.layers.Dense, {}
    else:
        flipout = variant == "tfbnn"
        layers = tfbnn.layers
        conv = layers.Conv2DFlipout if flipout else layers.Conv2DReparameterization
        dense = layers.DenseFlipout if flipout else layers.DenseReparameterization
        extra = {"kl_weight": 1 / n_train}
    return keras, keras.Sequential([
        keras.Input((8, 8, 1)),
        conv(16, 3, activation="relu", **extra),
        conv(32, 3, activation="relu", **extra),
        keras.layers.Flatten(),
        dense(64, activation="relu", **extra),
        dense(10, **extra),
    ])


def legacy_model(variant: str, n_train: int):
    """The net in `tf_keras`: plain layers, or TFP's Flipout layers."""
    import tensorflow_probability as tfp
    import tf_keras

    tf_keras.utils.set_random_seed(0)

    def divergence(q, p, _):
        return tfp.distributions.kl_divergence(q, p) / n_train

    if variant == "tf_keras":
        conv, dense, extra = tf_keras.layers.Conv2D, tf_keras.layers.Dense, {}
    else:
        conv, dense = tfp.layers.Convolution2DFlipout, tfp.layers.DenseFlipout
        extra = {"kernel_divergence_fn": divergence}
    return tf_keras, tf_keras.Sequential([
        tf_keras.Input((8, 8, 1)),
        conv(16, 3, activation="relu", **extra),
        conv(32, 3, activation="relu", **extra),
        tf_keras.layers.Flatten(),
        dense(64, activation="relu", **extra),
        dense(10, **extra),
    ])


def test_accuracy(variant: str, model, x, y) -> float:
    import tensorflow as tf

    if variant in ("keras", "tf_keras"):
        probabilities = tf.nn.softmax(model(x)).numpy()
    elif variant == "tfp":  # TFP's Flipout layers draw new weights on every call
        probabilities = np.mean([tf.nn.softmax(model(x)).numpy()
                                 for _ in range(PREDICTIVE_SAMPLES)], axis=0)
    else:
        import tfbnn

        logits = tfbnn.layers.sample_outputs(model, x, PREDICTIVE_SAMPLES)
        probabilities = tf.reduce_mean(tf.nn.softmax(logits), axis=0).numpy()
    return float(np.mean(np.argmax(probabilities, axis=1) == y))


def worker(variant: str, setting: str, epochs: int) -> dict:
    """Trains one model in this process: wall and CPU seconds of each epoch after the
    warm-up, and the test accuracy."""
    x_train, x_test, y_train, y_test = digits()
    build = legacy_model if variant in LEGACY else keras_model
    library, model = build(variant, len(x_train))
    jit, per_epoch = SETTINGS[setting]
    model.compile(library.optimizers.Adam(LR), jit_compile=jit,
                  steps_per_execution=-(-len(x_train) // BATCH) if per_epoch else 1,
                  loss=library.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x_train, y_train, epochs=1, batch_size=BATCH, verbose=0)  # tracing, compiling
    wall, cpu = [], []

    class EpochTimer(library.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter(), time.process_time()

        def on_epoch_end(self, epoch, logs=None):
            wall.append(time.perf_counter() - self.start[0])
            cpu.append(time.process_time() - self.start[1])

    model.fit(x_train, y_train, epochs=epochs, batch_size=BATCH, verbose=0,
              callbacks=[EpochTimer()])
    return {"wall": wall, "cpu": cpu, "accuracy": test_accuracy(variant, model, x_test, y_test)}


# -- the driver: one process per run ---------------------------------------------------------


def run_worker(variant: str, setting: str, epochs: int) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.pop("TF_USE_LEGACY_KERAS", None)
    if variant in LEGACY:
        env["TF_USE_LEGACY_KERAS"] = "1"
    command = [sys.executable, __file__, "--worker", variant, "--setting", setting,
               "--epochs", str(epochs)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise RuntimeError(f"{variant} ({setting}) failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix("RESULT "))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs after the warm-up")
    parser.add_argument("--repeats", type=int, default=2, help="runs (processes) per setting")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--setting", choices=list(SETTINGS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print("RESULT " + json.dumps(worker(args.worker, args.setting, args.epochs)))
        return

    runs = [(variant, setting) for setting in args.settings for variant in args.variants]
    results = {run: [] for run in runs}
    for _ in range(args.repeats):  # alternating, so a busy spell hits every variant
        for run in runs:
            results[run].append(run_worker(*run, args.epochs))
    print_table(results, args)


def median_ms(results, key: str) -> float:
    """Median over runs of each run's median epoch, in milliseconds."""
    return 1e3 * float(np.median([np.median(r[key]) for r in results]))


def print_table(results, args) -> None:
    print(f"digits, {args.epochs} timed epochs after one warm-up, batch {BATCH}, "
          f"median over {args.repeats} run(s) of the per-epoch median")
    print(f"{'variant':>14} {'compile':>12} | {'wall ms':>8} {'cpu ms':>7} | {'x keras':>7} "
          f"{'x tfp':>6} | {'test acc':>8}")
    for (variant, setting), runs in results.items():
        wall = median_ms(runs, "wall")
        ratios = []
        for base, width in (("keras", 7), ("tfp", 6)):
            reference = results.get((base, setting))
            ratios.append(f"{wall / median_ms(reference, 'wall'):{width}.2f}" if reference
                          else " " * width)
        accuracy = np.mean([r["accuracy"] for r in runs])
        print(f"{variant:>14} {setting:>12} | {wall:8.1f} {median_ms(runs, 'cpu'):7.1f} | "
              f"{' '.join(ratios)} | {accuracy:8.3f}")


if __name__ == "__main__":
    main()
