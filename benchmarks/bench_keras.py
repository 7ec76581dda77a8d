"""`model.fit` with tfbnn layers, against `tfbnn.train` and against plain Keras layers.

Two comparisons in one run (time ratios are what to read: the machine is shared):

* The README's Keras recipe on boston (split 0, standardised, batch 32, Adam 1e-3): a
  `keras.Sequential` of `DenseFlipout(50, relu)`, `DenseFlipout(1)`, `LearnedScale()`
  with the `NegativeLogLikelihood(Gaussian(trainable=True))` loss, fitted with
  `model.fit` under several `compile` settings, and the same architecture trained by
  `tfbnn.train`, and once more with the fastest settings fed by a repeated `tf.data`
  pipeline. Each is run `--repeats` times on fresh models. `tfbnn.train` reuses its
  compiled program across models, so its first run alone includes compiling; every
  `model.fit` run traces (and with XLA compiles) its own train function. Wall and
  CPU seconds are shown: on a loaded machine the CPU seconds compare the work.
* A small conv net on scikit-learn's digits (8x8 images): a Conv2D/pool/flatten trunk
  with a `DenseFlipout` head against the same net with `keras.layers.Dense`, both
  under `model.fit`: seconds per epoch after the first, and their ratio.

    .venv/bin/python benchmarks/bench_keras.py            # 400 epochs, as the README
    .venv/bin/python benchmarks/bench_keras.py --epochs 50 --repeats 2
    .venv/bin/python benchmarks/bench_keras.py --only recipe --fastest-only
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import tfbnn  # noqa: E402
from tfbnn import likelihoods  # noqa: E402
from tfbnn.data.uci import load_uci  # noqa: E402

BATCH, UNITS, LR = 32, 50, 1e-3

#: `model.compile` settings compared for the recipe: name -> keyword arguments.
FIT_SETTINGS = {
    "fit (defaults)": {},
    "fit jit": {"jit_compile": True},
    "fit jit spe=32": {"jit_compile": True, "steps_per_execution": 32},
}


def repeated_dataset(x, y, seed):
    """A shuffled, batched, repeated `tf.data` pipeline: `model.fit` then keeps one
    iterator across epochs (with `steps_per_epoch`) instead of building one per epoch."""
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=seed)
    return data.batch(BATCH).repeat().prefetch(tf.data.AUTOTUNE)


def boston(data_dir=None):
    """Split 0 of boston, standardised with the training statistics; 2-D targets."""
    x_tr, y_tr, _, _ = load_uci("boston", data_dir).split(0)
    sx = np.where(x_tr.std(0) == 0, 1, x_tr.std(0))
    xs = ((x_tr - x_tr.mean(0)) / sx).astype("float32")
    ys = ((y_tr - y_tr.mean()) / y_tr.std()).astype("float32")[:, None]
    return xs, ys


def recipe_model(n_features, n_train, seed=0, plain=False):
    """The README's network; `plain=True`: the same with `keras.layers.Dense` (no KL)."""
    if plain:
        keras.utils.set_random_seed(seed)
        hidden, out = keras.layers.Dense(UNITS, activation="relu"), keras.layers.Dense(1)
    else:
        hidden = tfbnn.layers.DenseFlipout(UNITS, activation="relu", kl_weight=1 / n_train,
                                           seed=seed)
        out = tfbnn.layers.DenseFlipout(1, kl_weight=1 / n_train, seed=seed + 1)
    return keras.Sequential([keras.Input((n_features,)), hidden, out, tfbnn.layers.LearnedScale()])


def time_fit(x, y, epochs, compile_kwargs, seed, dataset=False, plain=False):
    """Wall and CPU seconds of one `model.fit` of a fresh model, and its last loss.

    `dataset`: fed by `repeated_dataset` with `steps_per_epoch` (one pass per epoch;
    `steps_per_execution` is capped at the steps of an epoch, as Keras runs whole
    executions past the epoch's end on an infinite dataset).
    """
    model = recipe_model(x.shape[1], len(x), seed, plain)
    loss = likelihoods.NegativeLogLikelihood(likelihoods.Gaussian(trainable=True))
    steps = -(-len(x) // BATCH)
    if dataset and "steps_per_execution" in compile_kwargs:
        compile_kwargs = {**compile_kwargs, "steps_per_execution": steps}
    model.compile(keras.optimizers.Adam(LR), loss=loss, **compile_kwargs)
    start = time.perf_counter(), time.process_time()
    if dataset:
        history = model.fit(repeated_dataset(x, y, seed), epochs=epochs, verbose=0,
                            steps_per_epoch=steps)
    else:
        history = model.fit(x, y, epochs=epochs, batch_size=BATCH, verbose=0, shuffle=True)
    return (time.perf_counter() - start[0], time.process_time() - start[1],
            history.history["loss"][-1])


def time_train(x, y, epochs, seed):
    model = recipe_model(x.shape[1], len(x), seed)
    likelihood = likelihoods.Gaussian(trainable=True)
    start = time.perf_counter(), time.process_time()
    history = tfbnn.train(model, likelihood, x, y, epochs=epochs, batch_size=BATCH,
                          learning_rate=LR, seed=seed, verbose=0)
    return time.perf_counter() - start[0], time.process_time() - start[1], history.loss[-1]


def recipe(args):
    x, y = boston(args.data_dir)
    print(f"boston split 0: {len(x)} rows, {args.epochs} epochs, batch {BATCH}, "
          f"{args.repeats} runs each (the first includes compiling)")
    runs = {"tfbnn.train": [time_train(x, y, args.epochs, seed) for seed in range(args.repeats)]}
    settings = {} if args.fastest_only else FIT_SETTINGS
    for name, kwargs in settings.items():
        runs[name] = [time_fit(x, y, args.epochs, kwargs, seed) for seed in range(args.repeats)]
    fastest = FIT_SETTINGS["fit jit spe=32"]
    runs["fit jit spe tf.data"] = [time_fit(x, y, args.epochs, fastest, seed, dataset=True)
                                   for seed in range(args.repeats)]
    # The same fit with plain Dense layers: what Keras' loop costs without tfbnn.
    runs["Dense: fit jit spe"] = [time_fit(x, y, args.epochs, fastest, seed, plain=True)
                                  for seed in range(args.repeats)]
    print_recipe_table(runs)


def print_recipe_table(runs) -> None:
    """Seconds of each row's first and later runs, and ratios to `tfbnn.train`'s."""
    first_train, warm_train = first_and_warm(runs["tfbnn.train"])
    print(f"{'':>19} | {'first s':>7} {'cpu s':>6} {'warm s':>7} {'cpu s':>6} | "
          f"{'first x':>7} {'cpu x':>6} {'warm x':>7} {'cpu x':>6} | {'loss':>6}")
    for name, results in runs.items():
        first, warm = first_and_warm(results)
        ratios = [first[0] / first_train[0], first[1] / first_train[1],
                  warm[0] / warm_train[0], warm[1] / warm_train[1]]
        print(f"{name:>19} | {first[0]:7.2f} {first[1]:6.2f} {warm[0]:7.2f} {warm[1]:6.2f} | "
              + " ".join(f"{r:{w}.2f}" for r, w in zip(ratios, (7, 6, 7, 6)))
              + f" | {np.mean([r[2] for r in results]):6.3f}")
    print("first: the first run of the process (tfbnn.train's includes compiling its cached "
          "program; every model.fit traces and compiles its own); warm: median of the later "
          "runs; x: over tfbnn.train's; cpu: the process's CPU seconds (all threads)")


def first_and_warm(results):
    """`(wall, cpu)` of the first run and the medians of the later ones."""
    later = results[1:] or results
    return results[0][:2], tuple(np.median([r[i] for r in later]) for i in (0, 1))


def digits():
    from sklearn.datasets import load_digits

    images, labels = load_digits(return_X_y=True)
    x = (images / 16.0).reshape(-1, 8, 8, 1).astype("float32")
    return x, labels.astype("int32")


def conv_net(dense, n_train, seed=0):
    """Conv2D/pool/flatten trunk, then a dense head built by `dense(units, activation)`."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        dense(64, "relu"),
        dense(10, None),
    ])


def per_epoch_seconds(model, x, y, epochs, compile_kwargs):
    model.compile(keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  **compile_kwargs)
    model.fit(x, y, epochs=1, batch_size=BATCH, verbose=0)  # tracing and compiling
    start = time.perf_counter()
    model.fit(x, y, epochs=epochs, batch_size=BATCH, verbose=0)
    return (time.perf_counter() - start) / epochs


def conv(args):
    x, y = digits()
    n = len(x)
    heads = {
        "Dense": lambda units, act: keras.layers.Dense(units, activation=act),
        "DenseFlipout": lambda units, act: tfbnn.layers.DenseFlipout(
            units, activation=act, kl_weight=1 / n),
        "DenseLocalReparam.": lambda units, act: tfbnn.layers.DenseLocalReparameterization(
            units, activation=act, kl_weight=1 / n),
    }
    epochs = max(2, args.conv_epochs)
    print(f"\ndigits: {n} images 8x8, conv trunk + dense head, batch {BATCH}, "
          f"{epochs} timed epochs after one warm-up, median of {args.repeats} runs")
    print(f"{'compile':>16} | " + " ".join(f"{h:>18}" for h in heads) + " | ratios to Dense")
    for name, kwargs in FIT_SETTINGS.items():
        seconds = {h: np.median([per_epoch_seconds(conv_net(make, n, seed), x, y, epochs, kwargs)
                                 for seed in range(args.repeats)])
                   for h, make in heads.items()}
        ratios = " ".join(f"{seconds[h] / seconds['Dense']:.2f}" for h in heads if h != "Dense")
        print(f"{name:>16} | " + " ".join(f"{seconds[h] * 1e3:15.1f} ms" for h in heads)
              + f" | {ratios}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=400, help="recipe epochs (README: 400)")
    parser.add_argument("--conv-epochs", type=int, default=5, help="timed digits epochs")
    parser.add_argument("--repeats", type=int, default=3, help="runs per setting")
    parser.add_argument("--data-dir", default=None, help="UCI data folder")
    parser.add_argument("--only", choices=["recipe", "conv"], default=None)
    parser.add_argument("--fastest-only", action="store_true",
                        help="time the recipe's model.fit only with its fastest settings "
                             "(tf.data, jit, steps_per_execution), not under each setting")
    args = parser.parse_args(argv)
    if args.only != "conv":
        recipe(args)
    if args.only != "recipe":
        conv(args)


if __name__ == "__main__":
    main()
