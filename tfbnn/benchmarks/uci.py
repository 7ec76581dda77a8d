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
over splits. Hyperparameters are the estimator's fixed defaults: nothing is
tuned, least of all on test data. Each split is seeded with its index.

With `out_dir`, one row per finished split is added to `results.csv` as soon as
the split finishes, and splits already there are skipped: an interrupted run
continues where it stopped when started again with the same arguments. The
summary (`summary.md`, `summary.csv`, `summary.json`) covers every row of
`results.csv`, so data sets run at different times share one table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from tfbnn import inference as inference_lib
from tfbnn._options import json_object
from tfbnn.benchmarks import published
from tfbnn.data.uci import ENV_VAR, UCI_DATASETS, default_data_dir, load_uci
from tfbnn.estimators import BayesianRegressor

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

# One row per finished split; `epochs`, `hidden_units` and `options` must agree
# within a (dataset, method) for its splits to be averaged.
_KEY = ("dataset", "method", "split")
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
        epochs = _check_positive("epochs", epochs)
    loaded = _load_all(names, data_dir)

    jobs = []
    for data in loaded:
        settings = {
            "epochs": epochs or (QUICK_EPOCHS if quick else EPOCH_FACTOR * data.n_epochs),
            "hidden_units": hidden or (data.n_hidden,),
        }
        for k in _split_indices(data, QUICK_SPLITS if splits is None and quick else splits):
            jobs.append((data, k, settings))

    path = None if out_dir is None else Path(out_dir) / RESULTS_FILE
    results = read_results(path) if path is not None and path.exists() else _empty_results()
    _check_settings(results, jobs, method, options, path)
    done = set(zip(results["dataset"], results["method"], results["split"]))
    todo = [job for job in jobs if (job[0].name, method, job[1]) not in done]

    bar = _progress_bar(len(todo), enabled=progress)
    try:
        for data, k, settings in todo:
            bar.set_description(f"{data.name} split {k} ({method})")
            row = _run_split(data, k, method, method_options, options, **settings)
            new = pd.DataFrame([row])
            results = _as_results(pd.concat([results, new], ignore_index=True) if len(results)
                                  else new)
            if path is not None:
                _write_atomic(path, results.to_csv(index=False))
            bar.set_postfix(rmse=f"{row['rmse']:.3g}", ll=f"{row['test_ll']:.3g}")
            bar.update(1)
    finally:
        bar.close()

    summary = summarise(results)
    if out_dir is not None:
        write_summary(summary, out_dir)
    return summary


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
    for name in names:
        if name not in UCI_DATASETS:
            raise ValueError(f"Unknown UCI data set {name!r}; expected one of {list(UCI_DATASETS)}")
    return list(dict.fromkeys(names))


def _check_positive(name, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_widths(hidden_units) -> tuple[int, ...]:
    widths = (hidden_units,) if isinstance(hidden_units, int | np.integer) else hidden_units
    widths = tuple(_check_positive("hidden_units", w) for w in widths)
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
        return list(range(min(_check_positive("splits", splits), data.n_splits)))
    indices = []
    for k in splits:
        if isinstance(k, bool) or not isinstance(k, int | np.integer):
            raise ValueError(f"Split indices must be integers, got {k!r}")
        if not 0 <= k < data.n_splits:
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


# -- results and summary -----------------------------------------------------------


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


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (data set, method): mean ± standard error over splits, and published numbers.

    Args:
        results: Per-split rows with the columns of `RESULT_COLUMNS`.

    Returns:
        A frame with `dataset`, `method`, `splits` (run), `n_splits` (the
        protocol's), `epochs`, `hidden_units`, `rmse_mean`, `rmse_se`,
        `test_ll_mean`, `test_ll_se`, `fit_seconds` (total), the published
        `ll_<method>` and `rmse_<method>` columns (`published.METHODS`),
        `ll_best_published` and `ll_minus_best` (ours minus the best published:
        positive means better than every published method). Standard errors
        use the sample standard deviation and are NaN for a single split.
    """
    rows = []
    for (dataset, method), group in results.groupby(["dataset", "method"], sort=False):
        n = len(group)
        row = {
            "dataset": dataset, "method": method, "splits": n,
            "n_splits": int(group["n_splits"].iloc[0]), "epochs": int(group["epochs"].iloc[0]),
            "hidden_units": group["hidden_units"].iloc[0],
        }
        for metric in ("rmse", "test_ll"):
            values = group[metric].to_numpy(np.float64)
            row[f"{metric}_mean"] = float(values.mean())
            row[f"{metric}_se"] = float(values.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
        row["fit_seconds"] = float(group["fit_seconds"].sum())
        row.update({f"ll_{key}": value for key, value in published.published_ll(dataset).items()})
        row["ll_best_published"] = published.best_published_ll(dataset)
        row["ll_minus_best"] = row["test_ll_mean"] - row["ll_best_published"]
        row.update({f"rmse_{key}": v for key, v in published.published_rmse(dataset).items()})
        rows.append(row)
    order = {name: i for i, name in enumerate(UCI_DATASETS)}
    rows.sort(key=lambda r: (order.get(r["dataset"], len(order)), r["method"]))
    return pd.DataFrame(rows, columns=_summary_columns())


def _summary_columns() -> list[str]:
    return [
        "dataset", "method", "splits", "n_splits", "epochs", "hidden_units",
        "rmse_mean", "rmse_se", "test_ll_mean", "test_ll_se", "fit_seconds",
        *(f"ll_{key}" for key in published.METHODS), "ll_best_published", "ll_minus_best",
        *(f"rmse_{key}" for key in published.METHODS if key in published.TEST_RMSE),
    ]


def format_markdown(summary: pd.DataFrame) -> str:
    """The summary as a Markdown table with a note on units and sources."""
    names = published.METHODS
    rmse_keys = [key for key in names if key in published.TEST_RMSE]
    header = ["data set", "method", "splits", "epochs", "RMSE", "test LL", "LL − best published",
              "fit time", *(f"{names[k]} LL" for k in names),
              *(f"{names[k]} RMSE" for k in rmse_keys)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in summary.to_dict("records"):
        cells = [
            row["dataset"], row["method"], f"{row['splits']}/{row['n_splits']}",
            str(row["epochs"]), _mean_se(row["rmse_mean"], row["rmse_se"]),
            _mean_se(row["test_ll_mean"], row["test_ll_se"]), f"{row['ll_minus_best']:+.2f}",
            _duration(row["fit_seconds"]), *(_number(row[f"ll_{k}"]) for k in names),
            *(_number(row[f"rmse_{k}"]) for k in rmse_keys),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Mean ± standard error over splits, in original units; test LL is the "
                 "log-likelihood per test point (higher is better). Published columns: "
                 "tfbnn/benchmarks/published.py cites their sources.")
    if (summary["splits"] < summary["n_splits"]).any():
        lines.append("Rows with fewer splits than the protocol are not comparable "
                     "with the published numbers.")
    return "\n".join(lines) + "\n"


def format_comparison(summary: pd.DataFrame, methods: Sequence[str] | None = None) -> str:
    """Several methods side by side: Markdown tables of test LL, RMSE and fit time.

    One row per data set and one column per method of `summary` (as `summarise`
    returns it for results of several methods; `methods` picks and orders the
    columns), then the published columns. In the LL and RMSE tables the best
    mean of each row, ours or published, is in bold, ▲ marks every mean of ours
    better than all published numbers of its row, and a method with fewer
    splits than the protocol is marked `(k/n splits)`.
    """
    methods = list(dict.fromkeys(summary["method"])) if methods is None else list(methods)
    summary = summary[summary["method"].isin(methods)]
    datasets = list(dict.fromkeys(summary["dataset"]))
    rows = {(r["dataset"], r["method"]): r for r in summary.to_dict("records")}
    names = published.METHODS
    rmse_keys = [key for key in names if key in published.TEST_RMSE]

    def table(title, column, published_values, published_keys, higher_is_better):
        header = ["data set", *methods, *(f"{names[k]} (published)" for k in published_keys)]
        lines = [f"{title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for dataset in datasets:
            ours = [rows.get((dataset, m)) for m in methods]
            theirs = [published_values(dataset).get(k, math.nan) for k in published_keys]
            means = [r[f"{column}_mean"] if r else math.nan for r in ours]
            pick = max if higher_is_better else min
            candidates = [v for v in [*means, *theirs] if not math.isnan(v)]
            best = pick(candidates) if candidates else math.nan
            known = [v for v in theirs if not math.isnan(v)]
            best_published = pick(known) if known else math.nan
            cells = [dataset]
            for row, mean in zip(ours, means):
                if row is None:
                    cells.append("–")
                    continue
                text = _mean_se(mean, row[f"{column}_se"])
                text = f"**{text}**" if mean == best else text
                if pick(mean, best_published) == mean != best_published:
                    text += " ▲"
                if row["splits"] < row["n_splits"]:
                    text += f" ({row['splits']}/{row['n_splits']} splits)"
                cells.append(text)
            cells += [f"**{_number(v)}**" if v == best else _number(v) for v in theirs]
            lines.append("| " + " | ".join(cells) + " |")
        return lines

    lines = table("Test log-likelihood per point (higher is better)", "test_ll",
                  published.published_ll, list(names), True)
    lines += [""] + table("Test RMSE (lower is better)", "rmse", published.published_rmse,
                          rmse_keys, False)
    header = ["data set", *methods]
    lines += ["", "Fit time (all splits, this machine)", "",
              "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for dataset in [*datasets, "total"]:
        cells = [dataset]
        for method in methods:
            if dataset == "total":
                seconds = summary.loc[summary["method"] == method, "fit_seconds"].sum()
            else:
                row = rows.get((dataset, method))
                seconds = row["fit_seconds"] if row else math.nan
            cells.append("–" if math.isnan(seconds) else _duration(seconds))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _mean_se(mean, se) -> str:
    return f"{mean:.3f}" if math.isnan(se) else f"{mean:.3f} ± {se:.3f}"


def _number(value) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.2f}"


def _duration(seconds) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def write_summary(summary: pd.DataFrame, out_dir) -> None:
    """Writes `summary.md`, `summary.csv` and `summary.json` into `out_dir`."""
    out_dir = Path(out_dir)
    _write_atomic(out_dir / "summary.md", format_markdown(summary))
    _write_atomic(out_dir / "summary.csv", summary.to_csv(index=False))
    _write_atomic(out_dir / "summary.json", summary.to_json(orient="records", indent=2) + "\n")


def _write_atomic(path: Path, text: str) -> None:
    """Writes `text` to a temporary file and moves it over `path`: never a half-written file,
    even when the run is interrupted while writing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as file:
            file.write(text)
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.remove(temp)


class _NoBar:
    def set_description(self, text):
        pass

    def set_postfix(self, **values):
        pass

    def update(self, n):
        pass

    def close(self):
        pass


def _progress_bar(total: int, enabled: bool):
    """A tqdm bar on stderr (stdout stays free for the table), or a silent stand-in."""
    if not enabled:
        return _NoBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is optional: without it the run is silent
        return _NoBar()
    return tqdm(total=total, unit="split", file=sys.stderr, dynamic_ncols=True)


# -- command line -------------------------------------------------------------------


def _non_negative_int(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a split index 0, 1, 2, ..., got {text!r}")
    return int(text)


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def add_uci_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the options of `tfbnn benchmark uci` to `parser`."""
    parser.add_argument("--datasets", nargs="+", choices=UCI_DATASETS, metavar="NAME",
                        help=f"data sets to run (default: all of {', '.join(UCI_DATASETS)})")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--splits", nargs="+", type=_non_negative_int, metavar="K",
                       help="split indices to run (default: all)")
    which.add_argument("--n-splits", type=_positive_int, metavar="N",
                       help="run the first N splits of each data set")
    parser.add_argument("--method", default="vi",
                        help="inference method (default: %(default)s; registered: "
                             f"{', '.join(inference_lib.INFERENCE.names())})")
    parser.add_argument("--method-options", type=json_object, metavar="JSON",
                        help="the method's options as a JSON object, e.g. "
                             "'{\"estimator\": \"flipout\"}'")
    parser.add_argument("--data-dir", type=Path, metavar="DIR",
                        help=f"folder of the UCI data set folders (default: ${ENV_VAR}, "
                             "else ~/.cache/tfbnn/uci)")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help=f"folder for results and summary (default: {DEFAULT_OUT_DIR}, "
                             f"or {QUICK_OUT_DIR} with --quick); re-running resumes")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke test: {QUICK_SPLITS} splits of {QUICK_EPOCHS} epochs")
    parser.add_argument("--epochs", type=_positive_int, metavar="N",
                        help=f"training epochs (default: {EPOCH_FACTOR} x the protocol's "
                             "n_epochs, 400; 200 for protein)")
    parser.add_argument("--hidden-units", nargs="+", type=_positive_int, metavar="N",
                        help="hidden-layer widths, e.g. 50 50 (default: one layer of the "
                             "protocol's 50; 100 for protein)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def add_benchmark_parser(subparsers) -> None:
    """Adds `tfbnn benchmark uci ...` to the `tfbnn` command line's subparsers."""
    benchmark = subparsers.add_parser(
        "benchmark", help="run the published benchmarks and compare with the literature",
        description="Run a published benchmark and compare with the literature.")
    kinds = benchmark.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    uci = kinds.add_parser(
        "uci", help="the nine UCI regression data sets with their standard splits",
        description="Run the UCI regression benchmark by the published protocol (standard "
                    "splits, one hidden layer, 400 epochs) and print a Markdown table beside "
                    "the published results. Re-running with the same --out resumes.")
    add_uci_arguments(uci)
    uci.set_defaults(run=run_benchmark_command)


def run_benchmark_command(args) -> int:
    """Runs `tfbnn benchmark uci` from parsed arguments and prints the Markdown table.

    Returns:
        The exit status: 0, or 130 if interrupted (finished splits are kept).
    """
    out = args.out or (QUICK_OUT_DIR if args.quick else DEFAULT_OUT_DIR)
    try:
        summary = run_uci_benchmark(
            args.datasets, args.splits if args.splits is not None else args.n_splits,
            args.method, data_dir=args.data_dir, out_dir=out, quick=args.quick,
            epochs=args.epochs, hidden_units=args.hidden_units,
            method_options=args.method_options, progress=not args.no_progress)
    except KeyboardInterrupt:
        print(f"tfbnn: interrupted; finished splits are kept in {out / RESULTS_FILE}: "
              "run the same command again to resume", file=sys.stderr)
        return 130
    print(format_markdown(summary), end="")
    print(f"Results: {out / RESULTS_FILE}; summary: {out}/summary.{{md,csv,json}}",
          file=sys.stderr)
    return 0
