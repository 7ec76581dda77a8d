"""The UCI benchmark's summary: mean ± standard error per data set and method, as tables.

`summarise` turns the per-split rows of `results.csv` (see
`tfbnn.benchmarks.uci`) into one row per (data set, method) beside the
published numbers (`tfbnn.benchmarks.published`); `format_markdown` and
`format_comparison` print it, `write_summary` saves it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from tfbnn.benchmarks import published
from tfbnn.data.uci import UCI_DATASETS
from tfbnn.files import write_text_atomic


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
    write_text_atomic(out_dir / "summary.md", format_markdown(summary))
    write_text_atomic(out_dir / "summary.csv", summary.to_csv(index=False))
    write_text_atomic(out_dir / "summary.json",
                      summary.to_json(orient="records", indent=2) + "\n")
