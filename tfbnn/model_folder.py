"""Model folders as `tfbnn fit` writes them, and CSV files read for such a model.

A model folder holds what `tfbnn.persistence.save_estimator` writes plus
`cli.json`: the target's name, the task, the CSV layout (header, separator) and
the feature encoder's state, so that later CSV files are read and encoded
exactly as the training file was. The command line and the demo both write
such folders; `tfbnn predict`, `evaluate` and `calibrate` read them.
`check_save_destination` refuses, before training, a destination that a save
would clobber or could not write, and one that holds a model unless told to
replace it.
"""

from __future__ import annotations

import contextlib
import datetime
import json
from pathlib import Path

import numpy as np
import pandas as pd

import tfbnn.estimators  # noqa: F401 (registers the estimator classes that `load` rebuilds)
from tfbnn.data import tabular
from tfbnn.files import check_model_destination, recover_folder
from tfbnn.persistence import (
    CONFIG_FILE,
    FORMAT,
    ModelFileError,
    load,
    read_format_file,
    save_estimator,
)
from tfbnn.version import __version__

CLI_FILE = "cli.json"
"""The file `tfbnn fit` adds to a model folder: how to read CSV files for the model."""

CLI_FORMAT = "tfbnn-cli"
CLI_FORMAT_VERSION = 1
CLI_KEYS = ("format_version", "task", "target", "header", "sep", "features", "encoder")
"""The entries every `cli.json` has, besides `format`."""


def model_meta(table: tabular.Table, encoder: dict, header: bool, sep: str) -> dict:
    """The `cli.json` content for a model fitted on `table` read with `header` and `sep`."""
    return {
        "format": CLI_FORMAT,
        "format_version": CLI_FORMAT_VERSION,
        "task": table.task,
        "target": table.target_name,
        "header": header,
        "sep": sep,
        "na_values": table.read_options["na_values"],
        "encoding": table.read_options["encoding"],
        "features": table.feature_names,
        "encoder": encoder,
    }


class ModelExistsError(ValueError):
    """A save destination holds a model, and replacing it was not asked for."""


def check_save_destination(path, *, overwrite: bool = True) -> None:
    """Refuses a folder `save_model` must not or cannot write, before any work is done.

    Raises:
        ModelExistsError: If, unless `overwrite`, a model is there (described).
        ValueError: If `path` is a file or a folder of other files.
        OSError: If the folder cannot be written (naming where).
    """
    if check_model_destination(path, CONFIG_FILE) and not overwrite:
        raise ModelExistsError(f"{path} already holds {describe_model(path)}")


def describe_model(path) -> str:
    """What the model folder at `path` holds, from its config files, for messages.

    For instance "a regression model of 'price' (inference vi, saved 2025-05-01
    10:22 by tfbnn 0.1.0)".
    """
    path = Path(path)
    cli_file = path / CLI_FILE
    try:
        config = read_format_file(path / CONFIG_FILE, FORMAT, "tfbnn model config")
        cli = read_format_file(cli_file, CLI_FORMAT, CLI_FILE) if cli_file.is_file() else None
    except (OSError, ModelFileError):
        return "a tfbnn model whose config cannot be read"
    saved = datetime.datetime.fromtimestamp((path / CONFIG_FILE).stat().st_mtime)
    inference = config.get("inference")
    method = inference.get("name") if isinstance(inference, dict) else "?"
    details = (f"inference {method}, saved {saved:%Y-%m-%d %H:%M} by tfbnn "
               f"{config.get('tfbnn_version', '?')}")
    if cli is None:
        return f"a {config.get('estimator', 'model')} saved from Python ({details})"
    return f"a {cli.get('task', '')} model of {cli.get('target')!r} ({details})"


def save_model(estimator, path, *, meta: dict) -> None:
    """Saves `estimator` into the folder `path` with `meta` (see `model_meta`) as `cli.json`.

    Both are swapped in together: an interrupted save leaves the folder as it was.
    """
    save_estimator(estimator, path, extra_files={CLI_FILE: json.dumps(meta, indent=2)})


def load_model(path):
    """Loads a folder saved by `tfbnn fit`: `(estimator, cli.json as a dict)`.

    Raises:
        ModelFileError: If the folder is no model, or its `cli.json` is missing,
            corrupt or of a newer format.
    """
    path = recover_folder(path)  # after a save killed midway, the last complete one
    estimator = load(path)
    meta_file = path / CLI_FILE
    if not meta_file.is_file():
        raise ModelFileError(
            f"{path} has no {CLI_FILE}: the model was saved from Python, not by 'tfbnn fit', "
            "so its CSV columns are unknown; load it with tfbnn.load instead")
    meta = read_format_file(meta_file, CLI_FORMAT, "tfbnn command-line file", CLI_KEYS)
    version = meta["format_version"]
    if not isinstance(version, int) or version > CLI_FORMAT_VERSION:
        raise ModelFileError(
            f"{meta_file} has format version {version!r}; this tfbnn "
            f"({__version__}) reads versions up to {CLI_FORMAT_VERSION}")
    return estimator, meta


@contextlib.contextmanager
def naming_file(path):
    """Adds the file to pandas' parser errors, which do not say which file they are about."""
    try:
        yield
    except pd.errors.ParserError as err:
        raise ValueError(f"{path}: cannot parse as CSV: {err}") from None


def read_labelled(path, meta: dict, *, target=None, **reading):
    """`(X, y)`: the encoded features and the targets of a labelled CSV file, for `meta`.

    `target` names the target column if it differs from the training file's;
    `reading` holds `read_table`'s `header`, `sep`, `na_values` and `encoding`.
    """
    return next(read_labelled_parts(path, meta, target=target, **reading))


def read_labelled_parts(path, meta: dict, *, target=None, chunk_rows: int | None = None,
                        **reading):
    """`read_labelled` in parts of at most `chunk_rows` rows (None: one part), for files too
    big to hold: yields `(X, y)` for each part, in file order."""
    with naming_file(path):
        tables = tabular.read_tables(path, target=target or meta["target"], task=meta["task"],
                                     impute=meta["encoder"].get("impute"),
                                     chunk_rows=chunk_rows,
                                     dtype=text_columns(meta, reading["header"]),
                                     **reading)
        for table in tables:
            yield model_features(table.X, meta, path, reading["header"]), table.y.to_numpy()


def text_columns(meta: dict, header: bool) -> dict:
    """`read_frames`'s `dtype` that reads the model's categorical columns as text.

    Read on its own, a file (or a part of one) whose categorical column happens to
    hold only numbers would give labels such as "5" for "05" or "1.0" for "1", which
    the fitted categories do not know. Columns of the labels "True"/"False" were
    boolean at fitting and are left to pandas, which reads "true" as True. A file
    without a header (`header` False) names its columns by position: the training
    file's positions for a model fitted without one, else the features' order
    (`model_features` accepts only that layout then).
    """
    names = [spec["name"] for spec in meta["encoder"]["columns"]
             if spec["kind"] == "categorical"
             and not set(spec["categories"]) <= {"True", "False"}]
    if not header and meta["header"]:
        return {meta["features"].index(name): str for name in names}
    return dict.fromkeys(names, str)


def model_features(frame: pd.DataFrame, meta: dict, path, header: bool) -> np.ndarray:
    """Encodes a table's feature columns as at fitting; refuses a different set of columns.

    `header` says whether `frame` was read with column names; without them its
    columns are positions, matched to the model's features by order. A target
    column in `frame` is ignored.
    """
    expected = meta["features"]
    if not header:
        if frame.shape[1] == len(expected):
            frame = frame.set_axis(expected, axis=1)
        elif meta["header"] or frame.shape[1] != len(expected) + 1:
            # (A model fitted without a header names its target by position, so a
            # file with one more column has the target where the training file had it.)
            raise ValueError(
                f"{path} has {frame.shape[1]} columns and no header; give the model's "
                f"{len(expected)} feature columns in the training order: {expected}")
    frame = frame.drop(columns=meta["target"], errors="ignore")
    missing = [c for c in expected if c not in frame.columns]
    unexpected = [c for c in frame.columns if c not in expected]
    if missing or unexpected:
        problems = ([f"missing {missing}"] if missing else []) + (
            [f"unexpected {unexpected}"] if unexpected else [])
        if frame.shape[1] == 1:
            problems.append("the file was read as one column: is --sep right?")
        raise ValueError(
            f"{path} has other feature columns than the model was fitted on: "
            f"{'; '.join(problems)} (expected {expected})")
    try:
        features, _ = tabular.prepare_features(frame[expected], meta["encoder"])
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    return features
