"""The UCI regression benchmark, run by the published protocol and tabled.

    from tfbnn.benchmarks import run_uci_benchmark
    summary = run_uci_benchmark(["boston", "yacht"], out_dir="benchmark_results/uci")

    tfbnn benchmark uci --datasets boston yacht --out benchmark_results/uci

The protocol of Hernández-Lobato & Adams (2015), as Gal & Ghahramani (2016),
Lakshminarayanan et al. (2017) and Wu et al. (2019) use it: the published
train/test splits (`tfbnn.data.load_uci`); inputs and targets standardised with
the training split's statistics (`BayesianRegressor` does this itself); one
hidden layer of `n_hidden` ReLU units (50; 100 for protein); 10 × `n_epochs`
training epochs (400; 200 for protein); test RMSE of the predictive mean and
test log-likelihood per point, both in original units; mean ± standard error
over splits (`tfbnn.benchmarks.tables`). Hyperparameters are the estimator's
fixed defaults: nothing is tuned, least of all on test data. Each split is
seeded with its index.

With `out_dir`, one row per finished split is added to `results.csv` as soon as
the split finishes, and splits already there are skipped: an interrupted run
continues where it stopped when started again with the same arguments. The
summary (`summary.md`, `summary.csv`, `summary.json`) covers every row of
`results.csv`, so data sets run at different times share one table.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from tfbnn import inference as inference_lib
from tfbnn.benchmarks.tables import summarise, write_summary
from tfbnn.data.uci import ENV_VAR, UCI_DATASETS, default_data_dir, load_uci
from tfbnn.estimators import BayesianRegressor
from tfbnn.files import write_text_atomic
from tfbnn.validation import check_int, check_option

EPOCH_FACTOR = 10
"""Training epochs are this many times the data set's `n_epochs` (the 10× of MC dropout)."""
QUICK_SPLITS = 2
"""Splits per data set in a quick run."""
QUICK_EPOCHS = 20
"""Training epochs in a quick run."""
DEFAULT_OUT_DIR = Path("benchmark_results") / "uci"
"""Where the command line writes, unless `--out` is given."""
QUICK_OUT_DIR = Path("benchmark_results") / "uci-quick"
"""Where the command line writes a `--quick` run, so it never mixes with real results."""
RESULTS_FILE = "results.csv"

# One row per finished split, keyed by (dataset, method, split); `epochs`,
# `hidden_units` and `options` must agree within a (dataset, method) for its
# splits to be averaged.
_SETTINGS = ("epochs", "hidden_units", "options")
_COLUMN_TYPES = {
    "dataset": str, "method": str, "split": "int64", "rmse": "float64",
    "test_ll": "float64", "fit_seconds": "float64", "n_train": "int64", "n_test": "int64",
    "epochs": "int64", "hidden_units": str, "options": str, "seed": "int64",
    "n_samples": "int64", "n_splits": "int64",
}
RESULT_COLUMNS = tuple(_COLUMN_TYPES)
"""The columns of `results.csv`, in order."""


def run_uci_benchmark(
    datasets: Sequence[str] | None = None,
    splits: int | Sequence[int] | None = None,
    method: str = "vi",
    *,
    data_dir=None,
    out_dir=None,
    quick: bool = False,
    epochs: int | None = None,
    hidden_units: int | Sequence[int] | None = None,
    method_options: dict | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Runs the UCI regression benchmark and returns its summary table.

    Everything that could stop the run (unknown names, missing data, bad
    options, settings that clash with `out_dir`'s earlier results) is checked
    before the first network is trained.

    Args:
        datasets: Names from `tfbnn.data.UCI_DATASETS`; default all nine.
        splits: Split indices to run, or an integer `n` for the first `n`
            splits of each data set (all of them if it has fewer); default all
            (`QUICK_SPLITS` with `quick`).
        method: A registered inference method (`tfbnn.inference.INFERENCE.names()`).
        data_dir: Folder of the UCI data set folders; default `$TFBNN_UCI_DIR`.
        out_dir: Folder for `results.csv` and the summary files. With None
            nothing is written and nothing is resumed.
        quick: A smoke test: `QUICK_SPLITS` splits of `QUICK_EPOCHS` epochs.
            Not comparable with the published numbers.
        epochs: Training epochs; default 10 × the data set's `n_epochs`.
        hidden_units: Hidden-layer widths; default one layer of the data set's
            `n_hidden` units.
        method_options: Keyword options of the inference method.
        progress: Show a progress bar (on stderr).

    Returns:
        The summary, one row per (data set, method); see `summarise`.

    Raises:
        FileNotFoundError: If the data folder or a data set in it is missing.
        ValueError: For unknown data sets or methods, splits out of range, or
            settings that differ from those of `out_dir/results.csv`.
    """
    names = _check_datasets(datasets)
    inference_lib.get(method, method_options)  # unknown names or options fail here, not mid-run
    options = json.dumps(method_options or {}, sort_keys=True, default=repr)
    hidden = None if hidden_units is None else _check_widths(hidden_units)
    if epochs is not None:
        epochs = check_int("epochs", epochs, minimum=1)
    jobs = _plan(_load_all(names, data_dir), QUICK_SPLITS if splits is None and quick else splits,
                 epochs or (QUICK_EPOCHS if quick else None), hidden)
    path = None if out_dir is None else Path(out_dir) / RESULTS_FILE
    results = read_results(path) if path is not None and path.exists() else _empty_results()
    _check_settings(results, jobs, method, options, path)
    done = set(zip(results["dataset"], results["method"], results["split"]))
    todo = [job for job in jobs if (job[0].name, method, job[1]) not in done]
    results = _run_jobs(todo, results, method, method_options, options, path, progress)
    summary = summarise(results)
    if out_dir is not None:
        write_summary(summary, out_dir)
    return summary


def _plan(loaded, splits, epochs, hidden) -> list[tuple]:
    """`(data set, split index, settings)` for every split to run, in order.

    The settings are `epochs` (default: `EPOCH_FACTOR` × the data set's
    `n_epochs`) and `hidden_units` (default: one layer of its `n_hidden` units).
    """
    jobs = []
    for data in loaded:
        settings = {"epochs": epochs or EPOCH_FACTOR * data.n_epochs,
                    "hidden_units": hidden or (data.n_hidden,)}
        jobs += [(data, k, settings) for k in _split_indices(data, splits)]
    return jobs


def _run_jobs(todo, results, method, method_options, options, path, progress) -> pd.DataFrame:
    """Runs every split of `todo`, adding its row to `results` and to `path` at once."""
    bar = tqdm(total=len(todo), unit="split", file=sys.stderr, dynamic_ncols=True,
               disable=not progress)  # on stderr: stdout stays free for the table
    with bar:
        for data, k, settings in todo:
            bar.set_description(f"{data.name} split {k} ({method})")
            row = _run_split(data, k, method, method_options, options, **settings)
            new = pd.DataFrame([row])
            results = _as_results(pd.concat([results, new], ignore_index=True) if len(results)
                                  else new)
            if path is not None:
                write_text_atomic(path, results.to_csv(index=False))
            bar.set_postfix(rmse=f"{row['rmse']:.3g}", ll=f"{row['test_ll']:.3g}")
            bar.update(1)
    return results


def _run_split(data, k, method, method_options, options, *, epochs, hidden_units) -> dict:
    """Trains on split `k` and returns its `results.csv` row."""
    X_train, y_train, X_test, y_test = data.split(k)
    model = BayesianRegressor(hidden_units=hidden_units, epochs=epochs, inference=method,
                              inference_options=method_options, random_state=k)
    start = time.perf_counter()
    model.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    dist = model.predict_distribution(X_test)
    row = {
        "dataset": data.name, "method": method, "split": k,
        "rmse": float(np.sqrt(np.mean((np.asarray(dist.mean) - y_test) ** 2))),
        "test_ll": float(np.mean(dist.log_prob(y_test))),
        "fit_seconds": seconds, "n_train": len(y_train), "n_test": len(y_test),
        "epochs": epochs, "hidden_units": _widths_text(hidden_units), "options": options,
        "seed": k, "n_samples": model.n_samples, "n_splits": data.n_splits,
    }
    # Every fit builds new models and traced functions; clearing them keeps
    # memory flat over a few hundred fits.
    keras.backend.clear_session()
    return row


# -- checks and loading -------------------------------------------------------------


def _check_datasets(datasets) -> list[str]:
    if datasets is None:
        return list(UCI_DATASETS)
    names = [datasets] if isinstance(datasets, str) else list(datasets)
    if not names:
        raise ValueError("datasets is empty; name at least one of " f"{list(UCI_DATASETS)}")
    return list(dict.fromkeys(check_option("dataset", name, UCI_DATASETS) for name in names))


def _check_widths(hidden_units) -> tuple[int, ...]:
    widths = (hidden_units,) if isinstance(hidden_units, int | np.integer) else hidden_units
    widths = tuple(check_int("hidden_units", w, minimum=1) for w in widths)
    if not widths:
        raise ValueError("hidden_units is empty; give at least one layer width")
    return widths


def _widths_text(widths) -> str:
    return ",".join(str(w) for w in widths)


def _load_all(names, data_dir) -> list:
    """Loads every requested data set, so a missing one fails before any training."""
    root = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    if not root.is_dir():
        raise FileNotFoundError(
            f"UCI data folder {root} does not exist. Pass data_dir= (--data-dir) or set "
            f"${ENV_VAR} to the folder holding {list(UCI_DATASETS)}; tfbnn never downloads them."
        )
    return [load_uci(name, data_dir=root) for name in names]


def _split_indices(data, splits) -> list[int]:
    if splits is None:
        return list(range(data.n_splits))
    if isinstance(splits, int | np.integer) and not isinstance(splits, bool):
        return list(range(min(check_int("splits", splits, minimum=1), data.n_splits)))
    indices = []
    for k in splits:
        if not 0 <= check_int("split index", k) < data.n_splits:
            raise ValueError(
                f"Split {k} is out of range for {data.name!r}, which has splits "
                f"0 to {data.n_splits - 1}"
            )
        indices.append(int(k))
    return list(dict.fromkeys(indices))


def _check_settings(results, jobs, method, options, path) -> None:
    """Refuses to resume from rows trained differently: their mean would mix two setups."""
    for data, _, settings in jobs:
        planned = {**settings, "hidden_units": _widths_text(settings["hidden_units"]),
                   "options": options}
        rows = results[(results["dataset"] == data.name) & (results["method"] == method)]
        for column in _SETTINGS:
            found = sorted(set(rows[column].tolist()) - {planned[column]})
            if found:
                raise ValueError(
                    f"{path} already holds {data.name!r} results of method {method!r} with "
                    f"{column}={found[0]!r}, but this run uses {column}={planned[column]!r}. "
                    "Use another output folder (--out) or the same settings."
                )


# -- results.csv ----------------------------------------------------------------------


def _empty_results() -> pd.DataFrame:
    return _as_results(pd.DataFrame(columns=list(RESULT_COLUMNS)))


def _as_results(frame: pd.DataFrame) -> pd.DataFrame:
    """Gives the columns fixed types, so rows read back from CSV equal rows just computed."""
    return frame[list(RESULT_COLUMNS)].astype(_COLUMN_TYPES)


def read_results(path) -> pd.DataFrame:
    """Reads a `results.csv` written by `run_uci_benchmark`.

    Args:
        path: The file, or the output folder holding it.

    Raises:
        ValueError: If the file lacks one of `RESULT_COLUMNS`.
    """
    path = Path(path)
    path = path / RESULTS_FILE if path.is_dir() else path
    frame = pd.read_csv(path, dtype={"hidden_units": str, "options": str})
    missing = [c for c in RESULT_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path} is not a tfbnn UCI results file: columns {missing} are missing")
    return _as_results(frame)
