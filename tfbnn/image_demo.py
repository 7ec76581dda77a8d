"""The image demo: a Bayesian conv net on scikit-learn's digits, and unseen digits.

`tfbnn.demo.IMAGES_DEMO` says what it does; it is also the help text of
`tfbnn demo --images`. From Python: `run_images_demo("demo_output")`.
"""

from __future__ import annotations

import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from tfbnn import metrics
from tfbnn.datasets.digits import IN_DISTRIBUTION_DIGITS, digit_images
from tfbnn.demo import IMAGES_PLOT_FILE as PLOT_FILE
from tfbnn.estimators import BayesianClassifier
from tfbnn.posthoc import LastLayerLaplace

METHODS = ("deterministic", "vi", "laplace", "ensemble")
"""The models the image demo compares."""

EPOCHS = {"deterministic": 40, "vi": 200, "ensemble": 40}
"""Training epochs per method (Laplace reuses the deterministic net)."""

QUICK_EPOCHS = 2
SEED = 0
N_SAMPLES = 100


def conv_net(input_shape, n_outputs: int) -> keras.Model:
    """The demo's network: two 3x3 convolutions, max pooling and a dense layer.

    A function of the input shape and the output width, as
    `BayesianClassifier(network=...)` takes it.
    """
    return keras.Sequential([
        keras.Input(input_shape),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(n_outputs),
    ], name="conv_net")


def _deterministic(data, epochs: int, verbose: int):
    keras.utils.set_random_seed(SEED)
    model = conv_net(data.x_train.shape[1:], len(IN_DISTRIBUTION_DIGITS))
    model.compile(keras.optimizers.Adam(1e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(data.x_train, data.y_train, epochs=epochs, batch_size=32, verbose=0)
    return model


def _softmax_scores(model, data) -> dict:
    """Accuracy and ECE of a plain net, and its OOD AUROC by softmax confidence."""
    probs_test = keras.ops.convert_to_numpy(keras.ops.softmax(model.predict(data.x_test, verbose=0)))
    probs_ood = keras.ops.convert_to_numpy(keras.ops.softmax(model.predict(data.x_ood, verbose=0)))
    return {
        "accuracy": metrics.accuracy(data.y_test, probs_test),
        "ece": metrics.expected_calibration_error(data.y_test, probs_test),
        "ood_auroc": metrics.ood_auroc(1 - probs_test.max(1), 1 - probs_ood.max(1)),
        "ood_measure": "max softmax",
    }


def _predictive_scores(test, ood, y_test) -> dict:
    """Accuracy and ECE of a predictive, and its OOD AUROC by mutual information."""
    return {
        "accuracy": metrics.accuracy(y_test, test),
        "ece": metrics.expected_calibration_error(y_test, test),
        "ood_auroc": metrics.ood_auroc(test, ood, measure="mutual_information"),
        "ood_measure": "mutual information",
    }


def run_images_demo(out_dir="demo_output", methods=METHODS, quick: bool = False,
                    verbose: int = 1) -> dict:
    """Trains the demo's models on digits 0-4 and scores them on held-out and unseen digits.

    Args:
        out_dir: folder for `digits_uncertain.png` (created if needed).
        methods: some of `METHODS`; "laplace" needs "deterministic" (it is fitted on it).
        quick: train for `QUICK_EPOCHS` epochs, to check that everything works.
        verbose: 1 prints the table; 0 is silent.

    Returns:
        `{method: {"accuracy", "ece", "ood_auroc", "ood_measure", "seconds"}}`.
    """
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ValueError(f"Unknown methods {unknown}; the image demo has {list(METHODS)}")
    data = digit_images(seed=SEED)
    epochs = {name: QUICK_EPOCHS if quick else n for name, n in EPOCHS.items()}
    results, predictives, plain = {}, {}, None
    for name in [m for m in METHODS if m in methods]:
        start = time.perf_counter()
        if name == "deterministic" or (name == "laplace" and plain is None):
            plain = _deterministic(data, epochs["deterministic"], verbose)
        if name == "deterministic":
            scores = _softmax_scores(plain, data)
        else:
            test, ood = _bayesian(name, plain, data, epochs)
            predictives[name] = (test, ood)
            scores = _predictive_scores(test, ood, data.y_test)
        results[name] = {**scores, "seconds": time.perf_counter() - start}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if predictives:
        shown = "vi" if "vi" in predictives else next(iter(predictives))
        _plot_uncertain(data, *predictives[shown], shown, out_dir / PLOT_FILE)
    if verbose:
        print(results_table(results).to_string())
    return results


def results_table(results: dict) -> pd.DataFrame:
    """`run_images_demo`'s results as a table: one row per method, rounded."""
    table = pd.DataFrame(results).T[["accuracy", "ece", "ood_auroc", "ood_measure", "seconds"]]
    table.columns = ["accuracy", "ECE", "OOD AUROC", "OOD ranked by", "seconds"]
    numbers = ["accuracy", "ECE", "OOD AUROC", "seconds"]
    table[numbers] = table[numbers].astype(float).round(3)
    return table


def _bayesian(name, plain, data, epochs):
    """Predictives on the test and the unseen digits of one Bayesian method."""
    if name == "laplace":
        laplace = LastLayerLaplace(plain, likelihood="categorical").fit(data.x_train, data.y_train)
        return (laplace.predictive(data.x_test, n_samples=N_SAMPLES, seed=SEED),
                laplace.predictive(data.x_ood, n_samples=N_SAMPLES, seed=SEED))
    model = BayesianClassifier(network=conv_net, inference=name, epochs=epochs[name],
                               random_state=SEED, n_samples=N_SAMPLES)
    model.fit(data.x_train, data.y_train)
    return model.predict_distribution(data.x_test), model.predict_distribution(data.x_ood)


def _plot_uncertain(data, test, ood, method: str, path: Path, n: int = 8) -> None:
    """Rows: the unseen digits the model is most and least unsure of, then the known ones."""
    from matplotlib.figure import Figure

    rows = []
    for images, predictive, kind in ((data.x_ood, ood, "unseen"), (data.x_test, test, "known")):
        mi = np.asarray(predictive.mutual_information)
        order = np.argsort(mi)
        rows.append((f"{kind}, most unsure", images, predictive, order[::-1][:n], mi))
        rows.append((f"{kind}, most sure", images, predictive, order[:n], mi))
    figure = Figure(figsize=(1.3 * n, 1.6 * len(rows)), layout="constrained")
    axes = figure.subplots(len(rows), n)
    for (title, images, predictive, picks, mi), row in zip(rows, axes):
        row[0].set_title(title, loc="left", fontsize=9)
        for ax, i in zip(row, picks):
            ax.imshow(images[i, :, :, 0], cmap="gray_r", vmin=0, vmax=1)
            ax.set_xlabel(f"says {predictive.predicted_class[i]}\nMI {mi[i]:.2f}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    figure.suptitle(f"Digits 0-4 seen in training; mutual information of {method}")
    figure.savefig(path, dpi=100)
