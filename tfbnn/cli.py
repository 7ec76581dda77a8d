"""The `tfbnn` command line: fit, predict and evaluate on CSV files, and a demo.

    tfbnn fit train.csv --target price --out model/ [--calibrate 0.2]
    tfbnn calibrate model/ calibration.csv [--method conformal]
    tfbnn predict model/ new.csv --out predictions.csv
    tfbnn evaluate model/ test.csv [--json] [--report report.html]
    tfbnn demo

Each subcommand is one `add_<name>_parser(subparsers)` function listed in
`SUBCOMMANDS`; it declares the options and sets `run`, the function that carries
the command out. Adding a command means writing one such function.

A model folder written by `tfbnn fit` holds what `estimator.save` writes plus
`cli.json`: the target's name, the task, the CSV layout and the feature
encoder's state, so that later CSV files are read and encoded exactly as the
training file was.

Errors the user can fix end in one line, `tfbnn: error: ...`, on stderr, with
exit status 2 for a command line that cannot work and 1 for a failure while
running (a missing file, bad data, diverged training). `--traceback` shows the
Python traceback instead, for bug reports.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import tfbnn
from tfbnn import inference, priors
from tfbnn._options import Task, json_object
from tfbnn.benchmarks.uci import add_benchmark_parser
from tfbnn.data import tabular
from tfbnn.estimators import (
    CLASSIFICATION_CALIBRATION,
    CLASSIFICATION_LIKELIHOODS,
    REGRESSION_CALIBRATION,
    REGRESSION_LIKELIHOODS,
    BayesianClassifier,
    BayesianRegressor,
    CalibrationMethod,
    calibration_method,
)
from tfbnn.inference import diagnostics as mcmc_diagnostics
from tfbnn.persistence import CONFIG_FILE, save_estimator

CLI_FILE = "cli.json"
"""The file `tfbnn fit` adds to a model folder: how to read CSV files for the model."""

_CLI_FORMAT = "tfbnn-cli"
_CLI_FORMAT_VERSION = 1
_CLI_KEYS = ("format_version", "task", "target", "header", "sep", "features", "encoder")

# The command line's defaults are the estimators' defaults (both share them).
_DEFAULTS = BayesianRegressor().get_params()

_REGRESSION_CHOICES = ("auto", *REGRESSION_LIKELIHOODS)
_LIKELIHOOD_CHOICES = tuple(dict.fromkeys(_REGRESSION_CHOICES + CLASSIFICATION_LIKELIHOODS))

# Failures of a well-formed command, reported in one line (exit status 1).
_RUNTIME_ERRORS = (OSError, ValueError, tfbnn.NonFiniteLossError)


class UsageError(ValueError):
    """A command line that cannot work, found after parsing (exit status 2)."""


# -- parsing ----------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, like every other tfbnn error."""

    def error(self, message):
        self.exit(2, f"tfbnn: error: {message} (see '{self.prog} --help')\n")


def _checked(convert, accept, expected: str):
    """An argparse type: `convert(text)`, which must satisfy `accept`."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


_positive_int = _checked(int, lambda v: v >= 1, "a positive integer")
_positive_float = _checked(float, lambda v: math.isfinite(v) and v > 0, "a positive number")
_fraction = _checked(float, lambda v: 0.0 <= v < 1.0, "a number in [0, 1)")
_probability = _checked(float, lambda v: 0.0 < v < 1.0, "a number strictly between 0 and 1")
_epochs = _checked(lambda text: text if text == "auto" else int(text),
                   lambda v: v == "auto" or v >= 1, "a positive integer or 'auto'")


def _widths(text: str) -> tuple[int, ...]:
    """Hidden-layer widths from one token: "50" or "50,50"."""
    try:
        widths = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        widths = (0,)
    if any(w < 1 for w in widths):
        raise argparse.ArgumentTypeError(
            f"hidden-layer widths must be positive integers, got {text!r}")
    return widths


class _HiddenUnits(argparse.Action):
    """Joins `--hidden-units 50 50` and `--hidden-units 50,50` into one tuple."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, tuple(w for group in values for w in group))


def _separator(text: str) -> str:
    # A tab is hard to type on a command line, so accept its usual spellings.
    return "\t" if text in ("\\t", "tab", "TAB") else text


def _add_csv_options(parser, *, fitted: bool) -> None:
    """`--header/--no-header` and `--sep`; for a fitted model they default to what `fit` used."""
    as_fitted = "as for 'tfbnn fit'"
    parser.add_argument(
        "--header", action=argparse.BooleanOptionalAction, default=None if fitted else True,
        help="whether the first line holds column names; without them, columns are named "
             f"by position: 0, 1, ... (default: {as_fitted if fitted else 'yes'})")
    parser.add_argument(
        "--sep", type=_separator, default=None if fitted else ",", metavar="CHAR",
        help="field separator, e.g. ';' or tab "
             f"(default: {as_fitted if fitted else repr(',')})")


def _add_n_samples(parser) -> None:
    parser.add_argument(
        "--n-samples", type=_positive_int, default=None, metavar="S",
        help=f"posterior draws to average over (default: as fitted, {_DEFAULTS['n_samples']})")


def _add_level(parser) -> None:
    parser.add_argument(
        "--level", type=_probability, default=0.95, metavar="P",
        help="probability of the central predictive interval (default: %(default)s)")


def _add_calibration_method(parser, option: str) -> None:
    parser.add_argument(
        option, choices=[m.value for m in CalibrationMethod], default=None, metavar="METHOD",
        help="regression: " + ", ".join(REGRESSION_CALIBRATION) + " (default: "
             f"{REGRESSION_CALIBRATION[0]}); classification: "
             + ", ".join(CLASSIFICATION_CALIBRATION) + " (the default)")


def _add_command(subparsers, name: str, *, summary: str, paragraphs, example: str, run):
    """Adds subcommand `name`, its help text wrapped by paragraph, that calls `run(args)`."""
    width = min(shutil.get_terminal_size().columns, 100) - 2
    description = "\n\n".join(textwrap.fill(" ".join(text.split()), width) for text in paragraphs)
    parser = subparsers.add_parser(
        name, help=summary, description=description, epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(run=run, parser=parser)
    return parser


def add_fit_parser(subparsers) -> None:
    """`tfbnn fit DATA.csv --target COLUMN --out MODEL_DIR`."""
    p = _add_command(
        subparsers, "fit", summary="train a Bayesian neural network on a CSV file and save it",
        paragraphs=["Train a Bayesian neural network on a CSV file and save it to a folder. "
                    "Non-numeric feature columns are one-hot encoded; inputs and regression "
                    "targets are standardised internally."],
        example="tfbnn fit train.csv --target price --out model/ --hidden-units 50 50",
        run=run_fit)
    p.add_argument("data", metavar="DATA.csv", type=Path, help="the training table")
    p.add_argument("--target", required=True, metavar="COLUMN",
                   help="the target column: its name, or a 0-based index (negative counts "
                        "from the end)")
    p.add_argument("--out", required=True, type=Path, metavar="MODEL_DIR",
                   help="folder to save the model in; an existing model there is replaced "
                        "only once training has succeeded")
    _add_csv_options(p, fitted=False)
    p.add_argument("--task", choices=[t.value for t in Task],
                   help="default: inferred from the target column (and printed)")
    p.add_argument("--impute", choices=[o for o in tabular.IMPUTE_OPTIONS if o],
                   help="fill missing feature values (numeric columns with the mean, others "
                        "with the most frequent value); by default they are an error")
    model = p.add_argument_group("model")
    model.add_argument(
        "--likelihood", choices=_LIKELIHOOD_CHOICES, default=_DEFAULTS["likelihood"],
        help="regression: " + ", ".join(_REGRESSION_CHOICES) + "; classification: "
             + ", ".join(CLASSIFICATION_LIKELIHOODS) + " (default: %(default)s)")
    model.add_argument("--prior", choices=priors.PRIORS.names(), default=_DEFAULTS["prior"],
                       help="prior over the weights (default: %(default)s)")
    model.add_argument(
        "--hidden-units", nargs="+", type=_widths, action=_HiddenUnits, metavar="N",
        default=tuple(_DEFAULTS["hidden_units"]),
        help="widths of the hidden layers, e.g. '50 50' or '50,50' (default: "
             + " ".join(map(str, _DEFAULTS["hidden_units"])) + ")")
    model.add_argument("--activation", default=_DEFAULTS["activation"], metavar="NAME",
                       help="hidden-layer activation, e.g. relu, tanh (default: %(default)s)")
    model.add_argument("--inference", choices=inference.INFERENCE.names(),
                       default=_DEFAULTS["inference"],
                       help="how the posterior is approximated (default: %(default)s)")
    model.add_argument("--inference-options", type=json_object, default=None, metavar="JSON",
                       help="the method's options as a JSON object, e.g. "
                            "'{\"n_chains\": 2, \"num_samples\": 200}' for hmc (see the "
                            "method's docstring, e.g. help(tfbnn.inference.get('hmc')))")
    train = p.add_argument_group("training")
    train.add_argument("--epochs", type=_epochs, metavar="N", default=_DEFAULTS["epochs"],
                       help="passes over the data, or 'auto' (default: %(default)s)")
    train.add_argument("--batch-size", type=_positive_int, metavar="N",
                       default=_DEFAULTS["batch_size"],
                       help="minibatch size (default: %(default)s)")
    train.add_argument("--learning-rate", type=_positive_float, metavar="RATE",
                       default=_DEFAULTS["learning_rate"],
                       help="Adam step size (default: %(default)s)")
    train.add_argument("--validation-fraction", type=_fraction, metavar="F",
                       default=_DEFAULTS["validation_fraction"],
                       help="fraction of rows held out to monitor training (default: %(default)s)")
    train.add_argument("--patience", type=_positive_int, default=None, metavar="N",
                       help="stop after this many epochs without validation improvement "
                            "(needs --validation-fraction)")
    train.add_argument("--seed", type=int, default=None, metavar="N",
                       help="seeds initialisation, data order and prediction draws")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    calibration = p.add_argument_group(
        "calibration", "Recalibrate the uncertainty on rows that training does not see "
                       "(see 'tfbnn calibrate --help').")
    held_out = calibration.add_mutually_exclusive_group()
    held_out.add_argument("--calibrate", type=_probability, default=None, metavar="FRACTION",
                          help="hold out this fraction of the rows (at random, with --seed), "
                               "fit on the rest and calibrate on them")
    held_out.add_argument("--calibration-data", type=Path, default=None, metavar="CAL.csv",
                          help="calibrate on this file instead (the training file's columns)")
    _add_calibration_method(calibration, "--calibration-method")


def add_calibrate_parser(subparsers) -> None:
    """`tfbnn calibrate MODEL_DIR CAL.csv [--method METHOD]`."""
    p = _add_command(
        subparsers, "calibrate", summary="recalibrate a saved model's uncertainty on held-out "
                                         "rows",
        paragraphs=[
            "Fit a calibration of a model saved by 'tfbnn fit' on labelled rows it was not "
            "trained on, and save it in the model folder (which is replaced only once this "
            "has succeeded). 'tfbnn predict' and 'tfbnn evaluate' then use it; calibrating "
            "again replaces it.",
            "Regression methods: quantile, isotonic recalibration of the predictive "
            "distribution (its quantiles and intervals); conformal and conformal_normalized, "
            "split-conformal intervals of one width or of a width that follows the "
            "predictive std, whose level-P intervals hold at least P of new rows that "
            "resemble the calibration rows. Classification: temperature, temperature "
            "scaling of the class probabilities."],
        example="tfbnn calibrate model/ calibration.csv --method conformal",
        run=run_calibrate)
    p.add_argument("model", metavar="MODEL_DIR", type=Path, help="a folder saved by 'tfbnn fit'")
    p.add_argument("data", metavar="CAL.csv", type=Path,
                   help="labelled rows the model was not trained on")
    _add_calibration_method(p, "--method")
    p.add_argument("--target", metavar="COLUMN", default=None,
                   help="the target column, if its name differs from the training file's")
    _add_csv_options(p, fitted=True)


def add_predict_parser(subparsers) -> None:
    """`tfbnn predict MODEL_DIR DATA.csv --out PRED.csv`."""
    p = _add_command(
        subparsers, "predict", summary="write predictive summaries for the rows of a CSV file",
        paragraphs=[
            "Predict for every row of a CSV file with a model saved by 'tfbnn fit'. A target "
            "column in the file is ignored.",
            "Regression columns: mean; std, the total predictive standard deviation; lower "
            "and upper, the central --level interval; epistemic and aleatoric, the two parts "
            "of the uncertainty, also as standard deviations (std^2 = epistemic^2 + "
            "aleatoric^2).",
            "Classification columns: prob_<label> for each class; predicted, the most "
            "probable label; entropy and mutual_information, the total and the epistemic "
            "uncertainty in nats."],
        example="tfbnn predict model/ new.csv --out predictions.csv",
        run=run_predict)
    p.add_argument("model", metavar="MODEL_DIR", type=Path, help="a folder saved by 'tfbnn fit'")
    p.add_argument("data", metavar="DATA.csv", type=Path, help="the rows to predict for")
    p.add_argument("--out", type=Path, default=None, metavar="PRED.csv",
                   help="where to write the predictions (default: standard output)")
    _add_level(p)
    _add_n_samples(p)
    _add_csv_options(p, fitted=True)


def add_evaluate_parser(subparsers) -> None:
    """`tfbnn evaluate MODEL_DIR DATA.csv [--json] [--report report.html]`."""
    p = _add_command(
        subparsers, "evaluate", summary="score a saved model on a labelled CSV file",
        paragraphs=[
            "Score a model saved by 'tfbnn fit' on a CSV file that has the target column, "
            "with every metric that applies. Regression: rmse, mae, nll, crps, coverage and "
            "width of the --level interval, interval score, calibration error, "
            "miscalibration area, sharpness. Classification: accuracy, nll, brier score, "
            "ece, mce, mean entropy and mutual information."],
        example="tfbnn evaluate model/ test.csv --report report.html",
        run=run_evaluate)
    p.add_argument("model", metavar="MODEL_DIR", type=Path, help="a folder saved by 'tfbnn fit'")
    p.add_argument("data", metavar="DATA.csv", type=Path, help="labelled rows to score on")
    p.add_argument("--target", metavar="COLUMN", default=None,
                   help="the target column, if its name differs from the training file's")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.add_argument("--report", type=Path, metavar="REPORT.html", default=None,
                   help="also write an HTML report with metrics and plots")
    _add_level(p)
    _add_n_samples(p)
    _add_csv_options(p, fitted=True)


def add_demo_parser(subparsers) -> None:
    """`tfbnn demo [--out DIR] [--epochs N] [--quick] [--methods [METHOD ...]]`."""
    from tfbnn import demo

    paragraphs = demo.__doc__.split("\n\n")
    p = _add_command(
        subparsers, "demo", summary="train on the bundled concrete data and check the "
                                    "uncertainty",
        paragraphs=[text.replace("`", "") for text in paragraphs[:2] + paragraphs[3:4]],
        example="tfbnn demo --out demo_output\n  tfbnn demo --methods vi ensemble hmc",
        run=run_demo)
    p.add_argument("--out", type=Path, default=Path(demo.DEFAULT_OUT_DIR), metavar="DIR",
                   help="folder for the plot and the model (default: %(default)s)")
    p.add_argument("--epochs", type=_positive_int, default=None, metavar="N",
                   help="training epochs (default: the estimator's 'auto'; with --methods, "
                        f"{demo.METHODS_EPOCHS} for every method but hmc)")
    p.add_argument("--quick", action="store_true",
                   help=f"train for {demo.QUICK_EPOCHS} epochs only (with --methods, "
                        f"{demo.QUICK_METHODS_EPOCHS}, and short sampling runs), to check "
                        f"the setup")
    p.add_argument("--methods", nargs="*", choices=inference.INFERENCE.names(), default=None,
                   metavar="METHOD",
                   help="instead, compare inference methods on 1-D data with a gap and write "
                        f"{demo.METHODS_PLOT_FILE}: all of them, or those named (of "
                        f"{', '.join(inference.INFERENCE.names())})")


SUBCOMMANDS = [add_fit_parser, add_calibrate_parser, add_predict_parser, add_evaluate_parser,
               add_demo_parser, add_benchmark_parser]
"""The functions that add each subcommand, in the order `tfbnn --help` lists them."""


def build_parser() -> argparse.ArgumentParser:
    """The `tfbnn` argument parser with every subcommand in `SUBCOMMANDS`."""
    parser = _Parser(
        prog="tfbnn", description="Bayesian neural networks on CSV files.",
        epilog="Run 'tfbnn COMMAND --help' for a command's options.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {tfbnn.__version__}")
    parser.add_argument("--traceback", action="store_true",
                        help="on errors, show the Python traceback (for bug reports)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv=None) -> int:
    """Runs the command line on `argv` (default `sys.argv[1:]`); returns the exit status."""
    parser = build_parser()
    try:
        args, unknown = parser.parse_known_args(argv)
        if unknown:
            # Reported by the subcommand's parser, so the hint names its --help.
            args.parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    except SystemExit as exit_:  # --help, --version and usage errors
        return exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
    try:
        return args.run(args)
    except UsageError as err:
        return _fail(err, 2)
    except KeyboardInterrupt:
        return _fail("interrupted; nothing was written", 130)
    except _RUNTIME_ERRORS as err:
        if args.traceback:
            raise
        return _fail(err, 1)


def _fail(error, status: int) -> int:
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        message = f"{error.filename}: {error.strerror}"
    else:
        message = str(error)
    # One line even when a library message spans several.
    print(f"tfbnn: error: {' '.join(message.split())}", file=sys.stderr)
    return status


# -- shared helpers ---------------------------------------------------------------


def format_table(rows) -> str:
    """`(name, value)` pairs as two aligned columns; floats to 4 significant digits."""
    rows = [(str(name), _format_value(value)) for name, value in rows]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def _format_value(value) -> str:
    if isinstance(value, float | np.floating):
        return f"{value:.4g}"
    return str(value)


def _write_atomic(path: Path, write) -> None:
    """Calls `write(temp_path)`, then renames the file to `path`: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A plain sibling name (not mkstemp, whose files are private) keeps the user's umask.
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(temp)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def check_model_destination(path: Path) -> None:
    """Refuses to let a save replace anything but a tfbnn model folder.

    `estimator.save` replaces whatever folder is at `path`; a typo such as
    `--out .` must not delete a user's files.
    """
    if not path.exists():
        return
    if not path.is_dir():
        raise UsageError(f"--out {path} is an existing file, not a model folder")
    if any(path.iterdir()) and not (path / CONFIG_FILE).is_file():
        raise UsageError(
            f"--out {path} is a folder that holds other files, not a tfbnn model; "
            "choose a new or empty folder")


def _cli_meta(table: tabular.Table, encoder: dict, header: bool, sep: str) -> dict:
    return {
        "format": _CLI_FORMAT,
        "format_version": _CLI_FORMAT_VERSION,
        "task": table.task,
        "target": table.target_name,
        "header": header,
        "sep": sep,
        "features": table.feature_names,
        "encoder": encoder,
    }


def save_model(estimator, path: Path, *, table: tabular.Table | None = None,
               encoder: dict | None = None, header: bool = True, sep: str = ",",
               meta: dict | None = None) -> None:
    """Saves `estimator` with the `cli.json` that lets the command line read CSVs for it.

    The `cli.json` content is `meta` (as `load_model` returned it), else made
    from the table, encoder and CSV layout. Both files are swapped in together.
    """
    if meta is None:
        meta = _cli_meta(table, encoder, header, sep)
    save_estimator(estimator, path, extra_files={CLI_FILE: json.dumps(meta, indent=2)})


def load_model(path: Path):
    """Loads a folder saved by `tfbnn fit`: `(estimator, cli metadata dict)`."""
    estimator = tfbnn.load(path)
    meta_file = Path(path) / CLI_FILE
    if not meta_file.is_file():
        raise tfbnn.ModelFileError(
            f"{path} has no {CLI_FILE}: the model was saved from Python, not by 'tfbnn fit', "
            "so its CSV columns are unknown; load it with tfbnn.load instead")
    try:
        meta = json.loads(meta_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise tfbnn.ModelFileError(f"{meta_file} is corrupt or truncated: {err}") from None
    if (not isinstance(meta, dict) or meta.get("format") != _CLI_FORMAT
            or any(key not in meta for key in _CLI_KEYS)):
        raise tfbnn.ModelFileError(f"{meta_file} is not a tfbnn command-line file")
    version = meta["format_version"]
    if not isinstance(version, int) or version > _CLI_FORMAT_VERSION:
        raise tfbnn.ModelFileError(
            f"{meta_file} has format version {version!r}; this tfbnn "
            f"({tfbnn.__version__}) reads versions up to {_CLI_FORMAT_VERSION}")
    return estimator, meta


def _read_labelled(path: Path, meta: dict, *, header: bool, sep: str, target=None):
    """The encoded features and the targets of a labelled file, for a model's `meta`."""
    with _naming_file(path):
        table = tabular.read_table(path, target=target or meta["target"], header=header,
                                   sep=sep, task=meta["task"],
                                   impute=meta["encoder"].get("impute"))
    return _model_features(table.X, meta, path, header), table.y.to_numpy()


def _csv_layout(args, meta: dict) -> tuple[bool, str]:
    """`(header, sep)`: the command line's choice, else what the model was fitted with."""
    header = meta["header"] if args.header is None else args.header
    return header, meta["sep"] if args.sep is None else args.sep


@contextlib.contextmanager
def _naming_file(path: Path):
    """Adds the file to pandas' parser errors, which do not say which file they are about."""
    try:
        yield
    except pd.errors.ParserError as err:
        raise ValueError(f"{path}: cannot parse as CSV: {err}") from None


def _model_features(frame: pd.DataFrame, meta: dict, path: Path, header: bool) -> np.ndarray:
    """Encodes a table's feature columns as at fitting; refuses a different set of columns.

    `header` says whether `frame` was read with column names; without them its
    columns are positions, matched to the model's features by order.
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


# -- fit --------------------------------------------------------------------------


def _check_likelihood(likelihood: str, task: str) -> None:
    allowed = _REGRESSION_CHOICES if task == Task.REGRESSION else CLASSIFICATION_LIKELIHOODS
    if likelihood not in allowed:
        raise UsageError(
            f"--likelihood {likelihood} does not fit a {task} task; use one of "
            f"{', '.join(allowed)}")


def run_fit(args) -> int:
    """Trains on `args.data` and saves the model with its `cli.json` to `args.out`."""
    if args.patience is not None and not args.validation_fraction:
        raise UsageError("--patience (early stopping) needs --validation-fraction > 0")
    if args.task is not None:
        _check_likelihood(args.likelihood, args.task)
    calibrating = args.calibrate is not None or args.calibration_data is not None
    if args.calibration_method is not None and not calibrating:
        raise UsageError("--calibration-method needs --calibrate or --calibration-data")
    if args.task is not None:
        _check_calibration_method(args.calibration_method, args.task, "--calibration-method")
    try:  # unknown names or bad values fail before the data is read
        inference.get(args.inference, args.inference_options)
    except ValueError as err:
        raise UsageError(f"--inference-options: {err}") from None
    check_model_destination(args.out)
    with _naming_file(args.data):
        table = tabular.read_table(args.data, target=args.target, header=args.header,
                                   sep=args.sep, task=args.task, impute=args.impute)
    if args.task is None:
        print(f"Task: {table.task} (inferred from target column {table.target_name!r}; "
              "set --task to override)")
        _check_likelihood(args.likelihood, table.task)
        _check_calibration_method(args.calibration_method, table.task, "--calibration-method")
    X, encoder = tabular.prepare_features(table.X, impute=table.impute)
    y = table.y.to_numpy()
    meta = _cli_meta(table, encoder, args.header, args.sep)
    fit_rows = np.arange(len(y))
    if args.calibration_data is not None:
        # Read before training, so that a bad file fails fast.
        X_cal, y_cal = _read_labelled(args.calibration_data, meta, header=args.header,
                                      sep=args.sep, target=table.target_name)
    elif args.calibrate is not None:
        fit_rows, cal_rows = _calibration_split(len(y), args.calibrate, args.seed)
        X_cal, y_cal = X[cal_rows], y[cal_rows]
    cls = BayesianClassifier if table.task == Task.CLASSIFICATION else BayesianRegressor
    estimator = cls(
        hidden_units=args.hidden_units, activation=args.activation, inference=args.inference,
        inference_options=args.inference_options, likelihood=args.likelihood, prior=args.prior,
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
        validation_fraction=args.validation_fraction, patience=args.patience,
        random_state=args.seed, verbose=0 if args.quiet else 1)
    start = time.perf_counter()
    with warnings.catch_warnings():
        # The summary below says whether MCMC chains mixed, and why not.
        warnings.simplefilter("ignore", mcmc_diagnostics.ConvergenceWarning)
        estimator.fit(X[fit_rows], y[fit_rows])
    seconds = time.perf_counter() - start
    if calibrating:
        estimator.calibrate(X_cal, y_cal, method=args.calibration_method)
    save_model(estimator, args.out, meta=meta)
    summary = _fit_summary(estimator, table, X[fit_rows], seconds, args.out)
    if calibrating:
        summary.insert(-1, ("calibration", f"{calibration_method(estimator.calibrator_)} on "
                                           f"{len(y_cal)} held-out rows"))
    print(format_table(summary))
    return 0


def _check_calibration_method(method, task: str, option: str) -> None:
    allowed = REGRESSION_CALIBRATION if task == Task.REGRESSION else CLASSIFICATION_CALIBRATION
    if method is not None and method not in allowed:
        raise UsageError(
            f"{option} {method} does not calibrate a {task} model; use one of "
            f"{', '.join(allowed)}")


def _calibration_split(n_rows: int, fraction: float, seed) -> tuple[np.ndarray, np.ndarray]:
    """`(fit rows, calibration rows)`: `fraction` of the rows at random, seeded by `seed`."""
    n_cal = round(fraction * n_rows)
    if n_cal < 2 or n_rows - n_cal < 2:
        raise UsageError(
            f"--calibrate {fraction} of {n_rows} rows leaves {n_cal} for calibration and "
            f"{n_rows - n_cal} for fitting; each needs at least 2")
    order = np.random.default_rng(seed).permutation(n_rows)
    return np.sort(order[n_cal:]), np.sort(order[:n_cal])


def run_calibrate(args) -> int:
    """Fits a calibrator on `args.data` and saves it into the model folder `args.model`."""
    estimator, meta = load_model(args.model)
    _check_calibration_method(args.method, meta["task"], "--method")
    header, sep = _csv_layout(args, meta)
    X, y = _read_labelled(args.data, meta, header=header, sep=sep, target=args.target)
    replaced = getattr(estimator, "calibrator_", None)
    estimator.calibrate(X, y, method=args.method)
    save_model(estimator, args.model, meta=meta)
    rows = [("calibration", f"{calibration_method(estimator.calibrator_)} on {len(y)} rows")]
    if replaced is not None:
        rows.append(("replaced", calibration_method(replaced)))
    rows.append(("saved to", args.model))
    print(format_table(rows))
    return 0


def _fit_summary(estimator, table: tabular.Table, X: np.ndarray, seconds: float, out: Path):
    history = estimator.history_
    n_columns = table.X.shape[1]
    encoded = "" if X.shape[1] == n_columns else f" ({X.shape[1]} after one-hot encoding)"
    rows = [("rows", len(X)), ("features", f"{n_columns}{encoded}"),
            ("target", table.target_name), ("task", table.task)]
    if table.task == Task.CLASSIFICATION:
        rows.append(("classes", ", ".join(map(str, estimator.classes_))))
    if "loss" in history:  # trained by epochs (samplers report diagnostics instead)
        epochs = len(history["loss"])
        if history.get("stopped_epoch"):
            epochs = f"{epochs} (stopped early)"
        rows.append(("epochs", epochs))
    rows.append(("training time", f"{seconds:.1f} s"))
    rows += [(f"final {name}", history[name][-1]) for name in ("nll", "kl", "loss", "val_nll")
             if history.get(name)]
    rows += _diagnostic_rows(history.get("diagnostics"))
    rows.append(("saved to", out))
    return rows


#: The sampler diagnostics `tfbnn fit` prints, as (label, key of `diagnostics_`).
DIAGNOSTIC_ROWS = (
    ("chains", "n_chains"), ("draws per chain", "num_draws_per_chain"),
    ("draws", "num_draws"), ("acceptance rate", "acceptance_rate"),
    ("divergences", "n_divergences"), ("step size", "step_size"),
    ("split R-hat, log-likelihood", "rhat_log_lik"),
    ("split R-hat, predictive mean (max)", "rhat_predictive_max"),
    ("split R-hat, parameters (max)", "rhat_params_max"),
    ("ESS, log-likelihood", "ess_log_lik"), ("ESS, predictive mean (min)", "ess_predictive_min"),
    ("ESS, parameters (median)", "ess_params_median"),
)


def _diagnostic_rows(diagnostics) -> list[tuple]:
    """The MCMC diagnostics of a sampler's fit, and whether they say the chains mixed."""
    if not diagnostics:
        return []
    rows = [(label, diagnostics[key]) for label, key in DIAGNOSTIC_ROWS if key in diagnostics]
    found = mcmc_diagnostics.problems(diagnostics)
    rows.append(("mixing", "NOT MIXED: " + "; ".join(found) if found else "no problem found"))
    return rows


# -- predict and evaluate ------------------------------------------------------------


def prediction_frame(predictive, level: float = 0.95) -> pd.DataFrame:
    """The `tfbnn predict` columns for a `Predictive` (see `tfbnn predict --help`)."""
    if predictive.is_classification:
        probs = predictive.probs
        columns = {f"prob_{label}": probs[:, i] for i, label in enumerate(predictive.classes)}
        columns.update(predicted=predictive.predicted_class, entropy=predictive.entropy,
                       mutual_information=predictive.mutual_information)
    else:
        lower, upper = predictive.interval(level)
        columns = {"mean": predictive.mean, "std": predictive.std, "lower": lower,
                   "upper": upper, "epistemic": np.sqrt(predictive.epistemic_var),
                   "aleatoric": np.sqrt(predictive.aleatoric_var)}
    return pd.DataFrame(columns)


def run_predict(args) -> int:
    """Writes `prediction_frame` for every row of `args.data`."""
    estimator, meta = load_model(args.model)
    header, sep = _csv_layout(args, meta)
    with _naming_file(args.data):
        # The file may lack the target, so it is read without naming one.
        frame = tabular.read_frame(args.data, header=header, sep=sep)
    X = _model_features(frame, meta, args.data, header)
    predictions = prediction_frame(estimator.predict_distribution(X, args.n_samples), args.level)
    if args.out is None:
        predictions.to_csv(sys.stdout, index=False)
    else:
        _write_atomic(args.out, lambda temp: predictions.to_csv(temp, index=False))
        print(f"Wrote {len(predictions)} predictions to {args.out}")
    return 0


def _jsonable(value):
    value = value.item() if isinstance(value, np.generic) else value
    # JSON has no NaN or infinity.
    return None if isinstance(value, float) and not math.isfinite(value) else value


def run_evaluate(args) -> int:
    """Prints every metric of the model on `args.data` (and writes the HTML report)."""
    from tfbnn import metrics

    estimator, meta = load_model(args.model)
    header, sep = _csv_layout(args, meta)
    X, y = _read_labelled(args.data, meta, header=header, sep=sep, target=args.target)
    predictive = estimator.predict_distribution(X, args.n_samples)
    if args.report is None:
        scores, figures = metrics.evaluate(predictive, y=y, level=args.level), None
    else:
        from tfbnn import report

        scores, figures = report.build_report(y, predictive, history=estimator.history_,
                                              level=args.level)
    scores = {"rows": len(y), **scores}
    calibrator = getattr(estimator, "calibrator_", None)
    if calibrator is not None:
        scores = {"calibration": calibration_method(calibrator), **scores}
    if figures is not None:
        title = f"tfbnn evaluation of {Path(args.model).name} on {Path(args.data).name}"
        _write_atomic(args.report, lambda temp: report.write_html_report(
            temp, scores, figures, title=title))
    if args.json:
        print(json.dumps({k: _jsonable(v) for k, v in scores.items()}, indent=2))
    else:
        print(format_table(scores.items()))
    if args.report is not None:
        # Keep standard output pure JSON when --json asks for it.
        print(f"Wrote the report to {args.report}", file=sys.stderr if args.json else sys.stdout)
    return 0


# -- demo -------------------------------------------------------------------------


def run_demo(args) -> int:
    """Runs `tfbnn.demo.run_demo` with a progress bar and printed results, or with
    `--methods` `tfbnn.demo.run_methods_demo` and its table of gap ratios."""
    from tfbnn import demo

    if args.methods is not None:
        repeated = sorted({m for m in args.methods if args.methods.count(m) > 1})
        if repeated:
            raise UsageError(f"--methods names {', '.join(repeated)} more than once")
        demo.run_methods_demo(args.out, methods=args.methods or None, quick=args.quick,
                              epochs=args.epochs, verbose=1)
        return 0
    demo.run_demo(args.out, epochs=args.epochs, quick=args.quick, verbose=1)
    return 0
