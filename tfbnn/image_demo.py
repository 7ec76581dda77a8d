"""The image demo: a Bayesian conv net on scikit-learn's digits, and unseen digits.

`tfbnn.demo.IMAGES_DEMO` says what it does; it is also the help text of
`tfbnn demo --images`. From Python: `run_images_demo("demo_output")`, or
`run_images_demo("demo_output", seeds=range(5))` for the mean and standard
deviation over five random splits.

Every model shares one prior and one training recipe, so that they differ only in
how they treat the weights' uncertainty:

* the deterministic net is the maximum a posteriori (MAP) network under a Normal
  prior `N(0, 1 / PRIOR_PRECISION)` on every weight (weight decay
  `PRIOR_PRECISION / (2 N)` on the mean loss), the network the Laplace
  approximation assumes it is given;
* last-layer Laplace is fitted around that MAP net (`tfbnn.posthoc.LastLayerLaplace`,
  as the estimators' `inference="laplace"` does it): the prior precision maximises the
  marginal likelihood jointly with the last layer's exact MAP under it
  (`refine_map=True`, MacKay, 1992), since the evidence is only valid at the MAP of
  the precision it is evaluated at;
* VI starts from the MAP net (`tfbnn.bayesianize` with MOPED's posterior scales
  `MOPED_DELTA * |w|`, Krishnan et al., 2020) and maximises the ELBO under the same
  prior;
* the deep ensemble is `N_MEMBERS` MAP nets from different initialisations
  (Lakshminarayanan et al., 2017).

All are trained with Adam and early stopping on a validation split of the training
images (`VALIDATION_FRACTION`, patience `PATIENCE`), never on the test images.

#### References

MacKay, D. J. C. (1992). A practical Bayesian framework for backpropagation
networks. *Neural Computation*, 4(3).

Krishnan, R., Subedar, M. & Tickoo, O. (2020). Specifying weight priors in Bayesian
deep neural networks with empirical Bayes. *AAAI*.

Lakshminarayanan, B., Pritzel, A. & Blundell, C. (2017). Simple and scalable
predictive uncertainty estimation using deep ensembles. *NeurIPS*.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from tfbnn import metrics
from tfbnn.convert import bayesianize, with_weight_decay
from tfbnn.datasets.digits import IN_DISTRIBUTION_DIGITS, digit_images
from tfbnn.demo import IMAGES_PLOT_FILE as PLOT_FILE
from tfbnn.inference.stochastic import sample_with_seed
from tfbnn.likelihoods import Categorical
from tfbnn.posthoc import DeepEnsemble, LastLayerLaplace
from tfbnn.predictive import Predictive
from tfbnn.training import train

METHODS = ("deterministic", "vi", "laplace", "ensemble")
"""The models the image demo compares."""

MAX_EPOCHS = 100
"""Most training epochs of every model; early stopping usually ends training sooner."""

PATIENCE = 10
"""Epochs without a better validation NLL before training stops (best weights kept)."""

VALIDATION_FRACTION = 0.2
"""Share of the training images held out for early stopping."""

PRIOR_PRECISION = 1.0
"""Precision of the Normal prior on every weight: `N(0, 1)`, tfbnn's default prior."""

MOPED_DELTA = 0.1
"""VI's initial posterior scale relative to each MAP weight (MOPED)."""

N_MEMBERS = 5
QUICK_EPOCHS = 2
SEED = 0
N_SAMPLES = 100
TARGET_ACCURACY_GAP = 0.01
"""Accuracy a Bayesian net may lose against the deterministic one and still meet its target."""

SCORES = ("accuracy", "ece", "ood_auroc")


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


def map_net(input_shape, n_outputs: int, n_train: int) -> keras.Model:
    """`conv_net` whose mean training loss plus its weight decay is the negative log
    posterior under the `N(0, 1 / PRIOR_PRECISION)` prior, divided by `n_train`."""
    return with_weight_decay(conv_net(input_shape, n_outputs), PRIOR_PRECISION / (2.0 * n_train))


def _training(data, epochs: int, seed: int) -> dict:
    """The options every model is trained with: Adam, early stopping on the validation split."""
    return {"epochs": epochs, "batch_size": 32, "validation_data": (data.x_val, data.y_val),
            "patience": PATIENCE, "seed": seed, "verbose": 0}


def _deterministic(data, epochs: int, seed: int):
    keras.utils.set_random_seed(seed)
    model = map_net(data.x_train.shape[1:], len(IN_DISTRIBUTION_DIGITS), len(data.x_train))
    train(model, _likelihood(), data.x_train, data.y_train, **_training(data, epochs, seed))
    return model


def _likelihood() -> Categorical:
    return Categorical(len(IN_DISTRIBUTION_DIGITS))


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
                    verbose: int = 1, seeds=(SEED,)) -> dict:
    """Trains the demo's models on digits 0-4 and scores them on held-out and unseen digits.

    Args:
        out_dir: folder for `digits_uncertain.png` (created if needed; drawn from
            the first split).
        methods: some of `METHODS`; "laplace" and "vi" start from the deterministic
            net, which is trained for them when not asked for.
        quick: train for `QUICK_EPOCHS` epochs, to check that everything works.
        verbose: 1 prints the table; 0 is silent.
        seeds: one random train/validation/test split of the known digits (and
            training run) per seed; the scores are averaged over them.

    Returns:
        `{method: {"accuracy", "ece", "ood_auroc", "ood_measure", "seconds",
        "meets_target", "splits"}}`: the means over the splits, whether the mean
        scores meet the targets (`meets_target`, None for the deterministic net or
        without it), and `splits`, the per-split scores.
    """
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ValueError(f"Unknown methods {unknown}; the image demo has {list(METHODS)}")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must name at least one split, got none")
    methods = [m for m in METHODS if m in methods]
    splits = []
    for i, seed in enumerate(seeds):
        plot = Path(out_dir) / PLOT_FILE if i == 0 else None
        splits.append(run_split(seed, methods, QUICK_EPOCHS if quick else MAX_EPOCHS, plot))
    results = summarise(splits)
    if verbose:
        print(results_table(results).to_string())
    return results


def run_split(seed: int, methods, epochs: int, plot_path=None) -> dict:
    """Scores of `methods` on the split `seed` (`{method: scores}`); draws the figure of
    the first Bayesian method (VI if asked for) at `plot_path` when given."""
    data = digit_images(seed=seed, validation_fraction=VALIDATION_FRACTION)
    results, predictives, plain = {}, {}, None
    for name in methods:
        start = time.perf_counter()
        if plain is None and name in ("deterministic", "vi", "laplace"):
            plain = _deterministic(data, epochs, seed)
        if name == "deterministic":
            scores = _softmax_scores(plain, data)
        else:
            test, ood = _bayesian(name, plain, data, epochs, seed)
            predictives[name] = (test, ood)
            scores = _predictive_scores(test, ood, data.y_test)
        results[name] = {**scores, "seconds": time.perf_counter() - start}
    if predictives and plot_path is not None:
        Path(plot_path).parent.mkdir(parents=True, exist_ok=True)
        shown = "vi" if "vi" in predictives else next(iter(predictives))
        _plot_uncertain(data, *predictives[shown], shown, Path(plot_path))
    return results


def summarise(splits) -> dict:
    """Per-split results (`run_split`'s) as means, with the targets checked on the means."""
    results = {}
    for name in splits[0]:
        rows = [split[name] for split in splits]
        mean = {key: float(np.mean([row[key] for row in rows])) for key in (*SCORES, "seconds")}
        sd = {f"{key}_sd": float(np.std([row[key] for row in rows])) for key in SCORES}
        results[name] = {**mean, **sd, "ood_measure": rows[0]["ood_measure"], "splits": rows}
    for name, row in results.items():
        row["meets_target"] = meets_target(row, results.get("deterministic"), name)
    return results


def meets_target(scores: dict, deterministic: dict | None, name: str):
    """Whether a Bayesian method's scores meet issue 13's targets against the
    deterministic net's: accuracy within `TARGET_ACCURACY_GAP`, ECE no worse, OOD AUROC
    higher. None for the deterministic net itself or without it."""
    if deterministic is None or name == "deterministic":
        return None
    return bool(scores["accuracy"] >= deterministic["accuracy"] - TARGET_ACCURACY_GAP
                and scores["ece"] <= deterministic["ece"]
                and scores["ood_auroc"] > deterministic["ood_auroc"])


def results_table(results: dict) -> pd.DataFrame:
    """`run_images_demo`'s results as a table: one row per method, rounded; with several
    splits, each score as `mean ± sd`."""
    several = len(next(iter(results.values()))["splits"]) > 1
    columns = {"accuracy": "accuracy", "ece": "ECE", "ood_auroc": "OOD AUROC"}
    table = pd.DataFrame(index=list(results))
    for key, title in columns.items():
        if several:
            table[title] = [f"{row[key]:.3f} ± {row[f'{key}_sd']:.3f}" for row in results.values()]
        else:
            table[title] = [round(row[key], 3) for row in results.values()]
    table["OOD ranked by"] = [row["ood_measure"] for row in results.values()]
    table["meets target"] = [row["meets_target"] for row in results.values()]
    table["seconds"] = [round(row["seconds"], 1) for row in results.values()]
    return table


def _bayesian(name, plain, data, epochs, seed):
    """Predictives on the test and the unseen digits of one Bayesian method."""
    if name == "laplace":
        laplace = LastLayerLaplace(plain, likelihood="categorical", refine_map=True).fit(
            data.x_train, data.y_train)
        return (laplace.predictive(data.x_test, n_samples=N_SAMPLES, seed=seed),
                laplace.predictive(data.x_ood, n_samples=N_SAMPLES, seed=seed))
    if name == "ensemble":
        build = functools.partial(map_net, data.x_train.shape[1:], len(IN_DISTRIBUTION_DIGITS),
                                  len(data.x_train))
        ensemble = DeepEnsemble(build, N_MEMBERS, "categorical", seed=seed)
        fit = _training(data, epochs, seed)
        del fit["seed"]
        ensemble.fit(data.x_train, data.y_train, **fit)
        return ensemble.predictive(data.x_test), ensemble.predictive(data.x_ood)
    # The MAP net's weights without its weight decay: the KL term holds the prior.
    start = conv_net(data.x_train.shape[1:], len(IN_DISTRIBUTION_DIGITS))
    start.set_weights(plain.get_weights())
    model = bayesianize(start, moped_delta=MOPED_DELTA, kl_weight=1.0 / len(data.x_train),
                        seed=seed)
    train(model, _likelihood(), data.x_train, data.y_train, **_training(data, epochs, seed))
    return tuple(Predictive(_likelihood(), sample_with_seed(model, x, N_SAMPLES, seed))
                 for x in (data.x_test, data.x_ood))


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
