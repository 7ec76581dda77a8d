"""Train a Bayesian neural network on concrete strength and check its uncertainty.

The demo fits `BayesianRegressor` with its default settings to 90% of the
bundled UCI concrete data (1030 mixtures, compressive strength in MPa), then
scores the held-out 10%: RMSE, log-likelihood per point, and how often the 95%
predictive interval holds the measured strength (about 95% if the uncertainty
is calibrated). It writes `demo_predictions.png` (predicted against true
strength with 95% error bars, and interval coverage at every level) and saves
the model in `model/`, usable with `tfbnn predict`.

Run it with `tfbnn demo` or, from Python, `tfbnn.demo.run_demo("demo_output")`.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from tfbnn import metrics, plotting
from tfbnn.cli import check_model_destination, format_table, save_model
from tfbnn.data.tabular import prepare_features, read_table
from tfbnn.datasets import CONCRETE_TARGET, concrete_path
from tfbnn.estimators import BayesianRegressor

DEFAULT_OUT_DIR = "demo_output"
"""Where `tfbnn demo` writes unless given `--out`."""

QUICK_EPOCHS = 5
"""Training epochs with `quick=True`: enough to check the setup, not to fit well."""

TEST_FRACTION = 0.1
SEED = 0
LEVEL = 0.95
PLOT_FILE = "demo_predictions.png"
MODEL_DIR = "model"


def run_demo(out_dir=DEFAULT_OUT_DIR, epochs=None, quick: bool = False, verbose: int = 1) -> dict:
    """Trains on the concrete data, scores the test split, writes a plot and the model.

    The 90/10 train/test split and the network's initialisation are seeded, so
    runs repeat.

    Args:
        out_dir: folder for `demo_predictions.png` and the `model` folder
            (created if needed; an earlier demo's files are replaced).
        epochs: training epochs; None for the estimator's "auto" (400 here), or
            `QUICK_EPOCHS` with `quick`.
        quick: train briefly, to check that everything works.
        verbose: 1 prints what happens, with a progress bar while training; 0 is silent.

    Returns:
        A dict of floats: `test_rmse` (MPa), `test_log_likelihood` (mean log
        predictive density per test point, in nats, of strengths in MPa),
        `test_coverage` (fraction of test strengths inside the 95% interval),
        `mean_interval_width` (MPa), `train_seconds`, and the counts
        `n_train`, `n_test` and `epochs`.
    """
    out_dir = Path(out_dir)
    # Refuse before training, not after, if the model folder would clobber files.
    check_model_destination(out_dir / MODEL_DIR)
    table = read_table(concrete_path(), target=CONCRETE_TARGET, task="regression")
    X, encoder = prepare_features(table.X)
    y = table.y.to_numpy()
    train, test = train_test_split(np.arange(len(y)), test_size=TEST_FRACTION, random_state=SEED)
    if epochs is None:
        epochs = QUICK_EPOCHS if quick else "auto"
    model = BayesianRegressor(epochs=epochs, random_state=SEED, verbose=verbose)
    if verbose:
        print(f"Training a Bayesian neural network on {len(train)} concrete mixtures "
              f"({X.shape[1]} features: ingredients and age) to predict compressive strength; "
              f"{len(test)} mixtures are held out for testing.")
    start = time.perf_counter()
    model.fit(X[train], y[train])
    seconds = time.perf_counter() - start
    predictive = model.predict_distribution(X[test])
    scores = metrics.evaluate(predictive, y=y[test], level=LEVEL)
    results = {
        "test_rmse": scores["rmse"],
        "test_log_likelihood": -scores["nll"],
        "test_coverage": scores["coverage"],
        "mean_interval_width": scores["interval_width"],
        "train_seconds": seconds,
        "n_train": len(train),
        "n_test": len(test),
        "epochs": len(model.history_["loss"]),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_path = out_dir / PLOT_FILE
    _plot(y[test], predictive, plot_path)
    model_path = out_dir / MODEL_DIR
    save_model(model, model_path, table=table, encoder=encoder, header=True, sep=",")
    if verbose:
        print(format_table([
            ("test RMSE", f"{results['test_rmse']:.2f} MPa"),
            ("test log-likelihood", f"{results['test_log_likelihood']:.3f} per point"),
            (f"{LEVEL:.0%} interval coverage",
             f"{results['test_coverage']:.1%} of test mixtures (ideal: {LEVEL:.0%})"),
            (f"{LEVEL:.0%} interval width", f"{results['mean_interval_width']:.1f} MPa on average"),
            ("training", f"{results['epochs']} epochs in {seconds:.1f} s"),
            ("plot", plot_path),
            ("model", model_path),
        ]))
        print(f"Predict with the saved model: tfbnn predict {model_path} DATA.csv\n"
              f"(DATA.csv with the columns of {concrete_path()})")
    return results


def _plot(y_true, predictive, path: Path) -> None:
    """Predicted against true strength with error bars, and the coverage curve."""
    # A bare Figure renders with Agg and leaves pyplot's global state alone.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4.8), layout="constrained")
    left, right = figure.subplots(1, 2)
    plotting.plot_predicted_vs_true(y_true, predictive, level=LEVEL, ax=left)
    left.set_xlabel("measured strength (MPa)")
    left.set_ylabel("predicted strength (MPa)")
    left.set_title("Test mixtures: predictive mean and 95% interval")
    plotting.plot_coverage(y_true, predictive, ax=right)
    right.set_title("Are the intervals calibrated?")
    figure.suptitle("Bayesian neural network on UCI concrete compressive strength")
    figure.savefig(path, dpi=120)
