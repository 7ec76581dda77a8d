"""The demos: a Bayesian neural network on concrete strength, and every inference method on a gap.

`CONCRETE_DEMO` and `METHODS_DEMO` say what each demo does; they are also the
help text of `tfbnn demo`. Run them with `tfbnn demo` and `tfbnn demo --methods`
(or name some: `--methods vi hmc`) or, from Python, with
`run_demo("demo_output")` and `run_methods_demo("demo_output")`.

The texts and settings are importable without TensorFlow (`tfbnn demo --help`
shows them at once); the functions import the library when they run.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np

from tfbnn.data.tabular import prepare_features, read_table
from tfbnn.datasets import CONCRETE_TARGET, GAP_INPUTS, concrete_path, gap_data, gap_ratio

SUMMARY = "Train a Bayesian neural network on concrete strength and check its uncertainty."
"""The demo in one line."""

CONCRETE_DEMO = (
    "The demo fits BayesianRegressor with its default settings to 90% of the bundled UCI "
    "concrete data (1030 mixtures, compressive strength in MPa), then scores the held-out "
    "10%: RMSE, log-likelihood per point, and how often the 95% predictive interval holds "
    "the measured strength (about 95% if the uncertainty is calibrated). It writes "
    "demo_predictions.png (predicted against true strength with 95% error bars, and "
    "interval coverage at every level) and saves the model in model/, usable with tfbnn "
    "predict.")
"""What `run_demo` does."""

METHODS_DEMO = (
    "The methods demo compares every inference method (VI, MC dropout, a deep ensemble, "
    "SWAG, Laplace, HMC and SG-MCMC) on 1-D data with a gap: y = sin(x) + noise with no "
    "inputs in (-1, 1). It fits each with the same network, writes methods_gap.png (one "
    "panel per method: predictive mean, total and epistemic 95% bands, training data) and "
    "reports each method's gap ratio, its mean epistemic variance in the gap over that on "
    "the training inputs (above 1 when the method knows it has seen no data there).")
"""What `run_methods_demo` does."""

IMAGES_DEMO = (
    "The image demo trains a small convolutional network on scikit-learn's 8x8 handwritten "
    "digits 0-4 (offline), deterministically and as Bayesian networks (variational "
    "inference on every layer, a last-layer Laplace approximation of the deterministic "
    "net, and a deep ensemble), then scores held-out digits 0-4 (accuracy, expected "
    "calibration error) and how well each tells the unseen digits 5-9 apart from the known "
    "ones (AUROC; the Bayesian nets rank inputs by mutual information, the deterministic "
    "one by its softmax confidence). It writes digits_uncertain.png: the unseen and known "
    "digits the Bayesian net is least and most sure about. All models share a Normal(0, 1) "
    "prior: the deterministic net is its MAP, VI starts from it (MOPED), Laplace is fitted "
    "around it and the ensemble is five MAP nets; all stop early on a validation split of "
    "the training images. --seeds N averages the scores over N random splits.")
"""What `tfbnn.image_demo.run_images_demo` does."""

IMAGES_PLOT_FILE = "digits_uncertain.png"
"""The image demo's figure."""

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
    from sklearn.model_selection import train_test_split

    from tfbnn import metrics
    from tfbnn.estimators import BayesianRegressor
    from tfbnn.model_folder import check_save_destination, model_meta, save_model
    from tfbnn.report import format_table

    out_dir = Path(out_dir)
    # Refuse before training, not after, if the model folder would clobber files.
    check_save_destination(out_dir / MODEL_DIR)
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
    save_model(model, model_path, meta=model_meta(table, encoder, header=True, sep=","))
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

    from tfbnn import plotting

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


# -- every inference method on 1-D data with a gap -----------------------------------------

METHODS_PLOT_FILE = "methods_gap.png"
"""The figure `run_methods_demo` writes into its folder."""

METHOD_TITLES = {
    "vi": "VI (Bayes by backprop)",
    "mc_dropout": "MC dropout",
    "ensemble": "deep ensemble",
    "swag": "MultiSWAG",
    "laplace": "Laplace (last layer)",
    "hmc": "HMC (NUTS)",
    "sgmcmc": "SG-MCMC (cyclical SGHMC)",
}
"""Panel titles of the methods demo: a method's name and its variant at these settings."""

METHODS_N_TRAIN = 200
METHODS_HIDDEN_UNITS = (50, 50)
METHODS_EPOCHS = 200
QUICK_METHODS_EPOCHS = 20
"""Training epochs of the methods demo with `quick=True` (HMC takes a few draws instead)."""

PLOT_X = np.linspace(-4.0, 4.0, 321)
"""Inputs of the methods demo's plot: the data, the gap and a little beyond."""

# Per-method estimator settings beyond the shared network and epochs: MC dropout as in its
# tests on the gap data; VI at a learning rate of 1e-2 (at the default 1e-3, 200 epochs are
# too few for its epistemic variance in the gap to rise above that on the data); an HMC
# short enough for a demo (two chains, short warm-up, shallow trees).
_METHOD_SETTINGS = {
    "vi": {"learning_rate": 1e-2},
    "mc_dropout": {"inference_options": {"input_dropout": False}},
    "hmc": {"inference_options": {"n_chains": 2, "num_warmup": 200, "num_samples": 100,
                                  "max_tree_depth": 6}},
}
_QUICK_SETTINGS = {
    "swag": {"inference_options": {"swag_epochs": 4, "n_models": 2}},
    "ensemble": {"inference_options": {"n_members": 2}},
    "hmc": {"inference_options": {"n_chains": 1, "num_warmup": 20, "num_samples": 10,
                                  "max_tree_depth": 3, "map_steps": 100}},
    "sgmcmc": {"inference_options": {"n_cycles": 2}},
    # The marginal likelihood's noise needs the full GGN of all weights, too slow for a check.
    "laplace": {"inference_options": {"sigma_noise": "map"}},
}


def methods_regressor(method: str, *, quick: bool = False, epochs=None, seed: int = 0):
    """The unfitted `BayesianRegressor` the methods demo uses for `method`.

    Every method gets the same network, `METHODS_HIDDEN_UNITS`, and
    `METHODS_EPOCHS` (`QUICK_METHODS_EPOCHS` with `quick`, or `epochs`), and
    otherwise the estimator's defaults except: VI a learning rate of 1e-2, MC
    dropout none on the input, and HMC (which does not train by epochs) 2
    chains of 200 warm-up steps and 100 draws, with trees of depth at most 6.
    `quick` also shrinks the ensembles and the sampling runs and turns XLA
    compilation off, which costs more than it saves in such short runs.
    """
    from tfbnn.estimators import BayesianRegressor

    check_methods([method])
    if epochs is None:
        epochs = QUICK_METHODS_EPOCHS if quick else METHODS_EPOCHS
    settings = {"hidden_units": METHODS_HIDDEN_UNITS, "epochs": epochs,
                "n_samples": 30 if quick else 100, **_METHOD_SETTINGS.get(method, {})}
    options = dict(settings.pop("inference_options", {}))
    if quick:
        options.update(_QUICK_SETTINGS.get(method, {}).get("inference_options", {}))
        options["jit_compile"] = False
    return BayesianRegressor(inference=method, inference_options=options or None,
                             random_state=seed, verbose=0, **settings)


def default_methods() -> list[str]:
    """Every registered inference method, those of `METHOD_TITLES` first in its order."""
    from tfbnn.inference import INFERENCE

    names = INFERENCE.names()
    return [m for m in METHOD_TITLES if m in names] + [m for m in names if m not in METHOD_TITLES]


def check_methods(methods, name: str = "methods") -> list[str]:
    """`methods` as a list if it names registered inference methods, each once.

    Args:
        methods: inference method names.
        name: what to call them in an error (the command line says `--methods`).

    Raises:
        ValueError: If `methods` is empty, or names an unknown method or one twice.
    """
    from tfbnn.inference import INFERENCE

    names = INFERENCE.names()
    methods = list(methods)
    if not methods:
        raise ValueError(f"{name} is empty: give one or more of {names}")
    unknown = [m for m in methods if m not in names]
    if unknown:
        raise ValueError(f"Unknown inference method(s) {unknown}; expected some of {names}")
    repeated = sorted({m for m in methods if methods.count(m) > 1})
    if repeated:
        raise ValueError(f"{name} lists {repeated} more than once")
    return methods


def run_methods_demo(out_dir=DEFAULT_OUT_DIR, methods=None, quick: bool = False, seed: int = 0,
                     *, epochs=None, verbose: int = 1) -> dict:
    """Fits every inference method to 1-D data with a gap and plots them side by side.

    The data are `tfbnn.datasets.gap_data(200, seed)`: `y = sin(x) + noise`
    with x in [-3, -1] and [1, 3]. Each method fits the same network (see
    `methods_regressor`); the figure `methods_gap.png` shows one panel per
    method (`tfbnn.plotting.plot_methods_1d`) with its gap ratio in the title.

    Args:
        out_dir: folder for `methods_gap.png` (created if needed; replaced).
        methods: inference method names, in the order to show them; None for
            every registered method (`default_methods()`: vi, mc_dropout,
            ensemble, swag, laplace, hmc, sgmcmc).
        quick: train briefly, to check the setup.
        seed: seed of the data and of every method's initialisation.
        epochs: training epochs of the methods that train by epochs (all but
            HMC); None for 200, or `QUICK_METHODS_EPOCHS` with `quick`.
        verbose: 1 prints each method's result as it finishes and a table;
            0 is silent.

    Returns:
        A dict from method name, in the order fitted, to a dict of floats:
        `gap_ratio` (mean epistemic variance at x in [-0.5, 0.5] over its mean
        at the training inputs) and `fit_seconds`.
    """
    from tfbnn.inference.diagnostics import ConvergenceWarning

    methods = check_methods(default_methods() if methods is None else methods)
    out_dir = Path(out_dir)
    x, y = gap_data(METHODS_N_TRAIN, seed)
    (_, gap_start), (gap_end, _) = GAP_INPUTS
    if verbose:
        print(f"Fitting {len(methods)} inference method{'s' * (len(methods) > 1)} to "
              f"{len(y)} points of y = sin(x) + noise, with no inputs between {gap_start:g} "
              f"and {gap_end:g}.")
    results, predictives = {}, {}
    for method in methods:
        model = methods_regressor(method, quick=quick, epochs=epochs, seed=seed)
        start = time.perf_counter()
        with warnings.catch_warnings():
            # Short chains on purpose: the demo shows the posterior, not a converged one.
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(x, y)
        seconds = time.perf_counter() - start
        results[method] = {"gap_ratio": gap_ratio(model, x), "fit_seconds": seconds}
        predictives[method] = model.predict_distribution(PLOT_X[:, None])
        if verbose:
            print(f"  {method}: gap ratio {results[method]['gap_ratio']:.3g}, "
                  f"fitted in {seconds:.1f} s")
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_path = out_dir / METHODS_PLOT_FILE
    _plot_methods(x, y, predictives, results, plot_path)
    if verbose:
        print(format_methods_table(results))
        print(f"Plot: {plot_path}")
    return results


def format_methods_table(results: dict) -> str:
    """`run_methods_demo`'s results as a table: method, gap ratio, fit seconds."""
    rows = [("method", "gap ratio", "fit (s)")] + [
        (name, f"{r['gap_ratio']:.3g}", f"{r['fit_seconds']:.1f}") for name, r in results.items()]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(f"{a:<{widths[0]}}  {b:>{widths[1]}}  {c:>{widths[2]}}" for a, b, c in rows)


def _plot_methods(x, y, predictives, results, path: Path) -> None:
    """One panel per method and a last one for the legend."""
    from matplotlib.figure import Figure

    from tfbnn import plotting

    n = len(predictives)
    ncols = min(n + 1, 4)
    nrows = -(-(n + 1) // ncols)
    figure = Figure(figsize=(3.7 * ncols, 3.1 * nrows + 0.6), layout="constrained")
    grid = figure.subplots(nrows, ncols, squeeze=False).ravel()
    titled = {f"{METHOD_TITLES.get(name, name)}\ngap ratio {results[name]['gap_ratio']:.3g}": p
              for name, p in predictives.items()}
    axes = plotting.plot_methods_1d(PLOT_X, titled, x_train=x, y_train=y, level=LEVEL,
                                    axes=grid[:n])
    (_, gap_start), (gap_end, _) = GAP_INPUTS
    for ax in axes:
        ax.axvspan(gap_start, gap_end, color="0.5", alpha=0.08, linewidth=0)
        ax.title.set_fontsize("medium")
    plotting.label_grid(axes, ncols)
    # The legend gets a panel of its own instead of covering the first method's bands.
    handles, labels = axes[0].get_legend_handles_labels()
    axes[0].get_legend().remove()
    legend_ax = grid[n]
    legend_ax.axis("off")
    legend_ax.legend(handles, labels, loc="center", frameon=False)
    for spare in grid[n + 1:]:
        spare.set_visible(False)
    figure.suptitle(
        f"Epistemic uncertainty in a data gap: y = sin(x) + noise, no inputs in "
        f"({gap_start:g}, {gap_end:g})\ngap ratio = mean epistemic variance at |x| <= 0.5 "
        f"over that at the training inputs")
    figure.savefig(path, dpi=110)
